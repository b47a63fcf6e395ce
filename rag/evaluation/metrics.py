"""Scores per question and in total."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable

from pydantic import BaseModel

from rag.citations import closes_abbreviation, inside_quotation
from rag.evaluation.dataset import EvalQuestion
from rag.evaluation.judge import SupportJudge
from rag.models import Answer

_MARKER = re.compile(r"\[(\d+)\]")
# A sentence ends at . ! or ? (markers after it still belong to it), unless an abbreviation.
_SENTENCE_END = re.compile(r"[.!?][”\"’')]*(?:\s*\[\d+\])*(?=\s|$)")


class QuestionScore(BaseModel):
    id: str
    category: str
    answerable: bool
    abstained: bool
    correct: bool | None  # answerable questions only
    statements: int
    statements_supported: int
    citations: int  # (statement, citation) pairs: precision counts each use of a citation
    citations_precise: int
    quotes: int  # distinct citations of the answer: each quote is checked once
    citations_verbatim: int
    retrieval_rank: int | None  # 1-based rank of the first passage holding gold evidence
    latency_ms: float
    answer: str
    unsupported: list[str] = []  # statements whose citations together do not support them


class Summary(BaseModel):
    questions: int
    answer_correctness: float
    abstention_accuracy: float
    false_abstention_rate: float
    citation_precision: float
    citation_recall: float
    verbatim_quote_rate: float
    retrieval_hit_at_k: float
    retrieval_mrr: float
    latency_p50_ms: float
    latency_p95_ms: float


def statements_with_refs(answer: str) -> list[tuple[str, list[int]]]:
    """Split an answer into sentences, each with the [n] markers it carries."""
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(answer):
        if closes_abbreviation((answer[start : match.start()].split()[-1:] or [""])[0]):
            continue
        if inside_quotation(answer, start, match):
            continue  # 'One article reports: ““We’ll have to wait and see. It’s up to Russia now,” …”
        sentences.append(answer[start : match.end()])
        start = match.end()
    sentences.append(answer[start:])
    pieces = []
    for sentence in sentences:
        refs = [int(n) for n in _MARKER.findall(sentence)]
        text = re.sub(r"\s+([.,!?;:])", r"\1", " ".join(_MARKER.sub("", sentence).split()))
        if any(c.isalnum() for c in text):
            pieces.append((text, refs))
        elif pieces:  # markers after a stop inside quotes ('“collapsed.” [2].') belong to that sentence
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + refs)
    return pieces


def retrieval_rank(question: EvalQuestion, answer: Answer, document_text: Callable[[str], str], k: int) -> int | None:
    spans = []
    for evidence in question.evidence:
        start = document_text(evidence.document_id).find(evidence.text)
        spans.append((evidence.document_id, start, start + len(evidence.text)))
    for rank, passage in enumerate(answer.passages[:k], 1):
        if any(doc == passage.document_id and start < passage.end and passage.start < end
               for doc, start, end in spans):
            return rank
    return None


def answer_correct(question: EvalQuestion, answer: Answer) -> bool | None:
    """Answered, not abstained, with every key fact (None for an unanswerable question)."""
    if not question.answerable:
        return None
    return not answer.abstained and all(fact.found_in(answer.answer) for fact in question.key_facts)


def score_question(
    question: EvalQuestion, answer: Answer, latency_ms: float,
    document_text: Callable[[str], str], judge: SupportJudge | None, k: int,
) -> QuestionScore:
    by_ref = {c.ref: c for c in answer.citations}
    statements = [] if answer.abstained else statements_with_refs(answer.answer)
    supported = precise = cited = 0
    unsupported = []
    for text, refs in statements:
        quotes = [by_ref[r].quote for r in dict.fromkeys(refs) if r in by_ref]
        cited += len(quotes)
        if judge is None:
            continue
        whole = judge.supports(quotes, text)  # no quotes: unsupported
        supported += whole
        if not whole:
            unsupported.append(text)
        for quote in quotes:
            rest = [q for q in quotes if q is not quote]
            alone = judge.supports([quote], text)
            needed = whole and (not rest or not judge.supports(rest, text))
            precise += alone or needed
    verbatim = sum(
        1 for c in answer.citations
        if document_text(c.document_id)[c.start : c.end] == c.quote
    )
    return QuestionScore(
        id=question.id, category=question.category, answerable=question.answerable,
        abstained=answer.abstained,
        correct=answer_correct(question, answer),
        statements=len(statements), statements_supported=supported,
        citations=cited, citations_precise=precise, quotes=len(answer.citations), citations_verbatim=verbatim,
        retrieval_rank=retrieval_rank(question, answer, document_text, k) if question.answerable else None,
        latency_ms=round(latency_ms, 1), answer=answer.answer, unsupported=unsupported,
    )


def _ratio(part: float, whole: float, empty: float = 1.0) -> float:
    return round(part / whole, 4) if whole else empty


def summarise(scores: list[QuestionScore]) -> Summary:
    answerable = [s for s in scores if s.answerable]
    latencies = sorted(s.latency_ms for s in scores)
    ranks = [s.retrieval_rank for s in answerable]
    all_citations = sum(s.citations for s in scores)
    return Summary(
        questions=len(scores),
        answer_correctness=_ratio(sum(bool(s.correct) for s in answerable), len(answerable)),
        abstention_accuracy=_ratio(sum(s.abstained != s.answerable for s in scores), len(scores)),
        false_abstention_rate=_ratio(sum(s.abstained for s in answerable), len(answerable), 0.0),
        citation_precision=_ratio(sum(s.citations_precise for s in scores), all_citations),
        citation_recall=_ratio(sum(s.statements_supported for s in scores), sum(s.statements for s in scores)),
        verbatim_quote_rate=_ratio(sum(s.citations_verbatim for s in scores), sum(s.quotes for s in scores)),
        retrieval_hit_at_k=_ratio(sum(r is not None for r in ranks), len(ranks)),
        retrieval_mrr=round(statistics.fmean(1 / r if r else 0.0 for r in ranks), 4) if ranks else 0.0,
        latency_p50_ms=round(statistics.median(latencies), 1) if latencies else 0.0,
        latency_p95_ms=latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))] if latencies else 0.0,
    )
