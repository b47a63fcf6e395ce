"""The OpenAI-compatible chat endpoint, so `openai` clients and tools can talk to the service."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator

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
    ModelCard,
    ModelList,
)
from rag.chat import ChatMessage
from rag.errors import RagError
from rag.llm import GenerationOptions
from rag.models import Answer, SearchFilter
from rag.service import RagService

SERVICE_MODEL = "rag-news"
router = APIRouter(tags=["chat"], responses=ERRORS)


@router.get("/v1/models")
def list_models() -> ModelList:
    return ModelList(data=[ModelCard(id=SERVICE_MODEL)])


@router.post(
    "/v1/chat/completions", response_model=ChatCompletion, dependencies=[Depends(count_question)],
    responses=QUESTION_ERRORS,
)
async def chat_completions(body: ChatCompletionRequest, request: Request, service: ServiceDep):
    """Answers the last user message (rewritten from the history into a standalone question)
    with verified citations. With `stream: true`, server-sent events in OpenAI's chunk shape;
    the final chunk carries `citations`. Questions wait their turn at the model in a bounded
    queue; a full one is 503 with Retry-After."""
    messages = [ChatMessage(role=m.role, content=m.text()) for m in body.messages]
    options = GenerationOptions(temperature=body.temperature, max_tokens=body.max_tokens)
    search = body.search_filter()
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    turn = await question_queue(request).enter(request)
    if not body.stream:
        with turn:
            question, answer = await turn.run(_answer, service, messages, options, body.top_k, search)
        return ChatCompletion(
            id=completion_id, created=created, model=SERVICE_MODEL,
            choices=[ChatChoice(message=ChatCompletionMessage(content=answer.answer))],
            citations=answer.citations, abstained=answer.abstained, abstain_reason=answer.abstain_reason,
            rewritten_question=question, passages=answer.passages,
        )
    try:
        question, events = await turn.run(service.chat, messages, options, body.top_k, search)
        # The first event is awaited here, so an unreachable LLM is a 503, not a broken stream.
        first = await turn.run(next, events)
    except BaseException:
        turn.leave()
        raise
    return StreamingResponse(
        _sse(_events(turn, first, events), question, completion_id, created), media_type="text/event-stream",
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


async def _sse(
    events: AsyncIterator[str | Answer], question: str, completion_id: str, created: int
) -> AsyncIterator[str]:
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                "model": SERVICE_MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for event in events:
            if isinstance(event, Answer):
                yield chunk({}, "stop", citations=[c.model_dump() for c in event.citations],
                            abstained=event.abstained, abstain_reason=event.abstain_reason,
                            rewritten_question=question, passages=[p.model_dump() for p in event.passages])
            else:
                yield chunk({"content": event})
    except RagError as exc:  # the stream has begun: report in-band, as OpenAI does
        yield f"data: {json.dumps({'error': {'message': exc.message, 'type': type(exc).__name__}})}\n\n"
    yield "data: [DONE]\n\n"
