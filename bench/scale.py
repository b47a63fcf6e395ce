"""The store at scale: a synthetic archive of N chunks on a `chroma run` server and the keyword
index beside it, then what a replica costs over it.

Articles are made of real sentences (the BBC archive and the seed articles, split into sentences
and recombined at random: unique ids, 3 to 12 chunks of about 350 to 600 characters each, as the
chunker cuts real ones), with a section and a date. Their vectors are random unit vectors of the
embedder's dimension (384), not embeddings: dense search costs the same over any vectors of that
size, and embedding a million chunks would take days on two cores. Queries are the eval sets'
questions, embedded by the real model.

    python -m bench.scale build --chunks 100000 --dir /tmp/scale   # grow the store to N chunks
    python -m bench.scale keywords --chunks 1000000 [--keep DIR]    # keyword index alone: build rate, size, reader
    python -m bench.scale measure --dir /tmp/scale                  # latency, replica RSS, start-up
    python -m bench.scale bm25s --dir /tmp/scale                    # today's in-memory bm25s side, for comparison

``build`` grows an existing store (ids continue), so 100k can be measured, then grown to 1M.
Each command starts its own `chroma run` over DIR/chroma and stops it. Results are printed as
JSON lines and appended to DIR/results.jsonl.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from bench.common import free_port, machine, p50, percentile

REPO = Path(__file__).resolve().parent.parent
BBC = Path("/work/shared/corpora/bbc")
SECTIONS = ["business", "entertainment", "politics", "sport", "tech"]
DIMENSION = 384
WRITE_ARTICLES = 300  # articles per store write (~2,200 chunks)


# --- the synthetic archive ---------------------------------------------------------------
def real_sentences() -> list[str]:
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(BBC.rglob("*.txt")) if p.name != "README.TXT"]
    texts += [p.read_text(encoding="utf-8") for p in sorted((REPO / "seeds").glob("*.txt"))]
    found: list[str] = []
    for text in texts:
        for paragraph in text.split("\n"):
            found += [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", paragraph) if len(s.strip()) > 20]
    return found


def articles(start: int, count: int, sentences: list[str]):
    """Articles number start .. start+count-1: (id, title, metadata, text, [(start, end, text)]),
    the same for a number whatever run makes it."""
    for number in range(start, start + count):
        rng = random.Random(number)
        doc = f"syn-{number:08d}"
        chunks, text, position = [], "", rng.randrange(len(sentences))
        for _ in range(rng.randint(3, 12)):
            piece, limit = "", rng.randint(350, 600)
            while len(piece) < limit:
                piece = (piece + " " + sentences[position % len(sentences)]).strip()
                position += 1 if rng.random() < 0.8 else rng.randrange(len(sentences))
            begin = len(text) + (1 if text else 0)
            text = (text + " " + piece) if text else piece
            chunks.append((begin, begin + len(piece), piece))
        title = " ".join(sentences[rng.randrange(len(sentences))].split()[:8])
        day = datetime(2003, 1, 1).toordinal() + rng.randrange(4 * 365)
        metadata = {"section": rng.choice(SECTIONS), "date": datetime.fromordinal(day).date().isoformat()}
        yield doc, title, metadata, text, chunks


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, DIMENSION), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def document_writes(batch, rng: np.random.Generator):
    from rag.models import Chunk, DocumentInfo
    from rag.store import DocumentWrite

    writes = []
    for doc, title, metadata, text, pieces in batch:
        chunks = [
            Chunk(chunk_id=f"{doc}#{i:04d}-{hashlib.sha256(piece.encode()).hexdigest()[:8]}", document_id=doc,
                  index=i, start=begin, end=end, text=piece)
            for i, (begin, end, piece) in enumerate(pieces)
        ]
        info = DocumentInfo(id=doc, title=title, chunk_count=len(chunks), sha256=hashlib.sha256(text.encode()).hexdigest(),
                            ingested_at=datetime.now(UTC), metadata=metadata)
        writes.append(DocumentWrite(info=info, text=text, chunks=chunks, embeddings=unit_vectors(rng, len(chunks)).tolist()))
    return writes


# --- processes ---------------------------------------------------------------------------
@contextmanager
def chroma_server(directory: Path):
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
    port = free_port()
    log = open(directory / "chroma.log", "ab")
    process = subprocess.Popen([chroma, "run", "--path", str(directory / "chroma"), "--host", "127.0.0.1", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            sys.exit("chroma run did not start")
        time.sleep(0.5)
    try:
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


def settings_for(directory: Path, url: str, **overrides):
    from rag.config import Settings

    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    models = REPO / "data" / "models"
    if not (data / "models").exists() and models.exists():
        (data / "models").symlink_to(models.resolve())
    return Settings(data_dir=data, chroma_url=url, keyword_dir=directory / "keywords", seed_on_empty=False,
                    llm_base_url="http://127.0.0.1:9/v1", **overrides)


def memory(pid: int) -> dict[str, float]:
    """MiB: resident set, and its anonymous (heap) and file-backed (mapped index files) parts."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def folder_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def record(directory: Path | None, result: dict) -> None:
    result = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), **result}
    line = json.dumps(result)
    print(line, flush=True)
    if directory is not None:
        with open(directory / "results.jsonl", "a") as out:
            out.write(line + "\n")


