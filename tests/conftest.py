"""Shared fixtures: real Chroma in a temp dir, the real embedding model, the real app."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from chromadb.api.client import SharedSystemClient
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.embedding import MiniLMEmbedding
from rag.llm import LLM
from rag.service import RagService
from rag.store import open_store

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
DOC_A = "000_c4a23f2ead4fdd84"  # the first seed article
DOC_B = "003_3250ed81d373d9f0"  # the second

# TestClient sends `Host: testserver`: the suite's apps answer to that name as to their own (a
# test of the Host check passes allowed_hosts itself, which wins over the environment).
os.environ.setdefault("RAG_ALLOWED_HOSTS", "testserver")


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedding:
    # Loaded once: it is the real model, read-only, and costs seconds to load.
    return MiniLMEmbedding()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", seed_dir=SEEDS)


def build_service(settings: Settings, embedder: MiniLMEmbedding) -> RagService:
    return RagService(settings, open_store(settings), embedder, LLM(settings))


@pytest.fixture
def service(settings: Settings, embedder: MiniLMEmbedding):
    svc = build_service(settings, embedder)
    yield svc
    svc.close()
    SharedSystemClient.clear_system_cache()


@pytest.fixture
def seeded(service: RagService) -> RagService:
    service.ingest_paths([SEEDS])
    return service


@pytest.fixture
def client(seeded: RagService) -> TestClient:
    with TestClient(create_app(seeded)) as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], deadline_s: float, what: str, every_s: float = 0.1):
    """Poll ``condition`` until it returns something truthy (returned), or fail naming ``what``."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(every_s)
    raise AssertionError(f"{what}: not within {deadline_s:.0f}s")


def wait_until_ok(url: str, process: subprocess.Popen, deadline_s: float) -> None:
    """Poll ``url`` until it answers 200; fail at once if the server process exits."""

    def answers_ok() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answers_ok, deadline_s, f"{url} ready")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def fake_llm():
    from tests.fake_llm import FakeChatServer

    return FakeChatServer()


def build_answering(data_dir: Path, embedder: MiniLMEmbedding, fake_llm, **overrides) -> RagService:
    """A seeded service whose LLM is the fake at the HTTP boundary."""
    from tests.fake_llm import BASE_URL

    settings = Settings(
        data_dir=data_dir, seed_dir=SEEDS, llm_base_url=BASE_URL, llm_model="fake-model",
        llm_max_retries=0, **overrides,
    )
    svc = RagService(
        settings, open_store(settings), embedder,
        LLM(settings, http_client=fake_llm.client()),
    )
    svc.ingest_paths([SEEDS])
    return svc


@pytest.fixture
def answering(tmp_path: Path, embedder: MiniLMEmbedding, fake_llm):
    svc = build_answering(tmp_path / "data", embedder, fake_llm)
    yield svc
    svc.close()
    SharedSystemClient.clear_system_cache()


@contextmanager
def serving(app):
    """``app`` served by a real uvicorn on loopback, for as long as the block runs: its URL."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        thread.join(timeout=0.05)  # returns at once if uvicorn gave up
        assert thread.is_alive(), "uvicorn exited before it started"
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(answering):
    """The app over the fake-LLM service, served by a real uvicorn on loopback."""
    with serving(create_app(answering)) as url:
        yield url
