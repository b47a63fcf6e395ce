"""The trust boundary: who may call the API (one dependency on the routers, and the same
check in front of the body), from where (Host, Origin, content types without keys) and how much
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


def check_key(settings: Settings, method: str, path: str, authorization: str | None) -> Caller | None:
    """The caller a request's ``Authorization`` header names (None with authentication off),
    or the HTTPException refusing it: 401 without a known key, 403 for a read-only key's write."""
    if not settings.auth_enabled:
        return None
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "an API key is required: send the header 'Authorization: Bearer KEY'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = given.strip()
    if (number := _matches(given, settings.api_keys)) is not None:
        return Caller(name=f"key {number}", can_write=True)
    if (number := _matches(given, settings.read_only_api_keys)) is not None:
        if method in _WRITES and path.startswith("/v1/documents"):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "this API key is read-only: it cannot ingest or delete documents"
            )
        return Caller(name=f"read-only key {number}", can_write=False)
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, "invalid API key", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


async def authorize(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    settings: Settings = request.app.state.service.settings
    caller = check_key(settings, request.method, request.url.path, request.headers.get("authorization"))
    return caller or Caller(name=f"client {request.client.host if request.client else 'unknown'}", can_write=True)


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


# The content types each state-changing route documents; anything else is 415 before the body
# is read. A browser may send text/plain or a form to any origin without asking first, so
# accepting JSON sent as text/plain would let any web page write to a server without a key.
_JSON = ("application/json",)
_BODY_TYPES = {"/v1/documents": _JSON + ("multipart/form-data",)}
# A refusal sent before the body was read closes the connection, so that the client stops
# sending (uvicorn would otherwise read the rest of the body, if only to throw it away).
_HANG_UP = {"Connection": "close"}
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class BodyTooLarge(HTTPException):
    """A request body that grew past the limit while it was read."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"request body over the {max_bytes}-byte limit (RAG_MAX_REQUEST_BYTES)",
            headers=dict(_HANG_UP),
        )


def _host_name(host: str) -> str:
    """``host[:port]`` or ``[v6]:port`` without the port, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class RequestGuard:
    """A pure ASGI middleware in front of every route, doing what must happen before a body is
    read: with authentication on, the key check (a request without a known key is 401 unread);
    with it off, the checks that keep other web pages out (a Host that is not the server's own:
    403, against DNS rebinding; a write from a foreign Origin: 403, against cross-site requests);
    a state-changing request in a content type its route does not document: 415; and the size
    cap, by Content-Length when one is sent and by counting the body as it streams in (a chunked
    upload has no length), 413 as soon as it passes ``max_request_bytes``."""

    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.max_bytes = settings.max_request_bytes
        own = {settings.host.strip("[]").lower()} - {"0.0.0.0", "::", ""}
        self.hosts = _LOOPBACK_HOSTS | own | {h.lower() for h in settings.allowed_hosts}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check(scope)
        except HTTPException as refusal:
            headers = {**(refusal.headers or {}), **_HANG_UP}
            await JSONResponse({"detail": refusal.detail}, refusal.status_code, headers)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as refusal:  # raised where no exception handler turned it into a response
            if started:
                raise
            await JSONResponse({"detail": refusal.detail}, refusal.status_code, refusal.headers)(scope, receive, send)

    def _check(self, scope) -> None:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        method, path = scope["method"], scope["path"]
        if path.startswith("/v1/"):
            check_key(self.settings, method, path, headers.get("authorization"))
        if not self.settings.auth_enabled:
            self._check_site(method, headers)
        if method in ("POST", "PUT", "PATCH") and path.startswith("/v1/"):
            media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            accepted = _BODY_TYPES.get(path, _JSON)
            if media_type not in accepted:
                raise HTTPException(
                    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                    f"Content-Type {media_type or '(none)'} is not accepted here: send {' or '.join(accepted)}",
                )
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid Content-Length header")
        if length is not None and int(length) > self.max_bytes:
            raise BodyTooLarge(self.max_bytes)

    def _check_site(self, method: str, headers: dict[str, str]) -> None:
        """Without keys, only the server's own pages (and configured origins) may use it."""
        host = headers.get("host", "")
        if "*" not in self.hosts and _host_name(host) not in self.hosts:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"Host {_host_name(host) or '(none)'} is not this server's: add it to RAG_ALLOWED_HOSTS",
            )
        origin = headers.get("origin")
        if method in _WRITES and origin is not None:
            same = origin.lower().split("://", 1)[-1] == host.lower()
            if not same and origin not in self.settings.cors_origins:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"requests from the web page at {origin} are refused: add it to RAG_CORS_ORIGINS to allow it",
                )