def questions() -> list[str]:
    found = []
    for name in ("questions.jsonl", "bbc_dev.jsonl", "bbc_dev2.jsonl", "bbc_test.jsonl"):
        found += [json.loads(line)["question"] for line in (REPO / "eval" / name).read_text().splitlines() if line.strip()]
    return found


def summary(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(p50(times) * 1000, 2), "p95_ms": round(percentile(times, 0.95) * 1000, 2)}


# --- commands ----------------------------------------------------------------------------
def build(args) -> None:
    from chromadb.api.client import SharedSystemClient

    from rag.store import open_store

    args.dir.mkdir(parents=True, exist_ok=True)
    sentences = real_sentences()
    with chroma_server(args.dir) as (url, _):
        store = open_store(settings_for(args.dir, url))
        documents, chunks = store.counts()
        number, started, written = documents, time.perf_counter(), 0
        rng = np.random.default_rng(documents)
        while chunks < args.chunks:
            batch = list(articles(number, WRITE_ARTICLES, sentences))
            store.write_documents(document_writes(batch, rng))
            number += len(batch)
            added = sum(len(a[4]) for a in batch)
            chunks, written = chunks + added, written + added
            if number // WRITE_ARTICLES % 20 == 0:
                rate = written / (time.perf_counter() - started)
                print(f"  {chunks:,} chunks, {rate:,.0f} chunks/s", flush=True)
        elapsed = time.perf_counter() - started
        documents, chunks = store.counts()
        SharedSystemClient.clear_system_cache()
    record(args.dir, {"command": "build", "chunks": chunks, "documents": documents, "written": written,
                      "seconds": round(elapsed, 1), "chunks_per_s": round(written / elapsed, 1) if elapsed else None,
                      "keyword_index_mib": round(folder_mib(args.dir / "keywords"), 1),
                      "chroma_mib": round(folder_mib(args.dir / "chroma"), 1)})


def keywords_only(args) -> None:
    """The keyword index alone, from the same articles (no Chroma): its build rate and size on
    disk, then a fresh process opening it, its query latency and its memory."""
    from rag.keywords import KeywordIndex
    from rag.store import StoredChunk

    sentences = real_sentences()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="scale-keywords-"))
    folder.mkdir(parents=True, exist_ok=True)
    index = KeywordIndex(folder)
    number, chunks, started, writing = 0, len(index), time.perf_counter(), 0.0
    while chunks < args.chunks:
        batch = list(articles(number, WRITE_ARTICLES * 10, sentences))
        entries = [StoredChunk(chunk, w.info.title, w.info.metadata)
                   for w in document_writes(batch, np.random.default_rng(0)) for chunk in w.chunks]
        t = time.perf_counter()
        with index.writing() as changes:
            changes.add(entries)
        writing += time.perf_counter() - t
        number, chunks = number + len(batch), chunks + len(entries)
        print(f"  {chunks:,} chunks, {chunks / writing:,.0f} chunks/s indexing", flush=True)
    elapsed = time.perf_counter() - started
    del index
    gc.collect()
    probe = subprocess.run([sys.executable, "-m", "bench.scale", "keyword-reader", "--index", str(folder)],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    record(None, {"command": "keywords", "chunks": chunks, "seconds": round(elapsed, 1),
                  "indexing_chunks_per_s": round(chunks / writing) if writing else None,
                  "index_mib": round(folder_mib(folder), 1), "reader": json.loads(probe.stdout.strip().splitlines()[-1])})
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)


def keyword_reader(args) -> None:
    """A fresh process opening the index: time to open, query latency (the eval questions, with
    and without a section filter), resident memory."""
    from rag.keywords import KeywordIndex
    from rag.models import SearchFilter

    asked = questions()
    before = memory(os.getpid())
    t = time.perf_counter(); index = KeywordIndex(args.index); count = len(index); opened = time.perf_counter() - t
    plain, filtered, fetch = [], [], []
    sport = SearchFilter(where={"section": "sport"})
    for _ in range(args.rounds):
        for q in asked:
            t = time.perf_counter(); found = index.search(q, 40); plain.append(time.perf_counter() - t)
            t = time.perf_counter(); index.search(q, 40, sport); filtered.append(time.perf_counter() - t)
            t = time.perf_counter(); index.get_many(i for i, _ in found[:5]); fetch.append(time.perf_counter() - t)
    print(json.dumps({"chunks": count, "open_s": round(opened, 3), "search_top40": summary(plain),
                      "search_top40_section_filter": summary(filtered), "read_5_texts": summary(fetch),
                      "rss_before_open_mib": before, "rss_after_mib": memory(os.getpid())}))


