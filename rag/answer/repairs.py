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


def reanchor(reply: ModelReply, verdict: Verdict, numbered: NumberedSentences, passages: list[Passage], question: str) -> ModelReply | None:
    """The same answer on the shown sentence that holds all of it, when the sentences the model
    cited do not: a small model often takes the answer from one sentence and gives the number
    of its neighbour."""
    if not verdict.unsupported:
        return None
    added = content_terms(reply.answer) - content_terms(question)
    for number, sentence in numbered.shown.items():
        if number not in reply.sentences and added <= content_terms(sentence.text_in(passages)):
            return ModelReply((number,), reply.answer)
    return None


def quote_evidence(reply: ModelReply, verdict: Verdict, numbered: NumberedSentences, passages: list[Passage], question: str) -> ModelReply | None:
    """The first sentence the model cited, quoted as the answer, when the model's own words are
    not all in it: the model found the sentence but put the answer in words of its own."""
    if not verdict.unsupported:
        return None
    cited = [numbered.shown[n] for n in reply.sentences if n in numbered.shown]
    if not cited:
        return None
    text = " ".join(cited[0].text_in(passages).split())
    return ModelReply((cited[0].number,), f"“{text.rstrip('.')}”")


REPAIRS: dict[str, Repair] = {REANCHOR: reanchor, QUOTE_EVIDENCE: quote_evidence}
