"""Whether the model's answer holds: a pure accept or reject, with the evidence it rests on.

An answer holds when
- it cites sentences it was shown;
- every word and figure it adds to the question is in those sentences (content words compared
  by stem, figures as written): the answer is taken from the evidence, not merely near it;
- and it bears on the question: the cited articles' retrieved text and titles hold at least
  ``min_question_share`` of the question's content words, so an answer lifted from an article
  about something else is not given.
Nothing here rewrites the answer; repairs (rag.answer.repairs) are separate, named steps."""

from __future__ import annotations

from dataclasses import dataclass

from rag.answer.parse import ModelReply
from rag.answer.prompt import NumberedSentences, ShownSentence
from rag.models import Passage
from rag.text import content_terms


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str
    evidence: tuple[ShownSentence, ...] = ()  # the cited sentences that carry the answer
    unsupported: tuple[str, ...] = ()  # stems and figures of the answer no cited sentence holds
    question_share: float = 0.0  # of the question's content words in the cited articles' text


def _rejected(reason: str, **found) -> Verdict:
    return Verdict(False, reason, **found)


def question_share(question: str, passages: list[Passage], documents: set[str]) -> float:
    """The share of the question's content words that the retrieved passages and titles of
    ``documents`` hold (1.0 for a question with none)."""
    asked = content_terms(question)
    if not asked:
        return 1.0
    present: set[str] = set()
    for passage in passages:
        if passage.document_id in documents:
            present |= content_terms(passage.text) | content_terms(passage.title or "")
    return len(asked & present) / len(asked)


def _as_written(answer: str, terms: set[str]) -> list[str]:
    """The answer's words and figures that give these terms, as the answer writes them."""
    pieces = dict.fromkeys(p for p in answer.replace("\u201c", " ").replace("\u201d", " ").split())
    written = [p.strip(".,;:!?\"'()") for p in pieces if content_terms(p) & terms]
    return written or sorted(terms)


def verify(
    reply: ModelReply, numbered: NumberedSentences, passages: list[Passage], question: str,
    min_question_share: float,
) -> Verdict:
    cited = [numbered.shown[n] for n in reply.sentences if n in numbered.shown]
    if not cited:
        return _rejected("the answer cites no sentence the model was shown")
    added = content_terms(reply.answer) - content_terms(question)
    if not added:
        return _rejected("the answer adds nothing to the question")
    texts = {s.number: s.text_in(passages) for s in cited}
    held = set().union(*(content_terms(t) for t in texts.values()))
    unsupported = tuple(sorted(added - held))
    if unsupported:
        return _rejected(
            "the cited sentences do not hold " + ", ".join(_as_written(reply.answer, set(unsupported))),
            unsupported=unsupported,
        )
    share = question_share(question, passages, {passages[s.passage].document_id for s in cited})
    if share < min_question_share:
        return _rejected(
            f"the cited articles hold {share:.0%} of the question's words", question_share=share,
        )
    evidence = tuple(s for s in cited if content_terms(texts[s.number]) & added)
    return Verdict(True, "every word the answer adds is in its cited sentences", evidence, (), share)
