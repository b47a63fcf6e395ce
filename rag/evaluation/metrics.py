"""Scores per question and in total: answers against key facts, citations against gold
evidence (``grading``), abstention, quotes against the served text, retrieval against gold spans."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable

from pydantic import BaseModel

from rag.evaluation.dataset import EvalQuestion
from rag.evaluation.gold import DocumentTexts, GoldEvidenceSpans, Span, is_verbatim
from rag.evaluation.grading import CitationVerdict, grade_by_gold, with_judge
from rag.evaluation.judge import SupportJudge
from rag.models import Answer, Passage
from rag.text import sentences

_MARKER = re.compile(r"\[(\d+)\]")
_DOUBLE_STOP = re.compile(r"([.!?][”\"’']+)\.$")  # 'collapsed.” [2].' once its marker is gone


class QuestionScore(BaseModel):
    id: str
    category: str
    answerable: bool
    abstained: bool
    correct: bool | None  # answerable questions only
    key_facts: int
    facts_supported: int  # key facts stated with a held citation
    citations: int  # (statement, citation) uses: precision counts each use
    citations_held: int
    quotes: int  # distinct citations of the answer: each quote is checked once
    citations_verbatim: int
    retrieval_rank: int | None  # 1-based rank of the first passage overlapping a gold span
    retrieval_document_rank: int | None  # ... of the first passage from a document holding gold text
    latency_ms: float
    answer: str
    abstain_reason: str | None = None
    steps: list[str] = []  # the answer path's named steps the answer shows, as it reports them
    verdicts: list[CitationVerdict] = []
    gold_missing: list[str] = []  # gold texts not found in the document they name


class Summary(BaseModel):
    questions: int
    answer_correctness: float
    abstention_accuracy: float
    unanswerable_abstained_rate: float
    false_abstention_rate: float
    citation_precision: float
    citation_recall: float
    judge_decided_rate: float  # share of citations gold could not decide
    verbatim_quote_rate: float
    retrieval_hit_at_k: float
    retrieval_mrr: float
    retrieval_document_hit_at_k: float
    latency_p50_ms: float
    latency_p95_ms: float
    citations: int
    held_by_gold: int
    rejected_by_gold: int
    held_by_judge: int
    rejected_by_judge: int
    undecided: int


def statements_with_refs(answer: str) -> list[tuple[str, list[int]]]:
    """The answer's sentences, each with the [n] markers it carries; markers standing after a
    sentence's stop ('“…collapsed.” [2].') belong to that sentence."""
    pieces: list[tuple[str, list[int]]] = []
    for start, end in sentences(answer):
        sentence = answer[start:end]
        refs = [int(n) for n in _MARKER.findall(sentence)]
        text = re.sub(r"\s+([.,!?;:])", r"\1", " ".join(_MARKER.sub("", sentence).split()))
        text = _DOUBLE_STOP.sub(r"\1", text)
        if any(c.isalnum() for c in text):
            pieces.append((text, refs))
        elif pieces:
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + refs)
    return pieces


def answer_correct(question: EvalQuestion, answer: Answer) -> bool | None:
    """Answered, not abstained, with every key fact (None for an unanswerable question)."""
    if not question.answerable:
        return None
    return not answer.abstained and all(fact.found_in(answer.answer) for fact in question.key_facts)


def retrieval_ranks(passages: list[Passage], gold: GoldEvidenceSpans, k: int) -> tuple[int | None, int | None]:
    """The rank of the first passage overlapping a gold span, and of the first from a document
    named by the gold evidence or holding its text."""
    span_rank = document_rank = None
    for rank, passage in enumerate(passages[:k], 1):
        found = gold.in_document(passage.document_id)
        here = Span(passage.document_id, passage.start, passage.end)
        if document_rank is None and (found or passage.document_id in gold.document_ids):
            document_rank = rank
        if span_rank is None and any(here.overlaps(g.span) for g in found):
            span_rank = rank
    return span_rank, document_rank


