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


def _rag_serve(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "from rag.cli import main; main()", "serve", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}"


@pytest.mark.chroma_server
def test_two_replicas_on_one_chroma_server_and_one_keyword_index_see_each_others_writes(chroma_server, tmp_path):
    """Two `rag serve` processes share a `chroma run` server and one keyword index folder: an
    article ingested or deleted through one is found (or gone) through the other within seconds,
    and a write waits, saying so in the log, while another process holds the index's writer lock."""
    import threading

    from rag.keywords import KeywordIndex
    from tests.conftest import wait_for

    keyword_dir = tmp_path / "shared-keywords"
    base_env = {
        **os.environ, "RAG_CHROMA_URL": chroma_server, "RAG_KEYWORD_DIR": str(keyword_dir),
        "RAG_SEED_ON_EMPTY": "false", "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1",
    }
    one, one_url = _rag_serve({**base_env, "RAG_DATA_DIR": str(tmp_path / "one")}, tmp_path / "one.log")
    two, two_url = _rag_serve({**base_env, "RAG_DATA_DIR": str(tmp_path / "two")}, tmp_path / "two.log")

    def finds(url: str, query: str, document_id: str) -> bool:
        passages = httpx.post(f"{url}/v1/retrieve", json={"query": query, "top_k": 5}, timeout=30).json()["passages"]
        return any(p["document_id"] == document_id for p in passages)

    try:
        wait_until_ok(f"{one_url}/healthz", one, 120)
        wait_until_ok(f"{two_url}/healthz", two, 120)
        article = {"id": "pilots", "title": "Pilots", "text": "Harbour pilots in Gdansk voted to strike over rosters on Monday."}
        assert httpx.post(f"{one_url}/v1/documents", json=article, timeout=60).status_code == 201
        wait_for(lambda: finds(two_url, "Gdansk harbour pilots strike", "pilots"), 5, "the other replica finds the article")
        # The keyword side alone finds it through the other replica too (a filter dense search cannot pass).
        keyword_only = KeywordIndex(keyword_dir / Settings().collection)
        assert [i for i, _ in keyword_only.search("Gdansk pilots", 5)]

        # A writer lock held elsewhere: the replica's write waits for it and says so.
        with keyword_only.writing():
            done: list[int] = []
            other = {"id": "grain", "title": "Grain", "text": "Wheat exports from Odesa rose in March, traders said."}
            writer = threading.Thread(
                target=lambda: done.append(httpx.post(f"{two_url}/v1/documents", json=other, timeout=60).status_code))
            writer.start()
            wait_for(lambda: b"waiting for its lock" in (tmp_path / "two.log").read_bytes(), 10, "the wait is logged")
            assert not done
        writer.join(timeout=30)
        assert done == [201]
        wait_for(lambda: finds(one_url, "Odesa wheat exports", "grain"), 5, "the first replica finds the second's article")

        assert httpx.delete(f"{two_url}/v1/documents/pilots", timeout=60).status_code in (200, 204)
        wait_for(lambda: not finds(one_url, "Gdansk harbour pilots strike", "pilots"), 5, "the deleted article gone")
    finally:
        stop(one)
        stop(two)
