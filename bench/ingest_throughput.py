"""Ingest throughput end to end (clean, chunk, embed, write to Chroma) against the raw embedding
model alone on the same chunk texts: many articles at once (`rag ingest FOLDER`) and one article
per call (`POST /v1/documents`).

    python bench/ingest_throughput.py [--articles 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from chromadb.api.client import SharedSystemClient

from bench.common import generated_articles, machine
from rag.config import Settings
from rag.service import ArticleInput, RagService


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=200)
    args = parser.parse_args()
    articles = generated_articles(args.articles)
    half = len(articles) // 2
    with tempfile.TemporaryDirectory() as tmp:
        service = RagService.from_settings(Settings(data_dir=Path(tmp)))
        service.embedder.embed(["warm up"])
        started = time.perf_counter()
        bulk_chunks = sum(r.chunk_count for r in service.ingest_many(
            [ArticleInput(text=t, document_id=i) for i, t in articles[:half]]
        ))
        bulk_s = time.perf_counter() - started
        started = time.perf_counter()
        single_chunks = sum(
            service.ingest(ArticleInput(text=t, document_id=i)).chunk_count for i, t in articles[half:]
        )
        single_s = time.perf_counter() - started

        texts = [c.text for doc_id, _ in articles for c in service.get_document(doc_id).chunks]
        batch = service.settings.embed_batch_size
        started = time.perf_counter()
        for at in range(0, len(texts), batch):
            service.embedder.embed(texts[at : at + batch])
        raw_s = time.perf_counter() - started
        service.close()
        SharedSystemClient.clear_system_cache()

    raw_rate = len(texts) / raw_s
    print(f"machine: {machine()}")
    print(f"{args.articles} generated articles, {len(texts)} chunks\n")
    print("| path | chunks/s | seconds | vs raw embedder |\n|---|---|---|---|")
    print(f"| ingest many at once ({half} articles) | {bulk_chunks / bulk_s:.1f} | {bulk_s:.1f} | "
          f"{bulk_chunks / bulk_s / raw_rate:.2f}x |")
    print(f"| ingest one per call ({len(articles) - half} articles) | {single_chunks / single_s:.1f} | "
          f"{single_s:.1f} | {single_chunks / single_s / raw_rate:.2f}x |")
    print(f"| raw embedder, all chunks, batch {batch} | {raw_rate:.1f} | {raw_s:.1f} | 1.00x |")
    print("\ntarget: ingest >= 0.8x the raw embedder")


if __name__ == "__main__":
    main()
