"""Ingest throughput over an archive as users keep it (default: the BBC folder beside the repo,
nested, with a Latin-1 file and duplicates): the first run end to end (read, decode, clean,
chunk, embed, write to Chroma) against the raw embedding model alone on the same chunk texts in
the same process, the second run over the unchanged folder, and peak memory.

    python -m bench.ingest_throughput [--folder ../shared/corpora/bbc] [--keep DIR]

With --keep the store is left in DIR (for bench/startup.py); DIR must not hold a store yet.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from chromadb.api.client import SharedSystemClient

from bench.common import machine
from rag.config import Settings
from rag.service import RagService

REPO = Path(__file__).resolve().parent.parent


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run(folder: Path, data_dir: Path) -> None:
    service = RagService.from_settings(Settings(data_dir=data_dir, seed_on_empty=False))
    service.embedder.embed(["warm up"])
    started = time.perf_counter()
    first = service.ingest_paths([folder])
    first_s = time.perf_counter() - started
    first_rss = peak_rss_mib()
    documents, chunks = service.store.counts()

    started = time.perf_counter()
    second = service.ingest_paths([folder])
    second_s = time.perf_counter() - started

    texts = [stored.chunk.text for stored in service.store.all_chunks()]
    batch = service.settings.embed_batch_size
    started = time.perf_counter()
    for at in range(0, len(texts), batch):
        service.embedder.embed(texts[at : at + batch])
    raw_s = time.perf_counter() - started
    service.close()
    SharedSystemClient.clear_system_cache()

    files = len(first.results) + len(first.failures)
    ingest_rate, raw_rate = chunks / first_s, len(texts) / raw_s
    print(f"machine: {machine()}")
    print(f"folder: {folder} ({files} files)\n")
    print(f"first run: {first.count('created')} created, {first.count('duplicate')} duplicates (kept as "
          f"aliases), {len(first.failures)} failed; {documents} documents, {chunks} chunks")
    for failure in first.failures:
        print(f"  failed {failure.file}: {failure.reason}")
    print(f"second run: {second.count('unchanged')} unchanged of {len(second.results)}\n")
    print("| measure | figure | target |\n|---|---|---|")
    print(f"| first run | {first_s:.1f} s, {ingest_rate:.1f} chunks/s | |")
    print(f"| raw embedder, same {len(texts)} chunks, batch {batch} | {raw_s:.1f} s, {raw_rate:.1f} chunks/s | |")
    print(f"| ingest vs raw embedder | {ingest_rate / raw_rate:.2f}x | >= 0.8x |")
    print(f"| second run (unchanged) | {second_s:.1f} s = {second_s / first_s:.1%} of the first | <= 10% |")
    print(f"| peak RSS | {first_rss:.0f} MiB after the first run, {peak_rss_mib():.0f} MiB at the end | |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, default=REPO.parent / "shared" / "corpora" / "bbc")
    parser.add_argument("--keep", type=Path, help="leave the store in this data dir")
    args = parser.parse_args()
    if args.keep:
        run(args.folder, args.keep)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(args.folder, Path(tmp))


if __name__ == "__main__":
    main()
