"""The answer pipeline, one way, from the question to the rendered Answer:

    plan the question once (rag.questions: its parts, what each asks for)
    for each part:  retrieve -> choose the sentences to show (prompt) -> the model's reply (parse)
                    -> verify (accept/reject, with evidence) -> the switchable steps (steps)
                    -> a claim, or the reason the part is not answered
    render the claims once (render): text with [n] markers, citations, each part's status.

Nothing between the steps is text parsed again: a claim is the answer words and the sentences
that carry them until it is rendered. With ``debug`` every step leaves a TraceStep: what the
model was shown, what it wrote, each check's verdict."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rag.answer import confirm, prompt, steps
from rag.answer.confirm import CONFIRM_SCHEMA, confirm_messages
from rag.answer.links import unstated_links
from rag.answer.parse import ModelReply, ReplyParser
from rag.answer.prompt import REPLY_SCHEMA, NumberedSentences, SentenceSelector, build_messages
from rag.answer.render import NOT_FOUND, Claim, Rendering
from rag.answer.verify import verify
from rag.config import AnswerSettings, AnswerStep
from rag.llm import LLM, GenerationOptions
from rag.models import Answer, Passage, SearchFilter, Timings, TraceStep
from rag.questions import PartPlan, QuestionPlan, plan_question

# What the pipeline yields: pieces of verified answer text as each part is ready, then the Answer.
AnswerEvent = str | Answer

Retrieve = Callable[[str, int, SearchFilter | None], list[Passage]]
NextChunk = Callable[[Passage], Passage | None]


@dataclass
class _Trace:
    on: bool
    steps: list[TraceStep] = field(default_factory=list)

    def add(self, step: str, part: int | None = None, **data) -> None:
        if self.on:
            self.steps.append(TraceStep(step=step, part=part, data=data))


@dataclass(frozen=True)
class _Rejected:
    reason: str
    adds_nothing: bool = False  # the model's reply only repeated the question


class AnswerPipeline:
    """Answers a question from what ``retrieve`` finds, read by ``llm``, under ``settings``."""

    def __init__(
        self, settings: AnswerSettings, llm: LLM, selector: SentenceSelector, retrieve: Retrieve,
        next_chunk: NextChunk | None = None,
    ) -> None:
        self.settings = settings
        self.llm = llm
        self.selector = selector
        self._retrieve = retrieve
        self._next_chunk = next_chunk

    def warmup_prompts(self) -> list[list[dict]]:
        """The fixed prompts every answer begins with, for the model to read before the first."""
        prompts = [prompt.warmup_messages()]
        if AnswerStep.CONFIRM in self.settings.steps:
            prompts.append(confirm.warmup_messages())
        return prompts

    def answer(self, question: str, **kwargs) -> Answer:
        *_, answer = self.stream(question, **kwargs)
        return answer

    def stream(
        self, question: str, top_k: int | None = None, search: SearchFilter | None = None,
        options: GenerationOptions | None = None, debug: bool = False,
    ) -> Iterator[AnswerEvent]:
        """Each part's verified statement (or, for a part of a two-part question, the statement
        that the articles do not answer it) as soon as it is decided, then the Answer."""
        started = time.perf_counter()
        trace = _Trace(debug)
        plan = plan_question(question)
        trace.add("plan", parts=[{"asked": p.asked, "standing": p.standing, "kind": p.kind} for p in plan.parts])
        rendering = Rendering(plan)
        passages: dict[str, Passage] = {}
        retrieve_ms = 0.0
        for index, part in enumerate(plan.parts):
            began = time.perf_counter()
            found = self._retrieve(part.standing, top_k or self.settings.top_k, search)
            retrieve_ms += (time.perf_counter() - began) * 1000
            trace.add("retrieve", index, query=part.standing, chunks=[p.chunk_id for p in found])
            outcome, read = self._answer_part(index, part, plan, found, options, trace)
            for passage in read:
                passages.setdefault(passage.chunk_id, passage)
            piece = rendering.add(index, outcome if isinstance(outcome, Claim) else outcome.reason, read)
            if piece:
                yield piece
        answer = rendering.answer(
            list(passages.values()), self.llm.model, _timings(retrieve_ms, started),
            trace.steps if debug else None,
        )
        if answer.abstained:
            yield answer.answer
        yield answer

    # --- one part ------------------------------------------------------------------------
    def _answer_part(
        self, index: int, part: PartPlan, plan: QuestionPlan, passages: list[Passage],
        options: GenerationOptions | None, trace: _Trace,
    ) -> tuple[Claim | _Rejected, list[Passage]]:
        if not passages:
            return _Rejected("no passage was retrieved"), passages
        # The sentence selection embeds; on the embedded model's two cores that would slow
        # another request's generation, so it runs in this request's turn at the LLM.
        with self.llm.turn():
            numbered = self.selector.select(part.standing, passages)
            reply = self._reply(index, part.standing, numbered, options, trace)
            outcome = self._check(index, reply, numbered, passages, part, plan, trace)
            if isinstance(outcome, _Rejected) and outcome.adds_nothing and AnswerStep.READ_ON in self.settings.steps:
                # The cited sentence restates what the part asks about; the particulars often
                # follow it. Asked again with it and the sentences after it alone.
                first_cited = next((n for n in reply.sentences if n in numbered.shown), 0)
                further = steps.reading_on(numbered, passages, first_cited, self.settings.read_on_sentences,
                                           self._next_chunk)
                if further:
                    read, shown = further
                    second = self._reply(index, part.standing, shown, options, trace, step=AnswerStep.READ_ON)
                    again = self._check(index, second, shown, read, part, plan, trace)
                    if isinstance(again, Claim):
                        passages, outcome = read, again.with_step(AnswerStep.READ_ON)
            if isinstance(outcome, Claim) and AnswerStep.CONFIRM in self.settings.steps:
                outcome = self._confirm(index, part, outcome, passages, options, trace)
        if isinstance(outcome, Claim) and (links := unstated_links(outcome.answer, passages)):
            outcome = _Rejected(f"the answer links to {links[0]!r}, which the articles do not give")
            trace.add("links", index, accepted=False, reason=outcome.reason)
        return outcome, passages

    def _reply(
        self, index: int, question: str, numbered: NumberedSentences, options: GenerationOptions | None,
        trace: _Trace, step: str = "answer",
    ) -> ModelReply:
        options = options or GenerationOptions()
        capped = GenerationOptions(options.temperature, min(options.max_tokens or self.settings.max_tokens,
                                                            self.settings.max_tokens))
        messages = build_messages(question, numbered)
        parser = ReplyParser()
        written = []
        for delta in self.llm.stream_text(messages, capped, in_turn=True, schema=REPLY_SCHEMA):
            written.append(delta)
            if parser.feed(delta):
                break  # leaving the stream stops the generation: the rest is closing brackets
        reply = parser.finish()
        trace.add(step, index, shown=numbered.text, question=question, wrote="".join(written),
                  sentences=list(reply.sentences), answer=reply.answer)
        return reply

    def _check(
        self, index: int, reply: ModelReply, numbered: NumberedSentences, passages: list[Passage],
        part: PartPlan, plan: QuestionPlan, trace: _Trace,
    ) -> Claim | _Rejected:
        """The reply that holds (the model's, or reanchor's) with its evidence, or why none does."""
        if reply.declined:
            trace.add("verify", index, accepted=False, reason="the model declined")
            return _Rejected("the model found no answer in the sentences it was shown")
        verdict = verify(reply, numbered, passages, part, plan.question, self.settings)
        trace.add("verify", index, accepted=verdict.accepted, reason=verdict.reason)
        applied: list[str] = []
        if not verdict.accepted and AnswerStep.REANCHOR in self.settings.steps:
            if (second := steps.reanchor(reply, verdict, numbered, passages, part.standing)) is not None:
                second_verdict = verify(second, numbered, passages, part, plan.question, self.settings)
                trace.add("reanchor", index, sentences=list(second.sentences),
                          accepted=second_verdict.accepted, reason=second_verdict.reason)
                if second_verdict.accepted:
                    reply, verdict, applied = second, second_verdict, [AnswerStep.REANCHOR.value]
        if not verdict.accepted:
            return _Rejected(verdict.reason, verdict.adds_nothing)
        return Claim(reply.answer, verdict.evidence, tuple(applied))

    def _confirm(
        self, index: int, part: PartPlan, claim: Claim, passages: list[Passage],
        options: GenerationOptions | None, trace: _Trace,
    ) -> Claim | _Rejected:
        messages = confirm_messages(part.standing, claim.answer, claim.evidence, passages)
        written = self.llm.chat_json(messages, CONFIRM_SCHEMA, "confirm", GenerationOptions(0.0, 16), in_turn=True)
        try:
            states = json.loads(written).get("states") == "yes"
        except (json.JSONDecodeError, AttributeError):
            states = False
        trace.add("confirm", index, asked=messages[-1]["content"], wrote=written, accepted=states)
        if states:
            return claim
        return _Rejected("the model, asked whether the cited sentences state this answer, said they do not")


def _timings(retrieve_ms: float, started: float) -> Timings:
    total_ms = (time.perf_counter() - started) * 1000
    return Timings(
        retrieve_ms=round(retrieve_ms, 1), generate_ms=round(total_ms - retrieve_ms, 1),
        total_ms=round(total_ms, 1),
    )


__all__ = ["NOT_FOUND", "AnswerEvent", "AnswerPipeline"]
