"""RagService: the only place that wires the parts together. The API and the CLI call it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rag.answering import Answerer, AnswerEvent, SentenceSelector
from rag.chat import ChatMessage, check_messages, standalone_question
from rag.config import Settings
from rag.documents import (
    Chunker,
    clean_text,
    decode_article,
    default_title,
    iter_article_files,
    validate_document_id,
)
from rag.embedding import MODEL_NAME, MiniLMEmbedding
from rag.errors import DocumentTooLargeError, InvalidInputError, NotFoundError, RagError
from rag.llm import LLM, GenerationOptions
from rag.models import Answer, Chunk, Document, DocumentInfo, Health, IngestResult, MetadataValue, Passage
from rag.retrieval import HybridRetriever
from rag.store import ChromaStore, DocumentWrite, connect

log = logging.getLogger(__name__)

# Chunks embedded and written to Chroma together when ingesting many articles.
INGEST_GROUP_CHUNKS = 256


@dataclass(frozen=True)
class ArticleInput:
    """An article as it arrives, before cleaning."""

    text: str
    document_id: str | None = None
    title: str | None = None
    metadata: dict[str, MetadataValue] | None = None


@dataclass(frozen=True)
class _PreparedArticle:
    """An article checked and chunked, not yet written; ``info`` is None when unchanged."""

    result: IngestResult
    info: DocumentInfo | None
    text: str
    chunks: list[Chunk]


class RagService:
    def __init__(
        self, settings: Settings, store: ChromaStore, embedder: MiniLMEmbedding, llm: LLM
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.llm = llm
        self.chunker = Chunker(embedder.token_ids, settings.chunk_size, settings.chunk_overlap)
        self.retriever = HybridRetriever(store, embedder, settings.candidate_k, settings.store_recheck_s)
        self.answerer = Answerer(
            llm, SentenceSelector(embedder, settings.context_sentences), settings.counterpart_similarity
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RagService:
        embedder = MiniLMEmbedding(embed_batch_size=settings.embed_batch_size)
        store = ChromaStore(connect(settings), settings.collection)
        return cls(settings, store, embedder, LLM(settings))

    def close(self) -> None:
        """Stop what the service started (the embedded LLM server)."""
        self.llm.close()

    # --- ingest --------------------------------------------------------------------------
    def ingest(self, article: ArticleInput) -> IngestResult:
        return self.ingest_many([article])[0]

    def ingest_many(
        self, articles: list[ArticleInput], on_each: Callable[[IngestResult], None] | None = None
    ) -> list[IngestResult]:
        """Ingest articles in order. All are checked before any is written; then their chunks
        are embedded and written in groups that span articles, because the embedding model and
        Chroma both pay per call rather than per chunk."""
        prepared = [self._prepare_named(article, several=len(articles) > 1) for article in articles]
        seen: set[str] = set()
        for item in prepared:
            if item.result.document_id in seen:
                raise InvalidInputError(f"two articles have the id {item.result.document_id!r}")
            seen.add(item.result.document_id)
        results: list[IngestResult] = []
        group: list[_PreparedArticle] = []
        group_chunks = 0
        for item in prepared:
            group.append(item)
            group_chunks += len(item.chunks)
            if group_chunks >= INGEST_GROUP_CHUNKS:
                results += self._write_group(group, on_each)
                group, group_chunks = [], 0
        return results + self._write_group(group, on_each)

    def _prepare_named(self, article: ArticleInput, several: bool) -> _PreparedArticle:
        """_prepare, naming the article in its error when it is one of several."""
        try:
            return self._prepare(article)
        except RagError as exc:
            if several and article.document_id:
                raise type(exc)(f"{article.document_id}: {exc.message}") from None
            raise

    def _prepare(self, article: ArticleInput) -> _PreparedArticle:
        size = len(article.text.encode("utf-8"))
        if size > self.settings.max_document_bytes:
            raise DocumentTooLargeError(
                f"article is {size:,} bytes; the limit is {self.settings.max_document_bytes:,} "
                "(RAG_MAX_DOCUMENT_BYTES)"
            )
        cleaned = clean_text(article.text)
        if not cleaned.text:
            raise InvalidInputError("article text is empty once whitespace and page debris are removed")
        document_id = validate_document_id(article.document_id or f"doc-{cleaned.sha256[:16]}")
        title = (article.title or "").strip() or default_title(cleaned.text)
        metadata = dict(article.metadata or {})

        existing = self.store.document_info(document_id)
        if existing and (existing.sha256, existing.title, existing.metadata) == (
            cleaned.sha256, title, metadata
        ):
            unchanged = IngestResult(
                document_id=document_id, title=title, status="unchanged",
                chunk_count=existing.chunk_count,
            )
            return _PreparedArticle(unchanged, None, cleaned.text, [])
        chunks = self.chunker.chunk(document_id, cleaned.text)
        info = DocumentInfo(
            id=document_id,
            title=title,
            chunk_count=len(chunks),
            sha256=cleaned.sha256,
            ingested_at=datetime.now(timezone.utc),
            metadata=metadata,
        )
        result = IngestResult(
            document_id=document_id, title=title,
            status="updated" if existing else "created", chunk_count=len(chunks),
        )
        return _PreparedArticle(result, info, cleaned.text, chunks)

    def _write_group(
        self, group: list[_PreparedArticle], on_each: Callable[[IngestResult], None] | None
    ) -> list[IngestResult]:
        writes = [item for item in group if item.info is not None]
        texts = [chunk.text for item in writes for chunk in item.chunks]
        vectors = iter(self.embedder.get_text_embedding_batch(texts) if texts else [])
        self.store.write_documents([
            DocumentWrite(item.info, item.text, item.chunks, [next(vectors) for _ in item.chunks])
            for item in writes
        ])
        for item in group:
            if on_each:
                on_each(item.result)
        return [item.result for item in group]

    def read_article_file(self, path: Path) -> ArticleInput:
        text = decode_article(path.read_bytes(), str(path), self.settings.max_document_bytes)
        return ArticleInput(text=text, document_id=validate_document_id(path.stem))

    def ingest_paths(
        self, paths: Iterable[Path], on_each: Callable[[IngestResult], None] | None = None
    ) -> list[IngestResult]:
        """Ingest files and folders. Every file is read and checked before any is written,
        so one bad file leaves the store as it was."""
        articles = [self.read_article_file(path) for path in iter_article_files(list(paths))]
        return self.ingest_many(articles, on_each)

    def seed_if_empty(self) -> list[IngestResult]:
        if not self.settings.seed_on_empty or self.store.counts()[0] > 0:
            return []
        if not self.settings.seed_dir.is_dir():
            log.warning("seed folder %s not found; starting with an empty store", self.settings.seed_dir)
            return []
        results = self.ingest_paths([self.settings.seed_dir])
        log.info("ingested %d seed articles from %s", len(results), self.settings.seed_dir)
        return results

    # --- documents -----------------------------------------------------------------------
    def list_documents(self) -> list[DocumentInfo]:
        return self.store.list_documents()

    def get_document(self, document_id: str) -> Document:
        info = self.store.document_info(document_id)
        text = self.store.document_text(document_id) if info else None
        if info is None or text is None:
            raise NotFoundError(f"no document with id {document_id!r}")
        return Document(**info.model_dump(), text=text, chunks=self.store.chunks_of(document_id))

    def delete_document(self, document_id: str) -> None:
        if self.store.document_info(document_id) is None:
            raise NotFoundError(f"no document with id {document_id!r}")
        self.store.delete_document(document_id)

    # --- retrieval -----------------------------------------------------------------------
    def check_query(self, query: str) -> str:
        query = " ".join(query.split())
        if not query:
            raise InvalidInputError("query is empty")
        if len(query) > self.settings.max_query_chars:
            raise InvalidInputError(
                f"query is {len(query)} characters; the limit is {self.settings.max_query_chars}"
            )
        return query

    def retrieve(
        self, query: str, top_k: int | None = None, document_ids: list[str] | None = None
    ) -> list[Passage]:
        query = self.check_query(query)
        top_k = top_k or self.settings.top_k
        if not 1 <= top_k <= 50:
            raise InvalidInputError("top_k must be between 1 and 50")
        return self.retriever.retrieve(query, top_k, document_ids)

    # --- answering -----------------------------------------------------------------------
    def ask(
        self, question: str, top_k: int | None = None, document_ids: list[str] | None = None,
        options: GenerationOptions | None = None,
    ) -> Answer:
        started = time.perf_counter()
        passages = self.retrieve(question, top_k, document_ids)
        retrieve_ms = (time.perf_counter() - started) * 1000
        return self.answerer.answer(self.check_query(question), passages, retrieve_ms, options)

    def ask_stream(
        self, question: str, top_k: int | None = None, document_ids: list[str] | None = None,
        options: GenerationOptions | None = None,
    ) -> Iterator[AnswerEvent]:
        """Like ask(), as verified pieces of text and then the Answer."""
        started = time.perf_counter()
        passages = self.retrieve(question, top_k, document_ids)
        retrieve_ms = (time.perf_counter() - started) * 1000
        return self.answerer.stream(self.check_query(question), passages, retrieve_ms, options)

    def chat(
        self, messages: list[ChatMessage], options: GenerationOptions | None = None,
        top_k: int | None = None, document_ids: list[str] | None = None,
    ) -> tuple[str, Iterator[AnswerEvent]]:
        """The standalone question a conversation asks, and its streamed answer."""
        question = standalone_question(self.llm, check_messages(messages))
        return question, self.ask_stream(question, top_k, document_ids, options)

    def health(self) -> Health:
        try:
            self.store.ping()
            documents, chunks = self.store.counts()
        except RagError as exc:
            return Health(
                status="degraded", store="unreachable", documents=None, chunks=None,
                embedding_model=MODEL_NAME, llm=self.llm.model, llm_status=self.llm.status(),
                detail=exc.message,
            )
        return Health(
            status="ok", store="ok", documents=documents, chunks=chunks,
            embedding_model=MODEL_NAME, llm=self.llm.model, llm_status=self.llm.status(),
        )
