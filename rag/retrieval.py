"""Hybrid retrieval: dense (Chroma, cosine) and BM25 ranked lists fused by reciprocal rank."""

from __future__ import annotations

import math
import threading
import time

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters, VectorStoreQuery
from llama_index.retrievers.bm25 import BM25Retriever

from rag.models import Passage
from rag.store import ChromaStore, node_to_chunk


class _EmptyRetriever(BaseRetriever):
    """BM25 cannot be built over zero chunks; an empty store simply finds nothing."""

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return []


class HybridRetriever:
    """Keeps a BM25 index in step with the store and fuses it with dense search."""

    def __init__(
        self, store: ChromaStore, embed_model: BaseEmbedding, candidate_k: int, recheck_s: float
    ) -> None:
        self._store = store
        self._candidate_k = candidate_k
        self._recheck_s = recheck_s
        self._embed_model = embed_model
        self._bm25: BaseRetriever = _EmptyRetriever()
        self._bm25_state: tuple[int, int] | None = None
        self._chunk_count = (0, -math.inf)  # (count, when it was read)
        self._bm25_lock = threading.Lock()

    def _other_writers_count(self) -> int:
        # Counting costs Chroma a scan that grows with the collection, so it is read at most
        # every recheck_s; this process's own writes bump the store's generation instead.
        count, read_at = self._chunk_count
        if time.monotonic() - read_at >= self._recheck_s:
            count = self._store.chunk_count()
            self._chunk_count = (count, time.monotonic())
        return count

    def _bm25_retriever(self) -> BaseRetriever:
        # Rebuilt when this process wrote (generation) or another writer changed the chunk count.
        state = (self._store.generation, self._other_writers_count())
        with self._bm25_lock:
            if state != self._bm25_state:
                nodes = self._store.all_chunk_nodes()
                self._bm25 = (
                    BM25Retriever.from_defaults(
                        nodes=nodes, similarity_top_k=min(self._candidate_k, len(nodes)),
                        language="english",
                    )
                    if nodes
                    else _EmptyRetriever()
                )
                # The nodes just read are the current count: no second rebuild when it is next read.
                self._chunk_count = (len(nodes), time.monotonic())
                self._bm25_state = (state[0], len(nodes))
            return self._bm25

    def retrieve(self, query: str, top_k: int, document_ids: list[str] | None = None) -> list[Passage]:
        # The store is queried through LlamaIndex's vector-store API directly: a retriever and a
        # QueryFusionRetriever built per query cost as much as the Chroma query itself.
        filters = None
        if document_ids:
            filters = MetadataFilters(
                filters=[MetadataFilter(key="document_id", operator=FilterOperator.IN, value=document_ids)]
            )
        found = self._store.vector_store.query(VectorStoreQuery(
            query_embedding=self._embed_model.get_query_embedding(query),
            similarity_top_k=self._candidate_k, filters=filters,
        ))
        dense = [NodeWithScore(node=n, score=s) for n, s in zip(found.nodes or [], found.similarities or [])]
        sparse = self._bm25_retriever().retrieve(query)
        if document_ids:
            wanted = set(document_ids)
            sparse = [r for r in sparse if r.node.ref_doc_id in wanted]  # BM25 is unfiltered
        return [_passage(result) for result in reciprocal_rank_fusion([dense, sparse])[:top_k]]


def reciprocal_rank_fusion(rankings: list[list[NodeWithScore]], k: float = 60.0) -> list[NodeWithScore]:
    """Each node scored by the sum of 1 / (k + rank) over the lists that hold it (Cormack et al.
    2009; the formula and k of LlamaIndex's QueryFusionRetriever)."""
    fused: dict[str, float] = {}
    nodes: dict[str, NodeWithScore] = {}
    for ranking in rankings:
        for rank, result in enumerate(sorted(ranking, key=lambda r: r.score or 0.0, reverse=True)):
            nodes[result.node.node_id] = result
            fused[result.node.node_id] = fused.get(result.node.node_id, 0.0) + 1.0 / (rank + k)
    ordered = sorted(fused, key=fused.__getitem__, reverse=True)
    return [NodeWithScore(node=nodes[node_id].node, score=fused[node_id]) for node_id in ordered]


def _passage(result: NodeWithScore) -> Passage:
    chunk = node_to_chunk(result.node)
    return Passage(
        document_id=chunk.document_id,
        title=str(result.node.metadata.get("title", "")),
        chunk_id=chunk.chunk_id,
        text=chunk.text,
        start=chunk.start,
        end=chunk.end,
        score=round(float(result.score or 0.0), 6),
    )
