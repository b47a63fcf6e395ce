"""The answer path, one way: what the model is shown (prompt), what it wrote (parse), accepted or
rejected (verify), second replies offered by the switchable repairs, and the Answer built from
the reply that holds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from rag.answer.parse import ModelReply, ReplyParser
from rag.answer.prompt import REPLY_SCHEMA, NumberedSentences, SentenceSelector, ShownSentence, build_messages, reading_on
from rag.answer.repairs import ANSWER_PARTS, OTHER_VERSION, READ_ON, REPAIRS, other_version
from rag.answer.verify import verify
from rag.config import ANSWER_STEPS
from rag.llm import LLM, GenerationOptions
from rag.questions import question_parts, standing_parts
from rag.models import Answer, Citation, Passage, Timings

NOT_FOUND = "The articles do not contain the answer to this question."

# What Answerer.stream yields: pieces of verified answer text, then the whole Answer.
AnswerEvent = str | Answer


class Answerer:
    def __init__(
        self, llm: LLM, selector: SentenceSelector, steps: frozenset[str] = frozenset(ANSWER_STEPS),
        min_question_share: float = 0.5, max_tokens: int = 96, question_figures: bool = True,
        answer_type: bool = True, other_version_similarity: float = 0.7, min_sentence_share: float = 0.3,
        restated_words: bool = True, next_chunk: Callable[[Passage], Passage | None] | None = None,
        read_on_sentences: int = 2,
    ) -> None:
        self.llm = llm
        self.selector = selector  # replaceable: bench/gold_shown.py shows the gold sentences
        self._steps = steps
        self._min_question_share = min_question_share
        self._max_tokens = max_tokens
        self._question_figures = question_figures
        self._answer_type = answer_type
        self._other_version_similarity = other_version_similarity
        self._min_sentence_share = min_sentence_share
        self._restated_words = restated_words
        self._next_chunk = next_chunk
        self._read_on_sentences = read_on_sentences

    def numbered(self, question: str, passages: list[Passage]) -> NumberedSentences:
        """The passages' sentences the model is shown for this question."""
        return self.selector.select(question, passages)

    def answer(
        self, question: str, passages: list[Passage], retrieve_ms: float,
        options: GenerationOptions | None = None,
    ) -> Answer:
        *_, answer = self.stream(question, passages, retrieve_ms, options)
        return answer

    def stream(
        self, question: str, passages: list[Passage], retrieve_ms: float,
        options: GenerationOptions | None = None, parts: list[str] | None = None,
        part_passages: list[list[Passage]] | None = None,
    ) -> Iterator[AnswerEvent]:
        """Each verified statement as soon as the model has written it (one, or one per part of a
        question that asks two things: ``parts``, found here when not given), then the Answer. A
        reply that fails verification is never shown. ``part_passages``: the passages retrieved
        for each part, when parts are searched apart (``passages`` then holds them all)."""
        started = time.perf_counter()
        parts = question_parts(question) if parts is None else parts
        asked = parts if parts and ANSWER_PARTS in self._steps else [question]
        statements: list[str] = []
        citations: list[Citation] = []
        steps: list[str] = []
        reasons: list[str] = [] if passages else ["no passage was retrieved"]
        # The model is asked each part with its context; the answer is verified against the
        # part's own words, which its evidence must carry.
        for n, (part, standing) in enumerate(zip(asked, standing_parts(asked), strict=True) if passages else []):
            read = part_passages[n] if part_passages and len(asked) > 1 else passages
            # The sentence selection embeds; on the embedded model's two cores that would slow
            # another request's generation, so it runs in this request's turn at the LLM.
            with self.llm.turn():
                numbered = self.numbered(standing, read)
                reply = self._reply(standing, numbered, options)
            one_part = len(asked) > 1 or not parts
            claim = self._claim(reply, numbered, read, part, question, one_part)
            if isinstance(claim, _Rejected) and claim.adds_nothing and READ_ON in self._steps:
                # The cited sentence restates what the question asks about; the particulars
                # often follow it. Asked again with it and the sentences after it alone.
                with self.llm.turn():
                    first_cited = next((n for n in reply.sentences if n in numbered.shown), 0)
                    further = reading_on(numbered, read, first_cited, self._read_on_sentences, self._next_chunk)
                    second = self._reply(standing, further[1], options) if further else None
                again = self._claim(second, further[1], further[0], part, question, one_part) if second else claim
                if isinstance(again, _Claim):
                    read, claim = further[0], replace(again, steps=[READ_ON, *again.steps])
            if isinstance(claim, _Rejected):
                claim = claim.reason
                reasons.append(claim)
                continue
            statement = _render(claim, citations, read)
            # The chunks an answer was read from are among its passages.
            known = {p.chunk_id for p in passages}
            passages = passages + [p for p in read if p.chunk_id not in known]
            steps += [step for step in claim.steps if step not in steps]
            statements.append(statement)
            yield statement if len(statements) == 1 else " " + statement
        if len(asked) > 1 and statements:
            steps.insert(0, ANSWER_PARTS)
        if not statements:
            answer = Answer(
                answer=NOT_FOUND, abstained=True, abstain_reason=reasons[0], citations=[], passages=passages,
                model=self.llm.model, timings=_timings(retrieve_ms, started),
            )
            yield answer.answer
        else:
            answer = Answer(
                answer=" ".join(statements), abstained=False, steps=steps, citations=citations,
                passages=passages, model=self.llm.model, timings=_timings(retrieve_ms, started),
            )
        yield answer

    def _reply(self, question: str, numbered: NumberedSentences, options: GenerationOptions | None) -> ModelReply:
        options = options or GenerationOptions()
        capped = GenerationOptions(options.temperature, min(options.max_tokens or self._max_tokens, self._max_tokens))
        parser = ReplyParser()
        for delta in self.llm.stream_text(build_messages(question, numbered), capped, in_turn=True, schema=REPLY_SCHEMA):
            if parser.feed(delta):
                break  # leaving the stream stops the generation: the rest is closing brackets
        return parser.finish()

    def _claim(
        self, reply: ModelReply, numbered: NumberedSentences, passages: list[Passage], question: str,
        whole_question: str, one_part: bool,
    ) -> _Claim | _Rejected:
        """The reply that holds (the model's, or a repair's) with its evidence, or why none does."""
        if reply.declined:
            return _Rejected("the model found no answer in the sentences it was shown")

        def check(candidate: ModelReply):
            return verify(
                candidate, numbered, passages, question, self._min_question_share, self._question_figures,
                answer_type=self._answer_type and one_part, min_sentence_share=self._min_sentence_share,
                whole_question=whole_question, restated_words=self._restated_words,
            )

        verdict = check(reply)
        first_adds_nothing = verdict.adds_nothing
        steps: list[str] = []
        for name, repair in REPAIRS.items():
            if verdict.accepted:
                break
            if name in self._steps and (second := repair(reply, verdict, numbered, passages, question)):
                second_verdict = check(second)
                if second_verdict.accepted:
                    reply, verdict, steps = second, second_verdict, [name]
        if not verdict.accepted:
            return _Rejected(verdict.reason, first_adds_nothing)
        other = None
        if OTHER_VERSION in self._steps:
            other = other_version(verdict.evidence, numbered, passages, self._other_version_similarity)
            steps += [OTHER_VERSION] if other else []
        return _Claim(reply.answer, verdict.evidence, other, steps)


