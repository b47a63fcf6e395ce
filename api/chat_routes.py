"""The OpenAI-compatible chat endpoint, so `openai` clients and tools can talk to the service."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextvars import Context
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from api.auth import count_question
from api.question_queue import Turn, question_queue
from api.routes import ERRORS, QUESTION_ERRORS, ServiceDep
from api.schemas import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionMessage,
    ChatCompletionRequest,
    ChatUsage,
    ModelCard,
    ModelList,
)
from rag import __version__
from rag.chat import ChatMessage
from rag.chat_cli import source_line
from rag.errors import RagError
from rag.llm import GenerationOptions, TokenUsage, count_usage
from rag.models import Answer, Citation, SearchFilter
from rag.service import RagService

SERVICE_MODEL = "rag-news"
# The same answers with a "Sources:" block appended to the text, for clients that show only the
# message content (llm, Open WebUI, LlamaIndex): a model name, since every client can pick one.
SOURCES_MODEL = "rag-news+sources"
router = APIRouter(tags=["chat"], responses=ERRORS)


@router.get("/v1/models")
def list_models() -> ModelList:
    return ModelList(data=[ModelCard(id=SERVICE_MODEL), ModelCard(id=SOURCES_MODEL)])


def sources_block(citations: list[Citation]) -> str:
    """The citations as text a chat client shows under the answer ("" without any)."""
    if not citations:
        return ""
    lines = [f"- [{c.ref}] {source_line(c)}: \u201c{c.quote}\u201d" for c in citations]
    return "\n\nSources:\n" + "\n".join(lines)


def system_fingerprint(service: RagService) -> str:
    """Names the configuration that answered (version, model, answer steps), as OpenAI's does."""
    s = service.settings
    configuration = f"{__version__}|{s.llm_model}|{','.join(sorted(step.value for step in s.answer.steps))}"
    return "fp_" + hashlib.sha256(configuration.encode()).hexdigest()[:12]


def _usage(usage: TokenUsage) -> ChatUsage:
    return ChatUsage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                     total_tokens=usage.total_tokens)


def _in_context(context: Context, events: Iterator) -> Iterator:
    """``events``, each one produced inside ``context`` (its LLM calls counted there)."""
    while True:
        try:
            yield context.run(next, events)
        except StopIteration:
            return


@router.post(
    "/v1/chat/completions", response_model=ChatCompletion, dependencies=[Depends(count_question)],
    responses=QUESTION_ERRORS,
)
async def chat_completions(body: ChatCompletionRequest, request: Request, service: ServiceDep):
    """Answers the last user message (rewritten from the history into a standalone question)
    with verified citations, in OpenAI's chat.completion shape with `usage`. With `stream: true`,
    server-sent events in OpenAI's chunk shape; the final chunk carries `citations`, and with
    `stream_options.include_usage` one more chunk carries `usage`. The model `rag-news+sources`
    also appends the citations to the text as a "Sources:" block. Questions wait their turn at
    the model in a bounded queue; a full one is 503 with Retry-After."""
    messages = [ChatMessage(role=m.role, content=m.text()) for m in body.messages]
    options = GenerationOptions(temperature=body.temperature, max_tokens=body.max_tokens)
    search = body.search_filter()
    usage = TokenUsage()
    counted = count_usage(usage)  # every LLM call of this answer adds its tokens to usage
    reply = _Reply(
        id=f"chatcmpl-{uuid.uuid4().hex[:24]}", created=int(time.time()),
        model=SOURCES_MODEL if body.model == SOURCES_MODEL else SERVICE_MODEL,
        fingerprint=system_fingerprint(service), usage=usage,
    )
    turn = await question_queue(request).enter(request)
    if not body.stream:
        with turn:
            question, answer = await turn.run(counted.run, _answer, service, messages, options, body.top_k, search)
        content = answer.answer + (sources_block(answer.citations) if reply.model == SOURCES_MODEL else "")
        return ChatCompletion(
            id=reply.id, created=reply.created, model=reply.model, system_fingerprint=reply.fingerprint,
            choices=[ChatChoice(message=ChatCompletionMessage(content=content))], usage=_usage(usage),
            citations=answer.citations, abstained=answer.abstained, abstain_reason=answer.abstain_reason,
            parts=answer.parts, rewritten_question=question, passages=answer.passages,
        )
    try:
        question, events = await turn.run(counted.run, service.chat, messages, options, body.top_k, search)
        events = _in_context(counted, events)
        # The first event is awaited here, so an unreachable LLM is a 503, not a broken stream.
        first = await turn.run(next, events)
    except BaseException:
        turn.leave()
        raise
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    return StreamingResponse(
        _sse(_events(turn, first, events), question, reply, include_usage), media_type="text/event-stream",
        background=BackgroundTask(turn.leave),  # also when the stream never started
    )


def _answer(
    service: RagService, messages: list[ChatMessage], options: GenerationOptions, top_k: int | None,
    search: SearchFilter | None,
) -> tuple[str, Answer]:
    """The standalone question and its whole answer (in the question's thread)."""
    question, events = service.chat(messages, options, top_k, search)
    *_, answer = events
    return question, answer


async def _events(turn: Turn, first: str | Answer, events: Iterator[str | Answer]) -> AsyncIterator[str | Answer]:
    """The answer's events, each read in the question's thread; the turn is left at the end."""
    try:
        yield first
        while (event := await turn.run(next, events, None)) is not None:
            yield event
    finally:
        turn.leave()


@dataclass(frozen=True)
class _Reply:
    """What every chunk of one reply repeats, and the usage counted while it is written."""

    id: str
    created: int
    model: str
    fingerprint: str
    usage: TokenUsage


async def _sse(
    events: AsyncIterator[str | Answer], question: str, reply: _Reply, include_usage: bool
) -> AsyncIterator[str]:
    def chunk(delta: dict | None, finish: str | None = None, **extra) -> str:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        body = {"id": reply.id, "object": "chat.completion.chunk", "created": reply.created,
                "model": reply.model, "system_fingerprint": reply.fingerprint, "choices": choices, **extra}
        if include_usage:
            body.setdefault("usage", None)  # as OpenAI: null on every chunk but the last
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for event in events:
            if isinstance(event, Answer):
                if reply.model == SOURCES_MODEL and event.citations:
                    yield chunk({"content": sources_block(event.citations)})
                yield chunk({}, "stop", citations=[c.model_dump() for c in event.citations],
                            abstained=event.abstained, abstain_reason=event.abstain_reason,
                            parts=[p.model_dump() for p in event.parts], rewritten_question=question, passages=[p.model_dump() for p in event.passages])
            else:
                yield chunk({"content": event})
    except RagError as exc:  # the stream has begun: report in-band, as OpenAI does
        yield f"data: {json.dumps({'error': {'message': exc.message, 'type': type(exc).__name__}})}\n\n"
    else:
        if include_usage:
            yield chunk(None, usage=_usage(reply.usage).model_dump())
    yield "data: [DONE]\n\n"
