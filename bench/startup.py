"""Cold start of `rag serve` over a big store: seconds from launching the process to the first
200 from /healthz, and to the answer of its first /v1/retrieve (which builds the keyword index
from every chunk). Three launches each; the LLM is pointed at a closed port, since the embedded
model loads in the background and neither endpoint waits for it.

    python -m bench.startup --store DIR                      # a data dir, e.g. from ingest_throughput.py --keep
    python -m bench.startup --store DIR --grow-to 100000     # first copy its chunks up to that many

--grow-to copies the store's articles under new ids, with their stored vectors jittered, until it
holds that many chunks: start-up reads every chunk and loads the vector index, whose cost depends
on the count and size of chunks, not on what the vectors mean, so this stands in for a 100k-chunk
archive without an hour of embedding.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from chromadb.api.client import SharedSystemClient

from bench.common import free_port, machine
from rag.config import Settings
from rag.service import RagService
from rag.store import DocumentWrite

LAUNCHES = 3
QUERY = "What did the chancellor say about the budget?"


def grow(data_dir: Path, target: int) -> None:
    service = RagService.from_settings(Settings(data_dir=data_dir, seed_on_empty=False))
    store = service.store
    originals = [info for info in store.list_documents() if not info.alias_of]
    collection = store.vector_store._collection
    rng = np.random.default_rng(7)
    copy = 0
    while store.counts()[1] < target:
        copy += 1
        for at in range(0, len(originals), 100):
            writes = []
            for info in originals[at : at + 100]:
                found = collection.get(where={"document_id": info.id}, include=["embeddings"])
                vectors = {i: v for i, v in zip(found["ids"], found["embeddings"])}
                chunks = store.chunks_of(info.id)
                new_id = f"copy{copy}/{info.id}"
                moved = [c.model_copy(update={"document_id": new_id, "chunk_id": f"{new_id}#{c.index:04d}"}) for c in chunks]
                jittered = []
                for chunk in chunks:
                    vector = np.asarray(vectors[chunk.chunk_id]) + rng.normal(0, 0.02, 384)
                    jittered.append((vector / np.linalg.norm(vector)).tolist())
                writes.append(DocumentWrite(info.model_copy(update={"id": new_id}), store.document_text(info.id),
                                            moved, jittered))
            store.write_documents(writes)
            if store.counts()[1] >= target:
                break
        print(f"  {store.counts()[1]:,} chunks", flush=True)
    service.close()
    SharedSystemClient.clear_system_cache()


def launch(data_dir: Path) -> tuple[float, float]:
    port = free_port()
    env = {**os.environ, "RAG_DATA_DIR": str(data_dir), "RAG_PORT": str(port), "RAG_SEED_ON_EMPTY": "false",
           "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-c", "from rag.cli import main; main()", "serve"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("the server did not start")
            time.sleep(0.05)
        healthz_s = time.perf_counter() - started
        response = httpx.post(f"{base}/v1/retrieve", json={"query": QUERY, "top_k": 5}, timeout=300)
        assert response.status_code == 200, response.text
        return healthz_s, time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", type=Path, required=True, help="a data dir holding a store")
    parser.add_argument("--grow-to", type=int, help="copy chunks until the store holds this many")
    args = parser.parse_args()
    if args.grow_to:
        grow(args.store, args.grow_to)
    service = RagService.from_settings(Settings(data_dir=args.store, seed_on_empty=False))
    documents, chunks = service.store.counts()
    service.close()
    SharedSystemClient.clear_system_cache()
    runs = [launch(args.store) for _ in range(LAUNCHES)]
    print(f"machine: {machine()}")
    print(f"store: {documents:,} documents, {chunks:,} chunks\n")
    print("| launch | /healthz 200 (s) | first /v1/retrieve answered (s) |\n|---|---|---|")
    for number, (healthz_s, retrieve_s) in enumerate(runs, 1):
        print(f"| {number} | {healthz_s:.1f} | {retrieve_s:.1f} |")
    print("\ntargets: /healthz <= 5 s, first /v1/retrieve <= 10 s")


if __name__ == "__main__":
    main()
