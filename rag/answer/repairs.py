"""Named, switchable steps (RAG_ANSWER_STEPS) that offer a second reply when verification
rejects the model's: each reply they offer is verified like the model's own, and each is
measured on and off in docs/answer-steps.md."""

from __future__ import annotations

from collections.abc import Callable

from rag.answer.parse import ModelReply
from rag.answer.prompt import NumberedSentences
from rag.answer.verify import Verdict
from rag.config import ANSWER_STEPS
from rag.models import Passage
from rag.text import content_terms

REANCHOR, QUOTE_EVIDENCE = ANSWER_STEPS

Repair = Callable[[ModelReply, Verdict, NumberedSentences, list[Passage], str], ModelReply | None]


MAX_ADDED_SENTENCES = 2


def reanchor(reply: ModelReply, verdict: Verdict, numbered: NumberedSentences, passages: list[Passage], question: str) -> ModelReply | None:
    """The same answer cited to the shown sentences that hold it, when the ones the model cited
    do not: a small model often takes the answer from one sentence and gives its neighbour's
    number, or answers a two-part question from two sentences and cites one. Sentences that
    hold the missing words are added, the one holding most first, at most two."""
    if not verdict.unsupported:
        return None
    added = content_terms(reply.answer) - content_terms(question)
    terms = {number: content_terms(s.text_in(passages)) for number, s in numbered.shown.items()}
    cited = [n for n in reply.sentences if n in terms]
    missing = added - set().union(*(terms[n] for n in cited))
    chosen: list[int] = []
    while missing and len(chosen) < MAX_ADDED_SENTENCES:
        best = max((n for n in terms if n not in cited and n not in chosen), key=lambda n: len(missing & terms[n]), default=None)
        if best is None or not missing & terms[best]:
            return None
        chosen.append(best)
        missing -= terms[best]
    return None if missing else ModelReply(tuple(cited + chosen), reply.answer)


def quote_evidence(reply: ModelReply, verdict: Verdict, numbered: NumberedSentences, passages: list[Passage], question: str) -> ModelReply | None:
    """The first sentence the model cited, quoted as the answer, when the model's own words are
    not all in it or only repeat the question: the model found the sentence but did not put its
    answer in the sentence's words."""
    if not (verdict.unsupported or verdict.adds_nothing):
        return None
    cited = [numbered.shown[n] for n in reply.sentences if n in numbered.shown]
    if not cited:
        return None
    text = " ".join(cited[0].text_in(passages).split())
    return ModelReply((cited[0].number,), f"“{text.rstrip('.')}”")


REPAIRS: dict[str, Repair] = {REANCHOR: reanchor, QUOTE_EVIDENCE: quote_evidence}