def measure(args) -> None:
    from chromadb.api.client import SharedSystemClient

    from rag.embedding import MiniLMEmbedding
    from rag.retrieval import HybridRetriever
    from rag.store import open_store

    asked = questions()
    with chroma_server(args.dir) as (url, chroma_pid):
        settings = settings_for(args.dir, url)
        embedder = MiniLMEmbedding()
        started = time.perf_counter()
        store = open_store(settings)
        opened = time.perf_counter() - started
        retriever = HybridRetriever(store, embedder, settings.candidate_k, settings.store_recheck_s)
        chunks = store.chunk_count()
        embeddings = {q: embedder.embed([q])[0].tolist() for q in asked}
        for q in asked[:10]:  # warm
            retriever.retrieve(q, 5)
        dense, keyword, fused, embed = [], [], [], []
        for _ in range(args.rounds):
            for q in asked:
                t = time.perf_counter(); embedder.embed([q]); embed.append(time.perf_counter() - t)
                t = time.perf_counter(); store.nearest_chunks(embeddings[q], settings.candidate_k); dense.append(time.perf_counter() - t)
                t = time.perf_counter(); store.keywords.search(q, settings.candidate_k); keyword.append(time.perf_counter() - t)
                t = time.perf_counter(); retriever.retrieve(q, 5); fused.append(time.perf_counter() - t)
        in_process = {"store_open_s": round(opened, 2), "embed": summary(embed), "dense_http": summary(dense),
                      "keyword": summary(keyword), "fused_with_embedding": summary(fused), "queries": len(fused)}
        SharedSystemClient.clear_system_cache()
        del store, retriever
        gc.collect()

        # A replica: `rag serve` over the server and the index, no LLM.
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO), "RAG_DATA_DIR": str(settings.data_dir), "RAG_CHROMA_URL": url,
               "RAG_KEYWORD_DIR": str(settings.keyword_dir), "RAG_SEED_ON_EMPTY": "false",
               "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1", "RAG_PORT": str(port)}
        base = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-c", "from rag.cli import main; main()", "serve"], env=env,
                                  stdout=open(args.dir / "serve.log", "ab"), stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.perf_counter() - t0 > 600:
                    sys.exit("rag serve did not start")
                time.sleep(0.05)
            healthy = time.perf_counter() - t0
            with httpx.Client(base_url=base, timeout=60) as client:
                client.post("/v1/retrieve", json={"query": asked[0], "top_k": 5}).raise_for_status()
                first = time.perf_counter() - t0
                over_http = []
                for q in asked:
                    t = time.perf_counter()
                    client.post("/v1/retrieve", json={"query": q, "top_k": 5}).raise_for_status()
                    over_http.append(time.perf_counter() - t)
            replica = {"ready_healthz_s": round(healthy, 2), "first_retrieve_s": round(first, 2),
                       "retrieve_over_http": summary(over_http), "rss_mib": memory(server.pid)}
        finally:
            server.terminate()
            server.wait(timeout=30)
        chroma_memory = memory(chroma_pid)
    record(args.dir, {"command": "measure", "chunks": chunks, "in_process": in_process, "replica": replica,
                      "chroma_server_rss_mib": chroma_memory,
                      "keyword_index_mib": round(folder_mib(args.dir / "keywords"), 1),
                      "chroma_mib": round(folder_mib(args.dir / "chroma"), 1)})


def bm25s_side(args) -> None:
    """Today's keyword side (bm25s in memory, rebuilt from the store at start), over the same
    store: the start-up read and build, its memory, its query latency."""
    from chromadb.api.client import SharedSystemClient

    from bench.bm25s_side import BM25sIndex
    from rag.store import open_store

    asked = questions()
    with chroma_server(args.dir) as (url, _):
        store = open_store(settings_for(args.dir, url))
        before = memory(os.getpid())["VmRSS"]
        t = time.perf_counter(); stored = store.all_chunks(); read = time.perf_counter() - t
        t = time.perf_counter(); index = BM25sIndex(stored); built = time.perf_counter() - t
        del stored
        gc.collect()
        after = memory(os.getpid())
        times = []
        for _ in range(args.rounds):
            for q in asked:
                t0 = time.perf_counter(); index.search(q, 40); times.append(time.perf_counter() - t0)
        chunks = len(index)
        SharedSystemClient.clear_system_cache()
    record(args.dir, {"command": "bm25s", "chunks": chunks, "read_from_chroma_s": round(read, 1), "build_s": round(built, 1),
                      "rss_added_mib": round(after["VmRSS"] - before, 1), "rss_mib": after,
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "keyword": summary(times)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build"); b.add_argument("--chunks", type=int, required=True); b.add_argument("--dir", type=Path, required=True)
    k = commands.add_parser("keywords"); k.add_argument("--chunks", type=int, required=True); k.add_argument("--keep", type=Path, default=None)
    r = commands.add_parser("keyword-reader"); r.add_argument("--index", type=Path, required=True); r.add_argument("--rounds", type=int, default=2)
    m = commands.add_parser("measure"); m.add_argument("--dir", type=Path, required=True); m.add_argument("--rounds", type=int, default=2)
    s = commands.add_parser("bm25s"); s.add_argument("--dir", type=Path, required=True); s.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    {"build": build, "keywords": keywords_only, "keyword-reader": keyword_reader, "measure": measure,
     "bm25s": bm25s_side}[args.command](args)


if __name__ == "__main__":
    main()
