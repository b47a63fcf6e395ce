"""The OpenAI-compatible chat endpoint, so `openai` clients and tools can talk to the service."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from itertools import chain

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.auth import count_question
from api.routes import ERRORS, ServiceDep
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
from rag.models import Answer

SERVICE_MODEL = "rag-news"
router = APIRouter(tags=["chat"], responses=ERRORS)


@router.get("/v1/models")
def list_models() -> ModelList:
    return ModelList(data=[ModelCard(id=SERVICE_MODEL)])


@router.post("/v1/chat/completions", response_model=ChatCompletion, dependencies=[Depends(count_question)])
async def chat_completions(body: ChatCompletionRequest, service: ServiceDep):
    """Answers the last user message (rewritten from the history into a standalone question)
    with verified citations. With `stream: true`, server-sent events in OpenAI's chunk shape;
    the final chunk carries `citations`."""
    messages = [ChatMessage(role=m.role, content=m.text()) for m in body.messages]
    options = GenerationOptions(temperature=body.temperature, max_tokens=body.max_tokens)
    question, events = await run_in_threadpool(service.chat, messages, options, body.top_k, body.search_filter())
    # The first event is awaited here, so an unreachable LLM is a 503, not a broken stream.
    first = await run_in_threadpool(next, events)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    if body.stream:
        return StreamingResponse(
            _sse(chain([first], events), question, completion_id, created), media_type="text/event-stream"
        )
    answer = first if isinstance(first, Answer) else next(e for e in events if isinstance(e, Answer))
    return ChatCompletion(
        id=completion_id, created=created, model=SERVICE_MODEL,
        choices=[ChatChoice(message=ChatCompletionMessage(content=answer.answer))],
        citations=answer.citations, abstained=answer.abstained, abstain_reason=answer.abstain_reason,
        parts=answer.parts, rewritten_question=question, passages=answer.passages,
    )


def _sse(events: Iterator[str | Answer], question: str, completion_id: str, created: int) -> Iterator[str]:
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                "model": SERVICE_MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for event in events:
            if isinstance(event, Answer):
                yield chunk({}, "stop", citations=[c.model_dump() for c in event.citations],
                            abstained=event.abstained, abstain_reason=event.abstain_reason,
                            parts=[p.model_dump() for p in event.parts], rewritten_question=question, passages=[p.model_dump() for p in event.passages])
            else:
                yield chunk({"content": event})
    except RagError as exc:  # the stream has begun: report in-band, as OpenAI does
        yield f"data: {json.dumps({'error': {'message': exc.message, 'type': type(exc).__name__}})}\n\n"
    yield "data: [DONE]\n\n"
