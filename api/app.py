"""The FastAPI application factory."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.routing import Route

from api.auth import KeyRequired, QuestionQuota, RequestGuard, authorize, question_counter
from api.chat_routes import router as chat_router
from api.mcp_server import build_mcp_server, streamable_http_endpoint
from api.question_queue import QuestionQueue
from api.routes import health_router, router
from api.web_routes import add_web_page
from rag import __version__
from rag.cli import is_loopback
from rag.config import Settings
from rag.errors import RagError
from rag.service import RagService

log = logging.getLogger(__name__)


def _announce_ready(service: RagService) -> None:
    """One log line once questions can be answered at full speed (the model loaded and warm)."""
    started = time.monotonic()
    try:
        service.llm.base_url()  # waits for the embedded model, ready only once warm
    except RagError as exc:
        log.error("answers unavailable: %s", exc.message)
        return
    logging.getLogger("uvicorn.error").info(
        "answers ready after %.1f s (%s)", time.monotonic() - started, service.llm.runtime()
    )


def _question_queue(service: RagService) -> QuestionQueue:
    """Turns at the model: as many as the LLM generates at once."""
    settings = service.settings
    return QuestionQueue(service.llm.concurrency, settings.question_queue_depth, settings.question_queue_wait_s)


def server_options(settings: Settings) -> dict:
    """uvicorn's options for `rag serve`: on SIGTERM, requests in progress get shutdown_grace_s."""
    return {"host": settings.host, "port": settings.port, "timeout_graceful_shutdown": settings.shutdown_grace_s}


def create_app(service: RagService | None = None, settings: Settings | None = None) -> FastAPI:
    """An app over ``service``; without one, the app builds its own from ``settings`` (or the
    environment) at startup, seeds an empty store, and closes the service on shutdown.
    ``uvicorn --factory api.app:create_app`` uses that path. The trust boundary (keys, limits,
    CORS) comes from the service's settings."""
    settings = service.settings if service is not None else (settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        owned = service is None
        app.state.service = service or await run_in_threadpool(
            RagService.from_settings, settings
        )
        app.state.question_queue = _question_queue(app.state.service)
        try:
            if owned:
                app.state.service.start_llm()  # loads in the background; /v1/ask waits for it
                threading.Thread(target=_announce_ready, args=(app.state.service,), daemon=True).start()
                await run_in_threadpool(app.state.service.seed_if_empty)
                # The keyword index is loaded (or built) while the service already answers
                # /healthz; a first search waits for it rather than building its own.
                threading.Thread(target=app.state.service.retriever.keyword_index, daemon=True).start()
            async with mcp.session_manager.run():  # the MCP endpoint's sessions live in the app's
                yield
        finally:
            if owned:
                app.state.service.close()

    app = FastAPI(
        title="rag-news",
        version=__version__,
        description="Answers questions about news articles with citations a reader can check.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # /docs is served from local files (api.web_routes)
    )
    if service is not None:
        app.state.service = service  # usable without running the lifespan (tests)
        app.state.question_queue = _question_queue(service)
    app.state.question_quota = QuestionQuota(settings.questions_per_minute)
    mcp = build_mcp_server(lambda: app.state.service, question_counter(app.state.question_quota))
    protected = [Depends(authorize)]  # a no-op without keys
    app.include_router(health_router)
    app.include_router(router, dependencies=protected)
    app.include_router(chat_router, dependencies=protected)
    # The MCP tools over streamable HTTP (api/mcp_server.py), behind the same keys.
    endpoint = streamable_http_endpoint(mcp, loopback=is_loopback(settings.host))
    app.router.routes.append(Route("/mcp", KeyRequired(endpoint), include_in_schema=False))
    add_web_page(app)  # the page asks for the key itself
    app.add_middleware(RequestGuard, settings=settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        if exc.status_code >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc.message)
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.message})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        messages = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"] if p != "body") or "body"
            messages.append(f"{where}: {error['msg']}")
        return JSONResponse(status_code=422, content={"detail": "; ".join(messages)})

    return app
