"""Hybrid retrieval: dense (Chroma, cosine) and BM25 (the tantivy index of rag.keywords) ranked
lists fused by reciprocal rank.

Both searches rank chunk ids only, and the fused winners' texts come from the copy the keyword
index stores on disk. At 100k chunks, reading text and metadata for every dense candidate through
ChromaVectorStore.query cost 5.6 ms against 1.8 ms for their ids.
"""

from __future__ import annotations

import math
import time

from rag.embedding import MiniLMEmbedding
from rag.keywords import KeywordIndex, Ranking
from rag.models import Passage, SearchFilter
from rag.store import ChromaStore, StoredChunk

__all__ = ["HybridRetriever", "KeywordIndex", "Ranking", "reciprocal_rank_fusion"]


class HybridRetriever:
    """Fuses dense search in Chroma with BM25 search in the store's keyword index."""

    def __init__(self, store: ChromaStore, embedder: MiniLMEmbedding, candidate_k: int, recheck_s: float) -> None:
        self._store = store
        self._candidate_k = candidate_k
        self._recheck_s = recheck_s
        self._embedder = embedder
        self._reloaded_at = -math.inf

    def keyword_index(self) -> KeywordIndex:
        """The keyword index, current with every commit: tantivy reloads on a commit by any process
        within about half a second; this reloads too at least every recheck_s, in case its watch
        on the index folder misses one (a network file system)."""
        if time.monotonic() - self._reloaded_at >= self._recheck_s:
            self._store.keywords.reload()
            self._reloaded_at = time.monotonic()
        return self._store.keywords

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
        # Chunk ids name their text, so the index's copy is current; a chunk written to Chroma
        # and not yet to the index (a write under way) is read from the store.
        found = keywords.get_many(chunk_id for chunk_id, _ in best)
        missing = [chunk_id for chunk_id, _ in best if chunk_id not in found]
        found.update({s.chunk.chunk_id: s for s in self._store.chunks_by_id(missing)})
        # A chunk deleted between the search and this read is left out, not an error.
        return [_passage(found[chunk_id], score) for chunk_id, score in best if chunk_id in found]

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
            if here is None:  # being written, or deleted since
                continue
            # The passage's own chunk, and any already read, are in ``read``.
            for position in range(here.chunk.index - reach, here.chunk.index + reach + 1):
                if position < 0:
                    continue
                stored = keywords.at(passage.document_id, position)
                if stored is not None and stored.chunk.chunk_id not in read:
                    read.add(stored.chunk.chunk_id)
                    neighbours.append(_passage(stored, 0.0, context_of=passage.chunk_id))
        return passages + neighbours

    def next_chunk(self, passage: Passage) -> Passage | None:
        """The chunk after this passage in its article (None at the article's end, or for a
        chunk the keyword index does not hold yet)."""
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
