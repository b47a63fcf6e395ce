"""The keyword side as it was before the tantivy index (rag/retrieval.py at 92736b9): bm25s in
memory over every chunk, with the chunks' text held by id. Kept for bench/scale.py's comparison only."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from rag.filters import matches
from rag.models import Chunk, SearchFilter
from rag.store import StoredChunk

log = logging.getLogger(__name__)

Ranking = list[tuple[str, float]]
WORD = re.compile(r"(?u)\b\w\w+\b")
STOP_WORDS = frozenset(STOPWORDS_EN)


class BM25sIndex:
    """BM25 over chunk texts with bm25s (the library under LlamaIndex's BM25Retriever, with the
    same analysis: English stop words, Snowball stemming, words of two or more characters), and
    the chunks it was built from, by id."""

    def __init__(self, stored: list[StoredChunk], bm25: bm25s.BM25 | None = None) -> None:
        chunks = [s.chunk for s in stored]
        self._chunk_ids = [chunk.chunk_id for chunk in chunks]
        self._stored = {s.chunk.chunk_id: s for s in stored}
        self._at_position = {(c.document_id, c.index): c.chunk_id for c in chunks}
        document_ids = sorted({chunk.document_id for chunk in chunks})
        self._document_codes = {document_id: code for code, document_id in enumerate(document_ids)}
        self._document_metadata = {s.chunk.document_id: s.metadata for s in stored}
        self._document_of = np.array([self._document_codes[c.document_id] for c in chunks], dtype=np.int64)
        self._stemmer = Stemmer.Stemmer("english")
        # Lucene's BM25 scores a chunk without any query term 0, which search() relies on.
        self._bm25 = bm25 or bm25s.BM25(method="lucene")
        if chunks and bm25 is None:
            corpus = bm25s.tokenize(
                [c.text for c in chunks], token_pattern=WORD.pattern, stopwords=STOPWORDS_EN,
                stemmer=self._stemmer, show_progress=False,
            )
            self._bm25.index(corpus, show_progress=False)

    def __len__(self) -> int:
        return len(self._chunk_ids)

    # The index on disk: reading 100k chunks back from Chroma and indexing them took ~40 s of a
    # cold start; loading what was saved takes a few. A saved index is named by the store revision
    # it was built from, and the name of the current one is written last.
    def save(self, folder: Path, revision: str) -> None:
        target = folder / revision
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        rows = [[s.chunk.chunk_id, s.chunk.document_id, s.chunk.index, s.chunk.start, s.chunk.end, s.chunk.text,
                 s.title, s.metadata] for s in self._stored.values()]
        (target / "chunks.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        if self._chunk_ids:
            self._bm25.save(str(target / "bm25"), show_progress=False)
        pointer = folder / "current.tmp"
        pointer.write_text(revision, encoding="utf-8")
        os.replace(pointer, folder / "current")
        for old in folder.iterdir():
            if old.is_dir() and old.name != revision:
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path, revision: str) -> BM25sIndex | None:
        """The index saved for this store revision, or None (none saved, another revision, unreadable)."""
        try:
            if not (folder / "current").is_file() or (folder / "current").read_text(encoding="utf-8") != revision:
                return None
            rows = json.loads((folder / revision / "chunks.json").read_text(encoding="utf-8"))
            stored = [StoredChunk(Chunk(chunk_id=r[0], document_id=r[1], index=r[2], start=r[3], end=r[4], text=r[5]),
                                  r[6], r[7]) for r in rows]
            bm25 = bm25s.BM25.load(str(folder / revision / "bm25"), show_progress=False) if stored else None
        except (OSError, ValueError, KeyError, IndexError) as exc:
            log.warning("saved keyword index in %s not used: %s", folder, exc)
            return None
        return cls(stored, bm25)

    def get(self, chunk_id: str) -> StoredChunk | None:
        return self._stored.get(chunk_id)

    def at(self, document_id: str, index: int) -> StoredChunk | None:
        """The document's chunk at this position, if the index holds it."""
        chunk_id = self._at_position.get((document_id, index))
        return self._stored.get(chunk_id) if chunk_id else None

    def query_terms(self, query: str) -> list[str]:
        """bm25s.tokenize's analysis of one query, without its progress-bar set-up, which cost a
        quarter of a millisecond a query."""
        return self._stemmer.stemWords([word for word in WORD.findall(query.lower()) if word not in STOP_WORDS])

    def _matching_rows(self, token_ids: list[int], scores: np.ndarray) -> np.ndarray:
        """The chunks holding a query term: only they are ranked, because selecting from the whole
        array, mostly tied zeros, is where numpy's argpartition degrades (6 ms at 100k chunks
        instead of 0.3). Rare terms' postings are read from the index's sparse matrix; a common
        term matches most chunks, and a scan for non-zero scores is then cheaper."""
        pointers, rows = self._bm25.scores["indptr"], self._bm25.scores["indices"]
        postings = [rows[pointers[t] : pointers[t + 1]] for t in token_ids]
        if sum(len(p) for p in postings) * 16 < len(scores):
            return np.unique(np.concatenate(postings))
        return np.flatnonzero(scores)

    def _passing_codes(self, search: SearchFilter) -> list[int]:
        candidates = search.document_ids if search.document_ids is not None else self._document_codes
        return [
            self._document_codes[d] for d in candidates
            if d in self._document_codes and matches(search, d, self._document_metadata[d])
        ]

    def search(self, query: str, k: int, search: SearchFilter | None = None) -> Ranking:
        if not self._chunk_ids:
            return []
        token_ids = self._bm25.get_tokens_ids(self.query_terms(query))
        if not token_ids:
            return []
        scores = self._bm25.get_scores_from_ids(token_ids)
        rows = self._matching_rows(token_ids, scores)
        if search is not None and not search.is_empty:
            rows = rows[np.isin(self._document_of[rows], self._passing_codes(search))]
        if len(rows) > k:
            rows = rows[np.argpartition(-scores[rows], k - 1)[:k]]
        rows = rows[np.argsort(-scores[rows], kind="stable")]
        return [(self._chunk_ids[row], float(scores[row])) for row in rows]
