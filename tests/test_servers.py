"""Real servers on loopback: a `chroma run` server as the store, and `rag serve` itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from chromadb.api.client import SharedSystemClient

from rag.config import Settings
from tests.conftest import SEEDS, build_service, free_port


def wait_until_ok(url: str, process: subprocess.Popen, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:
            process.wait(timeout=0.1)  # returns early if the server dies while we wait
        except subprocess.TimeoutExpired:
            pass
    raise AssertionError(f"{url} not ready within {deadline_s}s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


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
