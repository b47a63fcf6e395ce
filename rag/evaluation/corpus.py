"""An eval corpus: a folder of articles ingested once into a store of its own under the data
dir, and reused by later runs while the folder and the ingest settings stay the same.

The store's folder is named by a fingerprint of every file under the folder (path and bytes)
and of the settings that shape chunks and vectors, so a changed corpus or chunking gets a new
store rather than a stale one. Whatever the ingest reports (files created, unchanged, skipped)
is counted by status and kept beside the store."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

from pydantic import BaseModel

from rag.config import Settings
from rag.embedding import MODEL_NAME
from rag.errors import InvalidInputError, NotFoundError
from rag.service import RagService

STATE_FILE = "corpus.json"


class CorpusState(BaseModel):
    corpus: str
    fingerprint: str
    documents: int
    chunks: int
    ingest: dict[str, int]  # ingest results by status, as the last ingest reported them
    reused: bool = False

    def describe(self) -> str:
        how = "reused" if self.reused else "ingested"
        statuses = ", ".join(f"{n} {status}" for status, n in sorted(self.ingest.items()))
        return f"corpus {self.corpus}: {how}, {self.documents} documents, {self.chunks} chunks ({statuses})"


def fingerprint(corpus: Path, settings: Settings) -> str:
    if not corpus.is_dir():
        raise NotFoundError(f"{corpus}: no such corpus folder")
    digest = hashlib.sha256()
    for key in (MODEL_NAME, settings.chunk_size, settings.chunk_overlap, settings.collection):
        digest.update(f"{key}\x00".encode())
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    if not files:
        raise InvalidInputError(f"{corpus}: the corpus folder is empty")
    for path in files:
        digest.update(path.relative_to(corpus).as_posix().encode("utf-8") + b"\x00")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def store_dir(settings: Settings, corpus: Path) -> Path:
    """Where the corpus's store lives: data_dir/eval-corpora/<folder name>-<fingerprint>."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", corpus.resolve().name).strip("-") or "corpus"
    return settings.data_dir / "eval-corpora" / f"{name}-{fingerprint(corpus, settings)[:16]}"


def ensure_ingested(service: RagService, corpus: Path, directory: Path) -> CorpusState:
    """Ingest the corpus into the service's store unless an earlier run already did (its
    state file agrees with the store's counts); returns what the store holds."""
    state_path = directory / STATE_FILE
    documents, chunks = service.store.counts()
    if state_path.is_file() and documents:
        saved = CorpusState.model_validate_json(state_path.read_text(encoding="utf-8"))
        if (saved.documents, saved.chunks) == (documents, chunks):
            return saved.model_copy(update={"reused": True})
    report = service.ingest_paths([corpus])
    statuses = Counter(result.status for result in report.results)
    if report.failures:
        statuses["failed"] = len(report.failures)
    documents, chunks = service.store.counts()
    state = CorpusState(corpus=str(corpus), fingerprint=directory.name, documents=documents,
                        chunks=chunks, ingest=dict(statuses))
    directory.mkdir(parents=True, exist_ok=True)
    state_path.write_text(state.model_dump_json(indent=2), encoding="utf-8")
    return state
