"""The answer pipeline's switchable steps that offer a second reading when verification rejects
the model's reply (RAG_ANSWER__STEPS; each second reply is verified like the model's own, and
each step is measured on and off in docs/answer-steps.md): reanchor cites the shown sentences
that hold the answer's words; reading_on (the read_on step) shows the model what follows the
sentence it cited. The confirm step, a check rather than a second reading, is rag.answer.confirm."""

from __future__ import annotations

from collections.abc import Callable

from rag.answer.parse import ModelReply
from rag.answer.prompt import NumberedSentences, _Candidate, _candidates, number_sentences
from rag.answer.verify import Verdict
from rag.models import Passage
from rag.text import content_terms

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


def reading_on(
    numbered: NumberedSentences, passages: list[Passage], number: int, count: int,
    next_chunk: Callable[[Passage], Passage | None] | None = None,
) -> tuple[list[Passage], NumberedSentences] | None:
    """The shown sentence ``number`` and the ``count`` sentences after it in its article,
    numbered afresh: a report often restates its subject in one sentence and gives the
    particulars (who, where, how much) in the next, which shares few words with the question.
    Read from the sentence's passage, then from the chunk after it (``next_chunk``), which joins
    the passages returned; None when nothing follows."""
    sentence = numbered.shown.get(number)
    if sentence is None:
        return None
    passages = list(passages)
    read_to = passages[sentence.passage].start + sentence.end
    following: list[_Candidate] = []
    index = sentence.passage
    while True:
        current = passages[index]
        following += [
            _Candidate(index, c.start, c.end) for c in _candidates([current]) if current.start + c.start >= read_to
        ][: count - len(following)]
        if len(following) >= count or next_chunk is None or (after := next_chunk(current)) is None:
            break
        passages.append(after)
        index = len(passages) - 1
    if not following:
        return None
    cited = _Candidate(sentence.passage, sentence.start, sentence.end)
    return passages, number_sentences(passages, [cited, *following])
