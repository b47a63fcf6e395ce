"""Whether one citation holds for the statement that carries it, decided by gold evidence
where gold can decide, and otherwise left to the judge.

Gold decides:
- held: the quote overlaps the gold span of a key fact the statement states, and the quote
  shows that fact (one of its wordings, or the whole gold span);
- rejected: the statement states key facts and the quote holds none of them; the quote is not
  in the document it names; or the question has no answer in the corpus, so nothing cited for
  an answer to it can hold.
Gold cannot decide a quote outside every gold span that carries a stated fact (it may be a true
second source) nor a statement that states no key fact: those go to the judge. A quote is never
accepted for being verbatim, nor for the shape of the statement around it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from rag.evaluation.dataset import EvalQuestion, KeyFact
from rag.evaluation.gold import DocumentTexts, GoldEvidenceSpans, Span, quoted_span
from rag.models import Citation

DecidedBy = Literal["gold", "judge", "undecided"]
# Why: on a gold span of a stated fact; the quote lacks every stated fact; the question has no
# answer; the quote is not in its document; a stated fact quoted outside the gold spans; a
# statement stating no key fact.
Basis = Literal["gold-span", "fact-missing", "unanswerable", "not-in-document", "outside-gold", "no-key-fact"]


class CitationVerdict(BaseModel):
    """One use of a citation by one statement, and what became of it."""

    question_id: str
    question: str = ""  # what the statement answers: the judge reads it too
    statement: str
    ref: int
    document_id: str
    quote: str
    held: bool | None  # None: gold could not decide and no judge was asked
    decided_by: DecidedBy
    basis: Basis
    reason: str
    facts: list[str]  # key facts of the question this citation supports in this statement
    judge_facts: list[str] = []  # the facts it would support if the judge holds it


def _facts_in(facts: list[KeyFact], text: str) -> list[KeyFact]:
    return [fact for fact in facts if fact.found_in(text)]


def grade_by_gold(
    question: EvalQuestion, statement: str, citation: Citation,
    gold: GoldEvidenceSpans, texts: DocumentTexts,
) -> CitationVerdict:
    """The gold decision on one (statement, citation) pair, or an undecided verdict that
    names the facts the judge's acceptance would support."""

    def verdict(held: bool | None, basis: Basis, reason: str, facts=(), judge_facts=()) -> CitationVerdict:
        return CitationVerdict(
            question_id=question.id, question=question.question, statement=statement, ref=citation.ref,
            document_id=citation.document_id, quote=citation.quote, held=held,
            decided_by="undecided" if held is None else "gold", basis=basis, reason=reason,
            facts=[f.fact for f in facts], judge_facts=[f.fact for f in judge_facts],
        )

    if not question.answerable:
        return verdict(False, "unanswerable", "the question has no answer in the corpus")
    span = quoted_span(citation, texts)
    if span is None:
        return verdict(False, "not-in-document", f"the quote is not in {citation.document_id or 'any document'}")
    stated = _facts_in(question.key_facts, statement)
    in_quote = _facts_in(question.key_facts, citation.quote)
    held = [fact for fact in stated if _shown_by_gold(fact, span, gold, in_quote)]
    if held:
        return verdict(True, "gold-span", "on the gold span of " + ", ".join(f.fact for f in held), held)
    carried = [f for f in stated if f in in_quote]
    if stated and not carried:
        return verdict(False, "fact-missing", "the quote holds none of the stated facts: " + ", ".join(f.fact for f in stated))
    if carried:
        return verdict(None, "outside-gold", "a stated fact quoted outside the gold spans", judge_facts=carried)
    return verdict(None, "no-key-fact", "the statement states no key fact")


def _shown_by_gold(fact: KeyFact, span: Span, gold: GoldEvidenceSpans, in_quote: list[KeyFact]) -> bool:
    spans = [g.span for g in gold.in_document(span.document_id) if g.fact == fact.fact]
    return any(span.overlaps(g) and (fact in in_quote or span.covers(g)) for g in spans)


def with_judge(verdict: CitationVerdict, supported: bool) -> CitationVerdict:
    """An undecided verdict settled by the judge."""
    facts = verdict.judge_facts if supported else []
    return verdict.model_copy(update={
        "held": supported, "decided_by": "judge", "facts": facts,
        "reason": f"{verdict.reason}; judge: {'supported' if supported else 'not supported'}",
    })
