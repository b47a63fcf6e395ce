"""Real servers on loopback: a `chroma run` server as the store, and `rag serve` itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from chromadb.api.client import SharedSystemClient

from rag.config import Settings
from tests.conftest import SEEDS, build_service, free_port, stop, wait_until_ok




@pytest.fixture
def chroma_server(tmp_path: Path):
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if chroma is None:
        pytest.fail("the `chroma` command (installed with chromadb) is missing")
    port = free_port()
    process = subprocess.Popen(
        [chroma, "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_ok(f"http://127.0.0.1:{port}/api/v2/heartbeat", process, 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.mark.chroma_server
def test_ingest_and_retrieve_through_a_chroma_server(chroma_server, tmp_path, embedder):
    settings = Settings(data_dir=tmp_path / "unused", chroma_url=chroma_server)
    service = build_service(settings, embedder)
    try:
        assert [r.status for r in service.ingest_paths([SEEDS]).results] == ["created", "created"]
        passages = service.retrieve("Which town did the Russian Defense Ministry say it retook?")
        assert any("retaking of Sudzha" in p.text for p in passages)
        assert service.health().documents == 2
        assert not (tmp_path / "unused" / "chroma").exists()  # nothing went to the embedded store
    finally:
        service.close()
        SharedSystemClient.clear_system_cache()


def test_rag_serve_seeds_an_empty_store_and_answers_http(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(tmp_path / "data"),
        "RAG_SEED_DIR": str(SEEDS),
        "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1",  # not needed for retrieval; never started
    }
    process = subprocess.Popen(
        [sys.executable, "-c", "from rag.cli import main; main()", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ok(f"{base}/healthz", process, 120)
        assert httpx.get(f"{base}/healthz").json()["documents"] == 2
        body = httpx.post(f"{base}/v1/retrieve", json={"query": "North Korean troops"}).json()
        assert "North Korean troops" in body["passages"][0]["text"]
    finally:
        stop(process)
