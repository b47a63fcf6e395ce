"""Hybrid retrieval: dense (Chroma, cosine) and BM25 ranked lists fused by reciprocal rank.

Both searches rank chunk ids only, and the fused winners' texts come from the copy the keyword
index keeps. At 100k chunks, reading text and metadata for every dense candidate through
ChromaVectorStore.query cost 5.6 ms against 1.8 ms for their ids, and reading the five winners
back another 1.5 ms, next to 9 ms for the raw embedding and Chroma query.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import threading
import time
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from rag.embedding import MiniLMEmbedding
from rag.filters import matches
from rag.models import Chunk, Passage, SearchFilter
from rag.store import ChromaStore, StoredChunk

log = logging.getLogger(__name__)

Ranking = list[tuple[str, float]]  # (chunk id, score), best first
WORD = re.compile(r"(?u)\b\w\w+\b")  # bm25s's default, scikit-learn's CountVectorizer's
STOP_WORDS = frozenset(STOPWORDS_EN)


class KeywordIndex:
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
            if corpus.vocab:  # bm25s cannot index a corpus without a term (stop words only)
                self._bm25.index(corpus, show_progress=False)
        self._searchable = hasattr(self._bm25, "vocab_dict")

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
        if self._searchable:
            self._bm25.save(str(target / "bm25"), show_progress=False)
        pointer = folder / "current.tmp"
        pointer.write_text(revision, encoding="utf-8")
        os.replace(pointer, folder / "current")
        for old in folder.iterdir():
            if old.is_dir() and old.name != revision:
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path, revision: str) -> KeywordIndex | None:
        """The index saved for this store revision, or None (none saved, another revision, unreadable)."""
        try:
            if not (folder / "current").is_file() or (folder / "current").read_text(encoding="utf-8") != revision:
                return None
            rows = json.loads((folder / revision / "chunks.json").read_text(encoding="utf-8"))
            stored = [StoredChunk(Chunk(chunk_id=r[0], document_id=r[1], index=r[2], start=r[3], end=r[4], text=r[5]),
                                  r[6], r[7]) for r in rows]
            saved = folder / revision / "bm25"
            bm25 = bm25s.BM25.load(str(saved), show_progress=False) if stored and saved.is_dir() else None
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
        if not self._searchable:
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


class HybridRetriever:
    """Keeps a BM25 index in step with the store and fuses it with dense search."""

    def __init__(
        self, store: ChromaStore, embedder: MiniLMEmbedding, candidate_k: int, recheck_s: float,
        index_dir: Path | None = None,
    ) -> None:
        self._store = store
        self._index_dir = index_dir
        self._candidate_k = candidate_k
        self._recheck_s = recheck_s
        self._embedder = embedder
        self._keywords = KeywordIndex([])
        self._keywords_state: tuple[int, int] | None = None
        self._chunk_count = (0, -math.inf)  # (count, when it was read)
        self._keywords_lock = threading.Lock()

    def _other_writers_count(self) -> int:
        # Counting costs Chroma a scan that grows with the collection, so it is read at most
        # every recheck_s; this process's own writes bump the store's generation instead.
        count, read_at = self._chunk_count
        if time.monotonic() - read_at >= self._recheck_s:
            count = self._store.chunk_count()
            self._chunk_count = (count, time.monotonic())
        return count

    def keyword_index(self) -> KeywordIndex:
        """The BM25 index, rebuilt when this process wrote (generation) or another writer changed
        the chunk count."""
        state = (self._store.generation, self._other_writers_count())
        with self._keywords_lock:
            if state != self._keywords_state:
                self._keywords = self._build()
                # The chunks just read are the current count: no second rebuild when it is next read.
                self._chunk_count = (len(self._keywords), time.monotonic())
                self._keywords_state = (state[0], len(self._keywords))
            return self._keywords

    def _build(self) -> KeywordIndex:
        """The index of every stored chunk: the one saved for the store's revision, else built
        from the store (and saved for the next start)."""
        revision = self._store.revision() if self._index_dir else None
        if revision and (saved := KeywordIndex.load(self._index_dir, revision)) is not None:
            return saved
        built = KeywordIndex(self._store.all_chunks())
        if revision and self._store.revision() == revision:  # no write during the read
            try:
                built.save(self._index_dir, revision)
            except OSError as exc:  # a full disk or read-only data dir costs the next start time only
                log.warning("keyword index not saved to %s: %s", self._index_dir, exc)
        return built

    def retrieve(self, query: str, top_k: int, search: SearchFilter | None = None) -> list[Passage]:
        """The best passages for the query: the dense and the keyword rankings, fused."""
        # The embedder directly, not LlamaIndex's get_query_embedding: its instrumentation events
        # cost ~0.6 ms a query, a tenth of the embedding itself.
        embedding = self._embedder.embed([query])[0]
        keywords = self.keyword_index()
        rankings = [
            self._store.nearest_chunks(embedding.tolist(), self._candidate_k, search),
            keywords.search(query, self._candidate_k, search),
        ]
        best = reciprocal_rank_fusion(rankings)[:top_k]
        # Chunk ids name their text, so the index's copy is current; only chunks another writer
        # added since the index was built are read from the store.
        found = {chunk_id: keywords.get(chunk_id) for chunk_id, _ in best}
        missing = [chunk_id for chunk_id, stored in found.items() if stored is None]
        found.update({s.chunk.chunk_id: s for s in self._store.chunks_by_id(missing)})
        # A chunk deleted between the search and this read is left out, not an error.
        return [_passage(found[chunk_id], score) for chunk_id, score in best if found[chunk_id]]

    def with_neighbours(self, passages: list[Passage], reach: int) -> list[Passage]:
        """The passages, then the chunks up to ``reach`` positions before and after each in its
        article that were not retrieved themselves, in the order of the passages they neighbour.
        Chunks are short, and the sentence that answers often sits beside the one that matched
        the question's words: read with them, the answer's candidate sentences hold every gold
        fact for 0.81 of the BBC dev questions instead of 0.78 (bench/shown_sentences.py --neighbours 1)."""
        if reach <= 0 or not passages:
            return passages
        keywords = self.keyword_index()
        read = {p.chunk_id for p in passages}
        neighbours: list[Passage] = []
        for passage in passages:
            here = keywords.get(passage.chunk_id)
            if here is None:  # added by another writer since the index was built
                continue
            # The passage's own chunk, and any already read, are in ``read``.
            for position in range(here.chunk.index - reach, here.chunk.index + reach + 1):
                stored = keywords.at(passage.document_id, position)
                if stored is not None and stored.chunk.chunk_id not in read:
                    read.add(stored.chunk.chunk_id)
                    neighbours.append(_passage(stored, 0.0, context_of=passage.chunk_id))
        return passages + neighbours

    def next_chunk(self, passage: Passage) -> Passage | None:
        """The chunk after this passage in its article (None at the article's end, or for a
        chunk another writer added since the keyword index was built)."""
        keywords = self.keyword_index()
        here = keywords.get(passage.chunk_id)
        stored = keywords.at(passage.document_id, here.chunk.index + 1) if here else None
        return _passage(stored, 0.0, context_of=passage.chunk_id) if stored else None


def reciprocal_rank_fusion(rankings: list[Ranking], k: float = 60.0) -> Ranking:
    """Each chunk scored by the sum of 1 / (k + rank) over the rankings that hold it (Cormack et
    al. 2009; the formula and k of LlamaIndex's QueryFusionRetriever)."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, (chunk_id, _) in enumerate(sorted(ranking, key=lambda hit: hit[1], reverse=True)):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (rank + k)
    return sorted(fused.items(), key=lambda item: item[1], reverse=True)


def _passage(stored: StoredChunk, score: float, context_of: str | None = None) -> Passage:
    chunk = stored.chunk
    return Passage(
        document_id=chunk.document_id,
        title=stored.title,
        chunk_id=chunk.chunk_id,
        text=chunk.text,
        start=chunk.start,
        end=chunk.end,
        score=round(score, 6),
        metadata=stored.metadata,
        context_of=context_of,
    )
