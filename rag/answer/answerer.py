"""The answer path, one way: what the model is shown (prompt), what it wrote (parse), accepted or
rejected (verify), second replies offered by the switchable repairs, and the Answer built from
the reply that holds."""

from __future__ import annotations

import time
from collections.abc import Iterator

from rag.answer.parse import ModelReply, ReplyParser
from rag.answer.prompt import REPLY_SCHEMA, NumberedSentences, SentenceSelector, build_messages
from rag.answer.repairs import OTHER_VERSION, REPAIRS, other_version
from rag.answer.verify import verify
from rag.config import ANSWER_STEPS
from rag.llm import LLM, GenerationOptions
from rag.retrieval import question_parts
from rag.models import Answer, Citation, Passage, Timings

NOT_FOUND = "The articles do not contain the answer to this question."

# What Answerer.stream yields: pieces of verified answer text, then the whole Answer.
AnswerEvent = str | Answer


class Answerer:
    def __init__(
        self, llm: LLM, selector: SentenceSelector, steps: frozenset[str] = frozenset(ANSWER_STEPS),
        min_question_share: float = 0.5, max_tokens: int = 96, question_figures: bool = True,
        answer_type: bool = True, other_version_similarity: float = 0.7,
    ) -> None:
        self.llm = llm
        self._selector = selector
        self._steps = steps
        self._min_question_share = min_question_share
        self._max_tokens = max_tokens
        self._question_figures = question_figures
        self._answer_type = answer_type
        self._other_version_similarity = other_version_similarity

    def numbered(self, question: str, passages: list[Passage]) -> NumberedSentences:
        """The passages' sentences the model is shown for this question."""
        return self._selector.select(question, passages)

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
        """The verified answer's text as soon as the model has written it, then the Answer. An
        answer that fails verification is never shown."""
        started = time.perf_counter()
        if not passages:
            answer = self._abstained("no passage was retrieved", passages, retrieve_ms, started)
        else:
            # The sentence selection embeds; on the embedded model's two cores that would slow
            # another request's generation, so it runs in this request's turn at the LLM.
            with self.llm.turn():
                numbered = self.numbered(question, passages)
                reply = self._reply(question, numbered, options)
            answer = self._checked(reply, numbered, passages, question, retrieve_ms, started)
        yield answer.answer
        yield answer

    def _reply(self, question: str, numbered: NumberedSentences, options: GenerationOptions | None) -> ModelReply:
        options = options or GenerationOptions()
        capped = GenerationOptions(options.temperature, min(options.max_tokens or self._max_tokens, self._max_tokens))
        parser = ReplyParser()
        for delta in self.llm.stream_text(build_messages(question, numbered), capped, in_turn=True, schema=REPLY_SCHEMA):
            if parser.feed(delta):
                break  # leaving the stream stops the generation: the rest is closing brackets
        return parser.finish()

    def _checked(
        self, reply: ModelReply, numbered: NumberedSentences, passages: list[Passage], question: str,
        retrieve_ms: float, started: float,
    ) -> Answer:
        if reply.declined:
            return self._abstained("the model found no answer in the sentences it was shown", passages, retrieve_ms, started)
        one_part = not question_parts(question)

        def check(candidate: ModelReply):
            return verify(
                candidate, numbered, passages, question, self._min_question_share, self._question_figures,
                answer_type=self._answer_type and one_part,
            )

        verdict = check(reply)
        steps: list[str] = []
        for name, repair in REPAIRS.items():
            if verdict.accepted:
                break
            if name in self._steps and (second := repair(reply, verdict, numbered, passages, question)):
                second_verdict = check(second)
                if second_verdict.accepted:
                    reply, verdict, steps = second, second_verdict, [name]
        if not verdict.accepted:
            return self._abstained(verdict.reason, passages, retrieve_ms, started)
        citations = [_citation(ref, sentence, passages) for ref, sentence in enumerate(verdict.evidence, 1)]
        markers = "".join(f"[{c.ref}]" for c in citations)
        text = f"{reply.answer.rstrip(' .')} {markers}."
        if OTHER_VERSION in self._steps and (
            other := other_version(verdict.evidence, numbered, passages, self._other_version_similarity)
        ):
            citations.append(_citation(len(citations) + 1, other, passages))
            quote = " ".join(other.text_in(passages).split()).rstrip(".")
            text += f" Another article: “{quote}” [{len(citations)}]."
            steps.append(OTHER_VERSION)
        return Answer(
            answer=text, abstained=False, steps=steps, citations=citations, passages=passages,
            model=self.llm.model, timings=_timings(retrieve_ms, started),
        )

    def _abstained(self, reason: str, passages: list[Passage], retrieve_ms: float, started: float) -> Answer:
        return Answer(
            answer=NOT_FOUND, abstained=True, abstain_reason=reason, citations=[], passages=passages,
            model=self.llm.model, timings=_timings(retrieve_ms, started),
        )


def _timings(retrieve_ms: float, started: float) -> Timings:
    generate_ms = (time.perf_counter() - started) * 1000
    return Timings(
        retrieve_ms=round(retrieve_ms, 1), generate_ms=round(generate_ms, 1),
        total_ms=round(retrieve_ms + generate_ms, 1),
    )


def _citation(ref: int, sentence, passages: list[Passage]) -> Citation:
    passage = passages[sentence.passage]
    return Citation(
        ref=ref, document_id=passage.document_id, title=passage.title, chunk_id=passage.chunk_id,
        quote=sentence.text_in(passages), start=passage.start + sentence.start,
        end=passage.start + sentence.end, metadata=passage.metadata,
    )
