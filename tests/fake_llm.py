"""A fake OpenAI-compatible chat endpoint at the HTTP boundary (an httpx transport): it
records every request and answers with scripted replies, so tests see exactly what reached
the model and control exactly what came back."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import httpx

BASE_URL = "http://fake-llm.test/v1"


def reply(numbers: list[int], answer: str) -> str:
    """A reply in the shape the prompt asks for: the sentence numbers, then the answer."""
    return json.dumps({"sentences": numbers, "answer": answer})


NOT_FOUND_REPLY = reply([], "")
CONFIRMED = json.dumps({"states": "yes"})
DENIED = json.dumps({"states": "no"})


def is_confirm_check(request: dict) -> bool:
    """Whether the request is the confirm step's yes-or-no question (its reply schema has
    "states"), not an answer."""
    schema = (request.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    return "states" in schema.get("properties", {})


def cited_reply(*claims: tuple[str, str | int]) -> str:
    """One reply stating every claim (statement, sentence numbers: 3, "3" or "3][5"), the
    statements joined, the numbers in order."""
    numbers = [int(n) for _, ids in claims for n in str(ids).replace("[", "").split("]") if n.strip()]
    return reply(list(dict.fromkeys(numbers)), ". ".join(statement.rstrip(".") for statement, _ in claims))


def sentences_in(request: dict) -> dict[str, str]:
    """The numbered sentences as the prompt showed them to the model: {"3": text}."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    found = (line.split("] ", 1) for line in user.splitlines() if line.startswith("["))
    return {number.lstrip("["): text for number, text in found}


def articles_in(request: dict) -> list[str]:
    """The titles of the articles the prompt showed, in order."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    return [line.removeprefix("Article: ") for line in user.splitlines() if line.startswith("Article: ")]


def sentence_number(request: dict, fragment: str) -> str:
    return next(number for number, text in sentences_in(request).items() if fragment in text)


def cite(fragment: str, statement: str, shift: int = 0) -> Callable[[dict], str]:
    """A reply citing the sentence that contains ``fragment``, or the sentence ``shift``
    numbers on, to play a model that gives its neighbour's number."""

    def respond(request: dict) -> str:
        return cited_reply((statement, int(sentence_number(request, fragment)) + shift))

    return respond


class InterruptMidStream:
    """A streamed reply that stops, as if the user pressed Ctrl-C, after its first pieces."""

    def __init__(self, content: str) -> None:
        self.content = content


class PausedStream:
    """A streamed reply that stops after ``first`` until ``resume`` is set, so a test can look at
    a half-written answer. Each part is text or, as a reply, a function of the request."""

    def __init__(self, first: str | Callable[[dict], str], rest: str | Callable[[dict], str],
                 resume: threading.Event, timeout: float = 30) -> None:
        self.first, self.rest, self.resume, self.timeout = first, rest, resume, timeout

    def stream(self, request: dict) -> Iterator[bytes]:
        def text(part: str | Callable[[dict], str]) -> str:
            return part(request) if callable(part) else part

        yield _sse(text(self.first), request["model"], end=False)
        if not self.resume.wait(self.timeout):
            raise TimeoutError("fake LLM: the paused reply was never resumed")
        yield _sse(text(self.rest), request["model"], begin=False)


Reply = str | Callable[[dict], str] | Exception | PausedStream | InterruptMidStream


class FakeChatServer:
    """Answers each request with the next scripted reply. The confirm step's yes-or-no checks are
    kept apart (``checks``) and answered "yes" unless a verdict is scripted (``script_checks``),
    so tests script only the answers they are about."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.replies: list[Reply] = []
        self.checks: list[dict] = []
        self.verdicts: list[str] = []

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def script_checks(self, *verdicts: str) -> None:
        """The confirm step's next verdicts: CONFIRMED or DENIED."""
        self.verdicts.extend(verdicts)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=self.transport)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"object": "list", "data": [{"id": "fake", "object": "model"}]})
        body = json.loads(request.content)
        if is_confirm_check(body):
            self.checks.append(body)
            verdict = self.verdicts.pop(0) if self.verdicts else CONFIRMED
            return httpx.Response(200, json={
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": verdict}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            })
        self.requests.append(body)
        if not self.replies:
            return httpx.Response(500, json={"error": {"message": "fake LLM: no reply scripted"}})
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, PausedStream):
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=reply.stream(body))
        if isinstance(reply, InterruptMidStream):
            return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                  content=_interrupted(_sse(reply.content, body["model"])))
        content = reply(body) if callable(reply) else reply
        if body.get("stream"):
            return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                  content=_sse(content, body["model"]))
        return httpx.Response(200, json={
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })


def _sse(content: str, model: str, piece: int = 7, begin: bool = True, end: bool = True) -> bytes:
    """The reply as OpenAI streams it: small content deltas, then [DONE] (``begin`` and ``end``
    off: a middle part of a stream)."""
    def event(delta: dict, finish: str | None = None) -> str:
        chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(chunk)}\n\n"

    parts = [event({"role": "assistant", "content": ""})] if begin else []
    parts += [event({"content": content[i : i + piece]}) for i in range(0, len(content), piece)]
    parts += [event({}, "stop"), "data: [DONE]\n\n"] if end else []
    return "".join(parts).encode()


def _interrupted(body: bytes):
    yield body[: len(body) // 3]
    raise KeyboardInterrupt


def asgi_app(server: FakeChatServer):
    """``server`` as an ASGI app, for a real uvicorn to serve it where a process other than the
    test's needs the fake (RAG_LLM_BASE_URL at http://127.0.0.1:PORT/v1)."""

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = httpx.Request(scope["method"], f"http://fake-llm.test{scope['path']}",
                                headers=[(k.decode(), v.decode()) for k, v in scope["headers"]], content=body)
        response = server.transport.handle_request(request)
        content = response.read()
        headers = [(k.encode(), v.encode()) for k, v in response.headers.items()
                   if k.lower() not in ("content-length", "transfer-encoding")]
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    return app
