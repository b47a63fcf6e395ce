"""/v1/retrieve latency at 1k, 10k and 100k chunks (a generated news-like corpus with the seed
articles inside it), from a keep-alive client of the real server (`rag serve`, one request at a
time), against a raw chromadb query with the same embedding in the client's process (blocks of
each in turn, the server idle during the raw ones), and whether
the seed questions still find their sentence in the top 5 at each size.

    python -m bench.retrieval_scale [--sizes 1000 10000 100000] [--queries 100] [--rounds 5] [--keep DIR]

Embedding 100k chunks takes most of an hour on two cores. With --keep, the store built for each
size is kept in DIR/<size> and reused by later runs, which then only measure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
from chromadb.api.client import SharedSystemClient

from bench.common import SEED_QUESTIONS, free_port, generated_articles, machine, p50, percentile, seed_texts
from rag.config import Settings
from rag.service import ArticleInput, RagService

GROW_BATCH = 200  # articles per ingest call while growing the corpus


def open_service(data_dir: Path) -> RagService:
    return RagService.from_settings(Settings(data_dir=data_dir, store_recheck_s=3600))


def build_store(data_dir: Path, size: int, smaller: Path | None) -> float:
    """Grow a store to ``size`` chunks (from a copy of the next smaller one); seconds spent."""
    started = time.perf_counter()
    if smaller is not None:
        shutil.copytree(smaller, data_dir)
    service = open_service(data_dir)
    if smaller is None:
        service.ingest_many([ArticleInput(text=text, document_id=doc) for doc, text in seed_texts()])
    articles = generated_articles(size // 4 + 100)
    position = service.store.counts()[0] - len(seed_texts())
    while (missing := size - service.store.counts()[1]) > 0 and position < len(articles):
        batch = articles[position : position + min(GROW_BATCH, missing // 7 + 1)]  # ~7 chunks each
        service.ingest_many([ArticleInput(text=text, document_id=doc) for doc, text in batch])
        position += len(batch)
        print(f"  {service.store.counts()[1]:,} chunks", flush=True)
    service.close()
    SharedSystemClient.clear_system_cache()
    return time.perf_counter() - started


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    """`rag serve` over the store, no LLM (retrieval needs none): the real HTTP path a client sees."""
    port = free_port()
    env = {**os.environ, "RAG_DATA_DIR": str(data_dir), "RAG_PORT": str(port), "RAG_SEED_ON_EMPTY": "false",
           "RAG_STORE_RECHECK_S": "3600", "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    server = subprocess.Popen([sys.executable, "-c", "from rag.cli import main; main()", "serve"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            return server, base
        except httpx.HTTPError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                sys.exit("the server did not start")
            time.sleep(0.5)


def measure(data_dir: Path, queries: int, rounds: int) -> tuple:
    service = open_service(data_dir)  # in this process: the raw parts and the chunk count
    chunks = service.store.counts()[1]
    collection = service.store.vector_store._collection
    questions = [q for q, _ in SEED_QUESTIONS]

    def raw_query(query: str) -> None:
        vector = service.embedder.embed([query])[0].tolist()
        collection.query(query_embeddings=[vector], n_results=5, include=["documents", "metadatas", "distances"])

    def timed(call, query: str) -> float:
        started = time.perf_counter()
        call(query)
        return (time.perf_counter() - started) * 1000

    server, base = start_server(data_dir)
    # http.client rather than httpx: httpx's own work per request (~0.5 ms here) is the client's
    # cost, not the service's.
    connection = http.client.HTTPConnection(urlparse(base).hostname, urlparse(base).port, timeout=600)

    def post_retrieve(query: str) -> dict:
        connection.request("POST", "/v1/retrieve", json.dumps({"query": query, "top_k": 5}),
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, body
        return json.loads(body)

    try:
        post_retrieve("warm up")  # the BM25 index is built here
        raw_query("warm up")  # loads the vector index into this process
        # Blocks of each in turn, so both sample the same stretch of time. Request by request, side
        # by side, the two processes' ONNX thread pools slowed each other (20.7 / 14.0 ms instead of
        # 12 / 9 at 100k chunks).
        service_ms, raw_ms = [], []
        for _ in range(rounds):
            service_ms += [timed(post_retrieve, questions[run % len(questions)]) for run in range(queries)]
            raw_ms += [timed(raw_query, questions[run % len(questions)]) for run in range(queries)]
        found = sum(
            any(sentence in p["text"] for p in post_retrieve(question)["passages"])
            for question, sentence in SEED_QUESTIONS
        )
    finally:
        connection.close()
        server.terminate()
        server.wait(timeout=60)
    service.close()
    SharedSystemClient.clear_system_cache()
    return chunks, p50(service_ms), percentile(service_ms, 0.95), p50(raw_ms), percentile(raw_ms, 0.95), found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100, help="queries per block")
    parser.add_argument("--rounds", type=int, default=5, help="blocks of each kind, taken in turn")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the store of each size here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        smaller = None
        for size in sorted(args.sizes):
            data_dir = root / str(size)
            build_s = None if data_dir.is_dir() else build_store(data_dir, size, smaller)
            rows.append((*measure(data_dir, args.queries, args.rounds), build_s))
            print(f"{rows[-1][0]:,} chunks measured", flush=True)
            smaller = data_dir

    print(f"\nmachine: {machine()}\n")
    print("| chunks | /v1/retrieve p50 / p95 (ms) | raw chroma + embed p50 / p95 (ms) | ratio (p50) | seed questions in top 5 | build time (s) |")
    print("|---|---|---|---|---|---|")
    for chunks, sp50, sp95, rp50, rp95, found, build_s in rows:
        built = "reused" if build_s is None else f"{build_s:.0f}"
        print(f"| {chunks:,} | {sp50:.1f} / {sp95:.1f} | {rp50:.1f} / {rp95:.1f} | {sp50 / rp50:.2f}x | "
              f"{found}/{len(SEED_QUESTIONS)} | {built} |")


if __name__ == "__main__":
    main()
