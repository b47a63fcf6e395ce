"""Ingest throughput end to end (clean, chunk, embed, write to Chroma) against the raw embedding
model alone on the same chunk texts.

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
    with tempfile.TemporaryDirectory() as tmp:
        service = RagService.from_settings(Settings(data_dir=Path(tmp)))
        service.embedder.embed(["warm up"])
        started = time.perf_counter()
        chunks = sum(service.ingest(ArticleInput(text=t, document_id=i)).chunk_count for i, t in articles)
        end_to_end_s = time.perf_counter() - started

        texts = [c.text for doc_id, _ in articles for c in service.get_document(doc_id).chunks]
        batch = service.settings.embed_batch_size
        started = time.perf_counter()
        for at in range(0, len(texts), batch):
            service.embedder.embed(texts[at : at + batch])
        raw_s = time.perf_counter() - started
        service.close()
        SharedSystemClient.clear_system_cache()

    print(f"machine: {machine()}")
    print(f"{args.articles} generated articles, {chunks} chunks\n")
    print("| path | chunks/s | seconds |\n|---|---|---|")
    print(f"| ingest end to end | {chunks / end_to_end_s:.0f} | {end_to_end_s:.1f} |")
    print(f"| raw embedder, same chunks, batch {batch} | {len(texts) / raw_s:.0f} | {raw_s:.1f} |")
    print(f"\ningest / raw embedder = {(chunks / end_to_end_s) / (len(texts) / raw_s):.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
