"""Chroma, embedded or server, holding two collections: the chunks (vectors, through
LlamaIndex's ChromaVectorStore) and a document registry (canonical text and facts); and the
keyword index on disk beside it (rag.keywords), kept consistent with the chunks.

Every write takes the keyword index's writer lock (one process at a time, across processes),
marks the index unsynced, writes Chroma, writes the index, and marks it synced to the store's new
revision. A start that finds the marker missing or naming another revision, or the counts apart,
compares chunk ids and repairs the index from Chroma's stored text (no re-embedding)."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlparse

import chromadb
from chromadb.config import Settings as ChromaSettings
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.utils import node_to_metadata_dict
from llama_index.vector_stores.chroma import ChromaVectorStore

from rag.config import Settings
from rag.errors import InvalidInputError, StoreUnavailableError
from rag.filters import article_metadata, chroma_where, chunk_fields
from rag.keywords import KeywordIndex, KeywordLockBusy
from rag.models import Chunk, DocumentInfo, MetadataValue, SearchFilter

log = logging.getLogger(__name__)

READ_PAGE = 5000  # chunks read from Chroma per request
REVISION_KEY = "rag_revision"
# The registry needs no vectors, but Chroma wants one per record.
_REGISTRY_VECTOR = [1.0]


def connect(settings: Settings) -> chromadb.ClientAPI:
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if not settings.chroma_url:
            settings.chroma_path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)
        url = urlparse(settings.chroma_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise InvalidInputError(f"RAG_CHROMA_URL must be http(s)://host:port, got {settings.chroma_url!r}")
        return chromadb.HttpClient(
            host=url.hostname,
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    except InvalidInputError:
        raise
    except Exception as exc:  # chromadb raises plain ValueError/ConnectionError here
        raise store_error(f"cannot open Chroma ({settings.chroma_url or settings.chroma_path})", exc) from exc


# How SQLite (under embedded Chroma and a Chroma server alike) says it cannot write: the embedded
# store cannot even be opened in a read-only folder, since opening writes.
_UNWRITABLE = ("database or disk is full", "readonly database", "read-only file system", "no space left")


def store_error(what: str, exc: Exception) -> StoreUnavailableError:
    """The error a failed store request becomes, naming a full disk or a read-only data
    directory when that is the cause, since that is what the reader has to fix."""
    if any(words in str(exc).lower() for words in _UNWRITABLE):
        return StoreUnavailableError(f"{what}: the store cannot be written (a full disk or a read-only data directory): {exc}")
    return StoreUnavailableError(f"{what}: {exc}")


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as stored, with its document's title and metadata."""

    chunk: Chunk
    title: str
    metadata: dict[str, MetadataValue]


@dataclass(frozen=True)
class DocumentWrite:
    """One document's record and its chunks with their vectors, ready to store."""

    info: DocumentInfo
    text: str  # empty for an alias, whose text is its original's
    chunks: list[Chunk]
    embeddings: list[list[float]]


def open_store(settings: Settings) -> ChromaStore:
    """The store the settings name: Chroma and the keyword index."""
    return ChromaStore(connect(settings), settings.collection, KeywordIndex(settings.keyword_path, settings.keyword_lock_wait_s))