@dataclass(frozen=True)
class _Rejected:
    reason: str
    adds_nothing: bool = False  # the model's own reply only repeated the question


@dataclass(frozen=True)
class _Claim:
    answer: str
    evidence: tuple[ShownSentence, ...]
    other: ShownSentence | None  # another article's version, quoted after it
    steps: list[str]


def _render(claim: _Claim, citations: list[Citation], passages: list[Passage]) -> str:
    """The claim as answer text with [n] markers, numbering its sentences after ``citations``
    (a sentence already cited keeps its number) and adding the new ones to it."""

    def ref(sentence: ShownSentence) -> int:
        candidate = _citation(len(citations) + 1, sentence, passages)
        for citation in citations:
            if (citation.document_id, citation.start, citation.end) == (candidate.document_id, candidate.start, candidate.end):
                return citation.ref
        citations.append(candidate)
        return candidate.ref

    markers = "".join(f"[{n}]" for n in dict.fromkeys(ref(s) for s in claim.evidence))
    text = f"{claim.answer.rstrip(' .')} {markers}."
    if claim.other:
        quote = " ".join(claim.other.text_in(passages).split()).rstrip(".")
        text += f" Another article: “{quote}” [{ref(claim.other)}]."
    return text


def _timings(retrieve_ms: float, started: float) -> Timings:
    generate_ms = (time.perf_counter() - started) * 1000
    return Timings(
        retrieve_ms=round(retrieve_ms, 1), generate_ms=round(generate_ms, 1),
        total_ms=round(retrieve_ms + generate_ms, 1),
    )


def _citation(ref: int, sentence: ShownSentence, passages: list[Passage]) -> Citation:
    passage = passages[sentence.passage]
    return Citation(
        ref=ref, document_id=passage.document_id, title=passage.title, chunk_id=passage.chunk_id,
        quote=sentence.text_in(passages), start=passage.start + sentence.start,
        end=passage.start + sentence.end, metadata=passage.metadata,
    )
