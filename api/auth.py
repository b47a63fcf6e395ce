"""The trust boundary: who may call the API (one dependency on the routers) and how much
(a per-caller question quota, a request-size cap, CORS), all from Settings."""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag.config import Settings
from rag.errors import TooManyQuestionsError

# auto_error=False: a missing key is our 401 with a message, not FastAPI's 403. Declaring the
# scheme also gives the OpenAPI page its "Authorize" button.
_bearer = HTTPBearer(auto_error=False, description="One of RAG_API_KEY or RAG_READ_ONLY_API_KEY.")
_WRITES = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a key (named by its kind and position, never by itself) or, with
    authentication off, the client address."""

    name: str
    can_write: bool


def _matches(given: str, keys: list[str]) -> int | None:
    """The position of the key ``given`` is, compared in constant time with every key."""
    found = None
    for number, key in enumerate(keys, 1):
        if hmac.compare_digest(given.encode(), key.encode()):
            found = number
    return found


async def authorize(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    settings: Settings = request.app.state.service.settings
    if not settings.auth_enabled:
        return Caller(name=f"client {request.client.host if request.client else 'unknown'}", can_write=True)
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "an API key is required: send the header 'Authorization: Bearer KEY'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = credentials.credentials
    if (number := _matches(given, settings.api_keys)) is not None:
        return Caller(name=f"key {number}", can_write=True)
    if (number := _matches(given, settings.read_only_api_keys)) is not None:
        caller = Caller(name=f"read-only key {number}", can_write=False)
        if request.method in _WRITES and request.url.path.startswith("/v1/documents"):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "this API key is read-only: it cannot ingest or delete documents"
            )
        return caller
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, "invalid API key", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


CallerDep = Annotated[Caller, Depends(authorize)]


# Who sent the request an app routed beside the routers is serving (see KeyRequired).
_caller: ContextVar[Caller | None] = ContextVar("rag_api_caller", default=None)


class KeyRequired:
    """A pure ASGI wrapper asking an app routed beside the routers (the MCP endpoint) for the
    same key as `authorize`, with the same 401s; the caller is then known to what the app runs
    for the request (``question_counter``)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            try:
                _caller.set(await authorize(request, await _bearer(request)))
            except HTTPException as exc:
                refusal = JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


class QuestionQuota:
    """At most ``per_minute`` questions per caller in any 60 seconds (a sliding window)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._asked: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def take(self, caller: str) -> float:
        """0 when ``caller`` may ask now (and counts it), else the seconds until it may."""
        if not self.per_minute:
            return 0.0
        now = self.clock()
        with self._lock:
            asked = self._asked[caller]
            while asked and asked[0] <= now - 60:
                asked.popleft()
            if len(asked) >= self.per_minute:
                return asked[0] + 60 - now
            asked.append(now)
            return 0.0


async def count_question(request: Request, caller: CallerDep) -> None:
    """A dependency of the routes that ask the LLM: 429 with Retry-After over the quota."""
    wait = request.app.state.question_quota.take(caller.name)
    if wait:
        seconds = max(1, math.ceil(wait))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many questions: at most {request.app.state.question_quota.per_minute} a minute; "
            f"try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


def question_counter(quota: QuestionQuota) -> Callable[[], None]:
    """For an app behind KeyRequired (the MCP `ask` tool): count a question of the caller
    against the same quota as `count_question`, raising TooManyQuestionsError over it."""

    def count() -> None:
        caller = _caller.get()
        wait = quota.take(caller.name if caller else "unknown caller")
        if wait:
            raise TooManyQuestionsError(
                f"too many questions: at most {quota.per_minute} a minute; try again in {max(1, math.ceil(wait))} s"
            )

    return count


class RequestSizeLimit:
    """A pure ASGI middleware: a body whose Content-Length is over ``max_bytes`` gets 413 before
    any of it is read."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            refusal = None
            if length is not None and not length.isdigit():
                refusal = JSONResponse({"detail": "invalid Content-Length header"}, status_code=400)
            elif length is not None and int(length) > self.max_bytes:
                refusal = JSONResponse(
                    {"detail": f"request body over the {self.max_bytes}-byte limit (RAG_MAX_REQUEST_BYTES)"},
                    status_code=413,
                )
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
