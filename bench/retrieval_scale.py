"""/v1/retrieve latency at 1k, 10k and 100k chunks (a generated news-like corpus with the seed
articles inside it) against a raw chromadb query with the same embedding, and whether the seed
questions still find their sentence in the top 5 at each size.

    python bench/retrieval_scale.py [--sizes 1000 10000 100000] [--queries 200] [--keep DIR]

Embedding 100k chunks takes most of an hour on two cores. With --keep, the store built for each
size is kept in DIR/<size> and reused by later runs, which then only measure.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from chromadb.api.client import SharedSystemClient
from fastapi.testclient import TestClient

from api.app import create_app
from bench.common import SEED_QUESTIONS, generated_articles, machine, p50, percentile, seed_texts
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


def measure(data_dir: Path, queries: int) -> tuple:
    service = open_service(data_dir)
    chunks = service.store.counts()[1]
    questions = [q for q, _ in SEED_QUESTIONS]
    with TestClient(create_app(service)) as client:
        client.post("/v1/retrieve", json={"query": "warm up"})  # the BM25 index is built here
        service_ms, raw_ms = [], []
        collection = service.store.vector_store._collection
        for run in range(queries):
            query = questions[run % len(questions)]
            started = time.perf_counter()
            response = client.post("/v1/retrieve", json={"query": query, "top_k": 5})
            service_ms.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
            started = time.perf_counter()
            vector = service.embedder.embed([query])[0].tolist()
            collection.query(query_embeddings=[vector], n_results=5, include=["documents", "metadatas", "distances"])
            raw_ms.append((time.perf_counter() - started) * 1000)
        found = 0
        for question, sentence in SEED_QUESTIONS:
            passages = client.post("/v1/retrieve", json={"query": question, "top_k": 5}).json()["passages"]
            found += any(sentence in p["text"] for p in passages)
    service.close()
    SharedSystemClient.clear_system_cache()
    return chunks, p50(service_ms), percentile(service_ms, 0.95), p50(raw_ms), percentile(raw_ms, 0.95), found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the store of each size here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        smaller = None
        for size in sorted(args.sizes):
            data_dir = root / str(size)
            build_s = None if data_dir.is_dir() else build_store(data_dir, size, smaller)
            rows.append((*measure(data_dir, args.queries), build_s))
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