class ChromaStore:
    """Writes and reads of documents and their chunks, in Chroma and the keyword index. Writes
    are serialised across processes by the keyword index's writer lock."""

    def __init__(self, client: chromadb.ClientAPI, collection: str, keywords: KeywordIndex) -> None:
        self._client = client
        self.keywords = keywords
        self._write_lock = threading.Lock()
        self._generation = 0
        try:
            self._chunks = client.get_or_create_collection(
                collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
            self._registry = client.get_or_create_collection(
                f"{collection}_documents", embedding_function=None
            )
        except Exception as exc:
            raise StoreUnavailableError(f"cannot open Chroma collection {collection!r}: {exc}") from exc
        self.vector_store = ChromaVectorStore(chroma_collection=self._chunks)
        if self.revision() is None:  # a store from before revisions: name its current state
            self._guard(self._bump_revision)
        self.repair_keywords()

    def repair_keywords(self, force: bool = False) -> tuple[int, int]:
        """Make the keyword index hold exactly Chroma's chunks when its synced marker or its count
        says it may not: missing chunks are indexed from Chroma's stored text, extra ones deleted.
        (added, deleted). Skipped while another process holds the writer lock: a write is under
        way there, and that writer marks the index synced when it ends."""
        if not force and self._keywords_synced():
            return (0, 0)
        try:
            with self._write_lock, self.keywords.writing(wait=False) as changes:
                if not force and self._keywords_synced():  # a write that just ended synced it
                    return (0, 0)
                revision = self.revision()
                stored = set(self._guard(lambda: _read_all(self._chunks, [])["ids"]))
                held = self.keywords.chunk_ids()
                missing, extra = sorted(stored - held), sorted(held - stored)
                changes.delete_chunks(extra)
                for start in range(0, len(missing), READ_PAGE):
                    changes.add(self.chunks_by_id(missing[start : start + READ_PAGE]))
                changes.mark_synced(revision)
        except KeywordLockBusy:
            log.info("keyword index in %s is being written by another process; not checked now", self.keywords.folder)
            return (0, 0)
        if missing or extra:
            log.warning("keyword index in %s repaired from Chroma: %d chunks indexed, %d removed",
                        self.keywords.folder, len(missing), len(extra))
        return (len(missing), len(extra))

    def _keywords_synced(self) -> bool:
        self.keywords.reload()
        return self.keywords.synced_revision() == self.revision() and len(self.keywords) == self.chunk_count()

    @property
    def generation(self) -> int:
        """Bumped on every write, so readers (BM25) know when to refresh."""
        return self._generation

    # --- reads ---------------------------------------------------------------------------
    def revision(self) -> str | None:
        """A token that changes with every write to the chunks, by this process or another: what
        a keyword index saved to disk is checked against before it is trusted."""
        metadata = self._guard(lambda: self._client.get_collection(self._chunks.name).metadata) or {}
        return metadata.get(REVISION_KEY)

    def _bump_revision(self) -> str:
        # Set after the chunks are written: the keyword index is marked synced to it once it holds them.
        revision = uuid.uuid4().hex
        self._chunks.modify(metadata={REVISION_KEY: revision})
        return revision

    def ping(self) -> None:
        try:
            self._client.heartbeat()
        except Exception as exc:
            raise StoreUnavailableError(f"Chroma is unreachable: {exc}") from exc

    def chunk_count(self) -> int:
        return self._guard(self._chunks.count)

    def counts(self) -> tuple[int, int]:
        """(documents, chunks); a document's aliases are not counted."""
        return self._guard(lambda: (self._registry.count() - len(self._alias_ids()), self._chunks.count()))

    def alias_count(self) -> int:
        return self._guard(lambda: len(self._alias_ids()))

    def _alias_ids(self, original: str | None = None) -> list[str]:
        where = {"alias_of": original} if original else {"alias_of": {"$ne": ""}}
        return _read_all(self._registry, [], where)["ids"]

    def aliases_of(self, document_id: str) -> list[str]:
        return sorted(self._guard(lambda: self._alias_ids(document_id)))

    def document_info(self, document_id: str) -> DocumentInfo | None:
        return self.document_infos([document_id]).get(document_id)

    def document_infos(self, document_ids: list[str]) -> dict[str, DocumentInfo]:
        """The records of those ids that exist, by id: one request for many."""
        if not document_ids:
            return {}
        found = self._guard(lambda: self._registry.get(ids=list(dict.fromkeys(document_ids)), include=["metadatas"]))
        return {i: _info(i, m) for i, m in zip(found["ids"], found["metadatas"])}

    def originals_by_sha256(self, digests: list[str]) -> dict[str, str]:
        """For each digest of canonical text stored, the id of a document (not an alias) holding it."""
        if not digests:
            return {}
        found = self._guard(lambda: _read_all(
            self._registry, ["metadatas"], where={"sha256": {"$in": sorted(set(digests))}}
        ))
        originals: dict[str, str] = {}
        for document_id, meta in sorted(zip(found["ids"], found["metadatas"])):
            if not meta.get("alias_of"):
                originals.setdefault(meta["sha256"], document_id)
        return originals

    def document_text(self, document_id: str) -> str | None:
        found = self._guard(lambda: self._registry.get(ids=[document_id], include=["documents"]))
        return found["documents"][0] if found["ids"] else None

    def list_documents(self) -> list[DocumentInfo]:
        found = self._guard(lambda: _read_all(self._registry, ["metadatas"]))
        infos = [_info(i, m) for i, m in zip(found["ids"], found["metadatas"])]
        return sorted(infos, key=lambda info: info.id)

    def chunks_of(self, document_id: str) -> list[Chunk]:
        stored = self._guard(lambda: _read_chunks(self._chunks, where={"document_id": document_id}))
        return sorted((s.chunk for s in stored), key=lambda c: c.index)

    def all_chunks(self) -> list[StoredChunk]:
        return self._guard(lambda: _read_chunks(self._chunks))

    def chunks_by_id(self, chunk_ids: list[str]) -> list[StoredChunk]:
        """The chunks of these ids that exist, in no particular order."""
        if not chunk_ids:
            return []
        return self._guard(lambda: _stored_chunks(self._chunks.get(ids=chunk_ids, include=["documents", "metadatas"])))

    def nearest_chunks(
        self, embedding: list[float], k: int, search: SearchFilter | None = None
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the k chunks nearest the embedding that pass the
        filter, best first. Ids only: reading every candidate's text and metadata costs more than
        the search."""
        where = chroma_where(search)
        found = self._guard(lambda: self._chunks.query(
            query_embeddings=[embedding], n_results=k, where=where, include=["distances"]
        ))
        return [(i, 1.0 - distance) for i, distance in zip(found["ids"][0], found["distances"][0])]

    # --- writes --------------------------------------------------------------------------
    def write_documents(self, writes: list[DocumentWrite]) -> None:
        """Replace documents' chunks and records: new chunk ids are upserted before the stale
        ones are removed, so a reader never sees a document without chunks."""
        if not writes:
            return
        nodes = [
            chunk_to_node(chunk, write.info.title, write.info.metadata, vector)
            for write in writes
            for chunk, vector in zip(write.chunks, write.embeddings)
        ]
        new_ids = {node.node_id for node in nodes}
        document_ids = [write.info.id for write in writes]
        entries = [
            StoredChunk(chunk, write.info.title, write.info.metadata) for write in writes for chunk in write.chunks
        ]
        with self._write_lock, self.keywords.writing() as changes:
            changes.mark_unsynced()

            def write() -> str:
                old = self._chunks.get(where={"document_id": {"$in": document_ids}}, include=[])["ids"]
                if nodes:
                    self._chunks.upsert(
                        ids=[n.node_id for n in nodes],
                        embeddings=[n.embedding for n in nodes],
                        documents=[n.text for n in nodes],
                        # LlamaIndex's own record format, so ChromaVectorStore reads them back.
                        metadatas=[node_to_metadata_dict(n, remove_text=True) for n in nodes],
                    )
                stale = [i for i in old if i not in new_ids]
                if stale:
                    self._chunks.delete(ids=stale)
                self._registry.upsert(
                    ids=document_ids,
                    embeddings=[_REGISTRY_VECTOR] * len(writes),
                    # Chroma refuses an empty document: an alias's record holds a space.
                    documents=[write.text or " " for write in writes],
                    metadatas=[_registry_metadata(write.info) for write in writes],
                )
                return self._bump_revision()

            revision = self._guard(write)
            changes.delete_documents(document_ids)
            changes.add(entries)
            changes.mark_synced(revision)
            self._generation += 1

    def delete_document(self, document_id: str) -> None:
        with self._write_lock, self.keywords.writing() as changes:
            changes.mark_unsynced()

            def delete() -> str:
                self.vector_store.delete(ref_doc_id=document_id)
                self._registry.delete(ids=[document_id])
                return self._bump_revision()

            revision = self._guard(delete)
            changes.delete_documents([document_id])
            changes.mark_synced(revision)
            self._generation += 1

    @staticmethod
    def _guard(operation):
        try:
            return operation()
        except Exception as exc:
            raise store_error("Chroma request failed", exc) from exc


def _read_all(collection: chromadb.Collection, include: list[str], where: dict | None = None) -> dict[str, list]:
    """Every matching record, read in pages: one get of a large collection exceeds SQLite's limit
    on query variables ("too many SQL variables", seen at 100k chunks)."""
    records: dict[str, list] = {"ids": [], **{key: [] for key in include}}
    while True:
        page = collection.get(where=where, include=include, limit=READ_PAGE, offset=len(records["ids"]))
        for key in records:
            records[key] += page[key]
        if len(page["ids"]) < READ_PAGE:
            return records


def _read_chunks(collection: chromadb.Collection, where: dict | None = None) -> list[StoredChunk]:
    return _stored_chunks(_read_all(collection, ["documents", "metadatas"], where))


def _stored_chunks(found: dict[str, list]) -> list[StoredChunk]:
    # Read from the flat metadata LlamaIndex writes beside its node JSON: rebuilding a TextNode per
    # record took seconds for a keyword index over 100k chunks.
    return [
        StoredChunk(
            chunk=Chunk(
                chunk_id=chunk_id, document_id=meta["document_id"], index=int(meta["chunk_index"]),
                start=int(meta["start"]), end=int(meta["end"]), text=text,
            ),
            title=str(meta.get("title", "")),
            metadata=article_metadata(meta),
        )
        for chunk_id, text, meta in zip(found["ids"], found["documents"], found["metadatas"])
    ]


def chunk_to_node(
    chunk: Chunk, title: str, metadata: dict[str, MetadataValue], embedding: list[float] | None = None
) -> TextNode:
    fields = {"title": title, "chunk_index": chunk.index, "start": chunk.start, "end": chunk.end,
              **chunk_fields(metadata)}
    node = TextNode(
        id_=chunk.chunk_id,
        text=chunk.text,
        embedding=embedding,
        start_char_idx=chunk.start,
        end_char_idx=chunk.end,
        metadata=fields,
        excluded_embed_metadata_keys=list(fields),
        excluded_llm_metadata_keys=list(fields),
    )
    node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=chunk.document_id)
    return node


def _registry_metadata(info: DocumentInfo) -> dict:
    return {
        "title": info.title,
        "chunk_count": info.chunk_count,
        "sha256": info.sha256,
        "ingested_at": info.ingested_at.isoformat(),
        "metadata_json": json.dumps(info.metadata, sort_keys=True),
        "alias_of": info.alias_of or "",
    }


def _info(document_id: str, meta: dict) -> DocumentInfo:
    return DocumentInfo(
        id=document_id,
        title=meta["title"],
        chunk_count=int(meta["chunk_count"]),
        sha256=meta["sha256"],
        ingested_at=datetime.fromisoformat(meta["ingested_at"]),
        metadata=json.loads(meta.get("metadata_json") or "{}"),
        alias_of=meta.get("alias_of") or None,
    )
