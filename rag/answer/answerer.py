"""The answer path, one way: what the model is shown (prompt), what it wrote (parse), each claim
accepted or rejected (verify), the switchable steps around it (repairs), and the Answer built
from what survives."""

from __future__ import annotations

import time
from collections.abc import Iterator

from rag.answer.parse import CitedProseParser
from rag.answer.prompt import NumberedSentences, SentenceSelector, build_messages, number_sentences
from rag.answer.repairs import (
    ANSWER_STEPS,
    COUNTERPART_QUOTE,
    NAME_GATE,
    QUESTION_QUOTE,
    counterpart_quote,
    name_gate,
    question_quote,
)
from rag.answer.verify import ClaimVerifier, DraftClaim, render, render_claim
from rag.llm import LLM, GenerationOptions
from rag.models import Answer, Passage, Timings

MAX_CLAIMS = 3
NOT_FOUND = "The articles do not contain the answer to this question."


def _unanswerable_reason(question: str, passages: list[Passage], steps: frozenset[str]) -> str | None:
    """Why the passages cannot answer, decided before asking the model."""
    if not passages:
        return "no passage was retrieved"
    return name_gate(question, passages) if NAME_GATE in steps else None


def _verified(drafts: list[DraftClaim], verifier: ClaimVerifier) -> Iterator[str]:
    """The text of each draft that passes verification, as it will read in the answer."""
    for draft in drafts:
        if len(verifier.claims) < MAX_CLAIMS and (claim := verifier.add(draft)):
            yield (" " if len(verifier.claims) > 1 else "") + render_claim(claim)


def _quote(verifier: ClaimVerifier, quote: DraftClaim | None) -> Iterator[str]:
    """A quote closing an answer that has claims, if it passes verification."""
    if verifier.claims and quote and (claim := verifier.add(quote)):
        yield " " + render_claim(claim)


# What Answerer.stream yields: pieces of verified answer text, then the whole Answer.
AnswerEvent = str | Answer


class Answerer:
    def __init__(
        self, llm: LLM, selector: SentenceSelector | None = None, counterpart_similarity: float = 2.0,
        steps: frozenset[str] = frozenset(ANSWER_STEPS),
    ) -> None:
        self.llm = llm
        self._selector = selector
        self._counterpart_similarity = counterpart_similarity
        self._steps = steps

    def numbered(self, question: str, passages: list[Passage]) -> NumberedSentences:
        """The passages' sentences the model is shown for this question."""
        return number_sentences(passages, self._selector.select(question, passages) if self._selector else None)

    def answer(
        self, question: str, passages: list[Passage], retrieve_ms: float,
        options: GenerationOptions | None = None,
    ) -> Answer:
        *_, answer = self.stream(question, passages, retrieve_ms, options)
        return answer

    def stream(
        self, question: str, passages: list[Passage], retrieve_ms: float,
        options: GenerationOptions | None = None,
    ) -> Iterator[AnswerEvent]:
        """Verified statements as soon as each claim is complete, then the Answer. A claim
        that fails verification is never shown."""
        started = time.perf_counter()
        verifier = ClaimVerifier(passages, question)
        reason = _unanswerable_reason(question, passages, self._steps)
        if not reason:
            # The sentence selection embeds; on the embedded model's two cores that would slow
            # another request's generation, so it runs in this request's turn at the LLM.
            with self.llm.turn():
                numbered = self.numbered(question, passages)
                verifier = ClaimVerifier(passages, question, shown=list(numbered.spans.values()))
                parser = CitedProseParser(numbered)
                for delta in self.llm.stream_text(build_messages(question, numbered), options, in_turn=True):
                    yield from _verified(parser.feed(delta), verifier)
                    if len(verifier.claims) >= MAX_CLAIMS:
                        break  # leaving the stream stops the generation: nothing more would be shown
                yield from _verified(parser.finish(), verifier)
                # The second quote sees the first one's citation, so no sentence is quoted twice.
                if QUESTION_QUOTE in self._steps:
                    yield from _quote(verifier, question_quote(numbered, passages, verifier.citations, question))
                if COUNTERPART_QUOTE in self._steps:
                    yield from _quote(verifier, counterpart_quote(
                        numbered, passages, verifier.citations, self._counterpart_similarity,
                    ))
            if parser.declined:
                reason = "the model found no answer in the passages"
        answer = self._finish(verifier, reason, passages, retrieve_ms, started)
        if answer.abstained:
            yield answer.answer
        yield answer

    def _finish(
        self, verifier: ClaimVerifier, reason: str | None, passages: list[Passage],
        retrieve_ms: float, started: float,
    ) -> Answer:
        generate_ms = (time.perf_counter() - started) * 1000
        timings = Timings(
            retrieve_ms=round(retrieve_ms, 1), generate_ms=round(generate_ms, 1),
            total_ms=round(retrieve_ms + generate_ms, 1),
        )
        if not verifier.claims:
            return Answer(
                answer=NOT_FOUND, abstained=True,
                abstain_reason=reason or "no claim of the model's answer has verifiable evidence in the passages",
                citations=[], passages=passages, model=self.llm.model, timings=timings,
            )
        text, citations = render(verifier.claims)
        return Answer(
            answer=text, abstained=False, citations=citations, passages=passages,
            model=self.llm.model, timings=timings,
        )
