"""Shared fixtures: real Chroma in a temp dir, the real embedding model, the real app."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from chromadb.api.client import SharedSystemClient
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.embedding import MiniLMEmbedding
from rag.service import RagService
from rag.store import ChromaStore, connect

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
DOC_A = "000_c4a23f2ead4fdd84"  # the first seed article
DOC_B = "003_3250ed81d373d9f0"  # the second


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedding:
    # Loaded once: it is the real model, read-only, and costs seconds to load.
    return MiniLMEmbedding()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", seed_dir=SEEDS)


def build_service(settings: Settings, embedder: MiniLMEmbedding) -> RagService:
    return RagService(settings, ChromaStore(connect(settings), settings.collection), embedder)


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