def grade_answer(
    question: EvalQuestion, answer: Answer, gold: GoldEvidenceSpans, texts: DocumentTexts,
    judge: SupportJudge | None,
) -> list[CitationVerdict]:
    """A verdict for every use of a citation by a statement of the answer (none if it abstained)."""
    by_ref = {c.ref: c for c in answer.citations}
    verdicts = []
    for statement, refs in [] if answer.abstained else statements_with_refs(answer.answer):
        for ref in dict.fromkeys(refs):
            if ref not in by_ref:
                continue  # a marker naming no citation: nothing to check
            verdict = grade_by_gold(question, statement, by_ref[ref], gold, texts)
            if verdict.decided_by == "undecided" and judge is not None:
                verdict = with_judge(verdict, judge.supports(verdict.quote, statement, question.question))
            verdicts.append(verdict)
    return verdicts


def score_question(
    question: EvalQuestion, answer: Answer, latency_ms: float,
    document_text: Callable[[str], str], judge: SupportJudge | None, k: int,
) -> QuestionScore:
    texts = document_text if isinstance(document_text, DocumentTexts) else DocumentTexts(document_text)
    gold = GoldEvidenceSpans(question, texts)
    verdicts = grade_answer(question, answer, gold, texts, judge)
    supported = {fact for v in verdicts if v.held for fact in v.facts}
    span_rank, document_rank = retrieval_ranks(answer.passages, gold, k) if question.answerable else (None, None)
    return QuestionScore(
        id=question.id, category=question.category, answerable=question.answerable,
        abstained=answer.abstained, correct=answer_correct(question, answer),
        abstain_reason=answer.abstain_reason, steps=answer.steps,
        key_facts=len(question.key_facts), facts_supported=len(supported),
        citations=len(verdicts), citations_held=sum(bool(v.held) for v in verdicts),
        quotes=len(answer.citations), citations_verbatim=sum(is_verbatim(c, texts) for c in answer.citations),
        retrieval_rank=span_rank, retrieval_document_rank=document_rank,
        latency_ms=round(latency_ms, 1), answer=answer.answer, verdicts=verdicts,
        gold_missing=[e.text for e in gold.missing()],
    )


def _ratio(part: float, whole: float, empty: float = 1.0) -> float:
    return round(part / whole, 4) if whole else empty


def _mrr(ranks: list[int | None]) -> float:
    return round(statistics.fmean(1 / r if r else 0.0 for r in ranks), 4) if ranks else 0.0


def summarise(scores: list[QuestionScore]) -> Summary:
    answerable = [s for s in scores if s.answerable]
    unanswerable = [s for s in scores if not s.answerable]
    latencies = sorted(s.latency_ms for s in scores)
    verdicts = [v for s in scores for v in s.verdicts]

    def count(decided_by: str, held: bool | None) -> int:
        return sum(v.decided_by == decided_by and v.held is held for v in verdicts)

    return Summary(
        questions=len(scores),
        answer_correctness=_ratio(sum(bool(s.correct) for s in answerable), len(answerable)),
        abstention_accuracy=_ratio(sum(s.abstained != s.answerable for s in scores), len(scores)),
        unanswerable_abstained_rate=_ratio(sum(s.abstained for s in unanswerable), len(unanswerable)),
        false_abstention_rate=_ratio(sum(s.abstained for s in answerable), len(answerable), 0.0),
        citation_precision=_ratio(sum(s.citations_held for s in scores), len(verdicts)),
        citation_recall=_ratio(sum(s.facts_supported for s in answerable), sum(s.key_facts for s in answerable)),
        judge_decided_rate=_ratio(sum(v.decided_by != "gold" for v in verdicts), len(verdicts), 0.0),
        verbatim_quote_rate=_ratio(sum(s.citations_verbatim for s in scores), sum(s.quotes for s in scores)),
        retrieval_hit_at_k=_ratio(sum(s.retrieval_rank is not None for s in answerable), len(answerable)),
        retrieval_mrr=_mrr([s.retrieval_rank for s in answerable]),
        retrieval_document_hit_at_k=_ratio(
            sum(s.retrieval_document_rank is not None for s in answerable), len(answerable)),
        latency_p50_ms=round(statistics.median(latencies), 1) if latencies else 0.0,
        latency_p95_ms=latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))] if latencies else 0.0,
        citations=len(verdicts),
        held_by_gold=count("gold", True), rejected_by_gold=count("gold", False),
        held_by_judge=count("judge", True), rejected_by_judge=count("judge", False),
        undecided=count("undecided", None),
    )
