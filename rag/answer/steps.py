"""Named, switchable steps (RAG_ANSWER_STEPS): repairs that offer a second reply when
verification rejects the model's (each verified like the model's own), and other_version, which
adds another article's sentence on the same point beside an accepted answer. Each is measured
on and off in docs/answer-steps.md."""

from __future__ import annotations

from collections.abc import Callable

from rag.answer.parse import ModelReply
from rag.answer.prompt import NumberedSentences, ShownSentence
from rag.answer.verify import Verdict
from rag.config import ANSWER_STEPS
from rag.models import Passage
from rag.text import content_terms

REANCHOR, QUOTE_EVIDENCE, OTHER_VERSION, ANSWER_PARTS, READ_ON = ANSWER_STEPS

Repair = Callable[[ModelReply, Verdict, NumberedSentences, list[Passage], str], ModelReply | None]


MAX_ADDED_SENTENCES = 2


def reanchor(reply: ModelReply, verdict: Verdict, numbered: NumberedSentences, passages: list[Passage], question: str) -> ModelReply | None:
    """The same answer cited to the shown sentences that hold it, when the ones the model cited
    do not: a small model often takes the answer from one sentence and gives its neighbour's
    number, or answers a two-part question from two sentences and cites one. Sentences that
    hold the missing words and share a word with the question are added, the one holding most
    first, at most two."""
    if not verdict.unsupported:
        return None
    asked = content_terms(question)
    added = content_terms(reply.answer) - asked
    terms = {number: content_terms(s.text_in(passages)) for number, s in numbered.shown.items()}
    cited = [n for n in reply.sentences if n in terms]
    missing = added - set().union(*(terms[n] for n in cited))
    candidates = [n for n in terms if n not in cited and terms[n] & asked]
    chosen: list[int] = []
    while missing and len(chosen) < MAX_ADDED_SENTENCES:
        best = max((n for n in candidates if n not in chosen), key=lambda n: len(missing & terms[n]), default=None)
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


def other_version(
    evidence: tuple[ShownSentence, ...], numbered: NumberedSentences, passages: list[Passage], min_similarity: float,
) -> ShownSentence | None:
    """The shown sentence of another article closest to a sentence the answer cites, if at least
    ``min_similarity`` (cosine) close: the same point in the other article's words, where a
    figure, a time or a spelling may differ from the version the model reported."""
    cited_documents = {passages[s.passage].document_id for s in evidence}
    best: tuple[float, ShownSentence] | None = None
    for sentence in evidence:
        ours = numbered.vectors.get(sentence.number)
        if ours is None:
            continue
        for number, other in numbered.shown.items():
            vector = numbered.vectors.get(number)
            if vector is None or passages[other.passage].document_id in cited_documents:
                continue
            similarity = float(ours @ vector)
            if similarity >= min_similarity and (best is None or similarity > best[0]):
                best = (similarity, other)
    return best[1] if best else None
