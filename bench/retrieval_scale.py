"""/v1/retrieve latency at 1k, 10k and 100k chunks (a generated news-like corpus with the seed
articles inside it) against a raw chromadb query with the same embedding, and whether the seed
questions still find their sentence in the top 5 at each size.

    python bench/retrieval_scale.py [--sizes 1000 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from chromadb.api.client import SharedSystemClient
from fastapi.testclient import TestClient

from api.app import create_app
from bench.common import SEED_QUESTIONS, generated_articles, machine, p50, percentile, seed_texts
from rag.config import Settings
from rag.service import ArticleInput, RagService


def grow(service: RagService, articles, target_chunks: int, position: int) -> int:
    while service.store.counts()[1] < target_chunks and position < len(articles):
        batch = articles[position : position + 50]
        for document_id, text in batch:
            service.ingest(ArticleInput(text=text, document_id=document_id))
        position += len(batch)
    return position


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        service = RagService.from_settings(Settings(data_dir=Path(tmp)))
        for document_id, text in seed_texts():
            service.ingest(ArticleInput(text=text, document_id=document_id))
        articles = generated_articles(max(args.sizes) // 4 + 100)
        position = 0
        client = TestClient(create_app(service))
        for size in args.sizes:
            started = time.perf_counter()
            position = grow(service, articles, size, position)
            build_s = time.perf_counter() - started
            chunks = service.store.counts()[1]
            questions = [q for q, _ in SEED_QUESTIONS]
            client.post("/v1/retrieve", json={"query": "warm up"})  # BM25 rebuild happens here
            service_ms, raw_ms = [], []
            collection = service.store.vector_store._collection
            for run in range(args.queries):
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
            rows.append((chunks, build_s, p50(service_ms), percentile(service_ms, 0.95),
                         p50(raw_ms), percentile(raw_ms, 0.95), found))
            print(f"{chunks} chunks done", flush=True)
        client.close()
        service.close()
        SharedSystemClient.clear_system_cache()

    print(f"\nmachine: {machine()}\n")
    print("| chunks | /v1/retrieve p50 / p95 (ms) | raw chroma + embed p50 / p95 (ms) | ratio (p50) | seed questions in top 5 | growth time (s) |")
    print("|---|---|---|---|---|---|")
    for chunks, build_s, sp50, sp95, rp50, rp95, found in rows:
        print(f"| {chunks:,} | {sp50:.1f} / {sp95:.1f} | {rp50:.1f} / {rp95:.1f} | {sp50 / rp50:.2f}x | "
              f"{found}/{len(SEED_QUESTIONS)} | {build_s:.0f} |")


if __name__ == "__main__":
    main()
