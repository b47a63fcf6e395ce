"""Named, switchable steps around the model's answer (RAG_ANSWER_STEPS): a gate that abstains
before the model is asked, and quotes added to an answer that has claims. Each is measured on
and off in docs/answer-steps.md; verification itself (rag.answer.verify) accepts or rejects."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from rag.answer.prompt import NumberedSentences
from rag.answer.support import content_words, unmentioned_names
from rag.answer.verify import CitedSentence, DraftClaim, quoted
from rag.config import ANSWER_STEPS
from rag.models import Citation, Passage

NAME_GATE, QUESTION_QUOTE, COUNTERPART_QUOTE = ANSWER_STEPS


def name_gate(question: str, passages: list[Passage]) -> str | None:
    """Why the passages cannot answer, when the question names someone or something (capitalised
    words) that no retrieved passage mentions: decided before asking the model."""
    missing = unmentioned_names(question, passages)
    if missing:
        return f"the retrieved passages never mention {', '.join(missing)}"
    return None


# Two capitalised words in a row, overlapping ("Prime Minister Tony" gives both pairs).
_FULL_NAME = re.compile(r"(?=\b([A-Z][a-z]+) ([A-Z][a-z]+)\b)")


def _respelled(word: str, other: str) -> bool:
    return word != other and word[0] == other[0] and SequenceMatcher(None, word, other).ratio() >= 0.8


def names_respelled(sentence: str, other: str) -> bool:
    """Whether ``other`` names someone ``sentence`` names, spelled differently ("Mikhail
    Gorbachev" / "Mikhail Gorbachov"): outlets transliterate names differently, and sentences
    that share only a name are far apart for the embedding model."""
    theirs = _FULL_NAME.findall(other)
    return any(
        (first == their_first and _respelled(last, their_last)) or (last == their_last and _respelled(first, their_first))
        for first, last in _FULL_NAME.findall(sentence)
        for their_first, their_last in theirs
    )


def _is_cited(passage: Passage, span: CitedSentence, citations: list[Citation]) -> bool:
    start, end = passage.start + span.start, passage.start + span.end
    return any((c.document_id, c.start, c.end) == (passage.document_id, start, end) for c in citations)


def counterpart_quote(
    numbered: NumberedSentences, passages: list[Passage], citations: list[Citation], min_similarity: float,
) -> DraftClaim | None:
    """A shown sentence the answer does not cite, quoted, when it tells the same event as a
    sentence the answer cites from another article (cosine at least ``min_similarity``), or
    failing that names the same person spelled differently: the figure, time or spelling may
    differ from the one the model reported. A quote, not the model's words: asked about one
    article alone, the model never declines and stitches the question's words to the
    sentences', naming the wrong side as the actor. ``min_similarity`` above 1: never."""
    if min_similarity > 1:
        return None
    ours, others = [], []
    for number, vector in numbered.vectors.items():
        passage, span = passages[number[0] - 1], numbered.spans[number]
        text = span.text_in(passages)
        if _is_cited(passage, span, citations):
            ours.append((passage.document_id, text, vector))
        else:
            others.append((passage.document_id, text, number, vector))
    pairs = [
        (float(our_vector @ vector), names_respelled(our_text, text), number)
        for our_document, our_text, our_vector in ours
        for document, text, number, vector in others
        if document != our_document
    ]
    same_event = [(similarity, number) for similarity, _, number in pairs if similarity >= min_similarity]
    respelled = [(similarity, number) for similarity, respelled, number in pairs if respelled]
    if not (chosen := max(same_event or respelled, default=None)):
        return None
    span = numbered.spans[chosen[1]]
    return DraftClaim(quoted(span.text_in(passages), "Another article reports"), (span,))


def question_quote(
    numbered: NumberedSentences, passages: list[Passage], citations: list[Citation], question: str,
) -> DraftClaim | None:
    """A shown sentence the answer does not cite that holds every content word of the question
    (at least three), quoted: the small model answers from a sentence sharing one striking word
    with the question ("create") and passes over the one that states the question whole."""
    asked = content_words(question)
    if len(asked) < 3:
        return None
    for span in numbered.spans.values():
        text = span.text_in(passages)
        if not _is_cited(passages[span.passage - 1], span, citations) and asked <= content_words(text):
            return DraftClaim(quoted(text, "One article reports"), (span,))
    return None
