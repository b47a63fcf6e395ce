"""RagService: the only place that wires the parts together. The API and the CLI call it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from rag.answer import AnswerEvent, AnswerPipeline, SentenceSelector
from rag.chat import ChatMessage, check_messages, standalone_question
from rag.config import AnswerSettings, Settings
from rag.documents import Chunker
from rag.embedding import MODEL_NAME, MiniLMEmbedding
from rag.errors import InvalidInputError, NotFoundError, RagError
from rag.ingestion import Ingester, OnEach
from rag.llm import LLM, GenerationOptions
from rag.loading import ArticleFile, find_article_files
from rag.models import (
    Answer,
    ArticleInput,
    Document,
    DocumentInfo,
    Health,
    IngestReport,
    IngestResult,
    Limits,
    Passage,
    SearchFilter,
)
from rag.retrieval import HybridRetriever
from rag.store import ChromaStore, open_store

log = logging.getLogger(__name__)


class RagService:
    def __init__(
        self, settings: Settings, store: ChromaStore, embedder: MiniLMEmbedding, llm: LLM
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.llm = llm
        self.chunker = Chunker(embedder.token_ids, settings.chunk_size, settings.chunk_overlap)
        self.ingester = Ingester(settings, store, embedder, self.chunker)
        self.retriever = HybridRetriever(store, embedder, settings.candidate_k, settings.store_recheck_s)
        self.pipeline = self.answer_pipeline(settings.answer)
        llm.warm_with(self.pipeline.warmup_prompts())

    def answer_pipeline(self, answer: AnswerSettings, selector: SentenceSelector | None = None) -> AnswerPipeline:
        """An answer pipeline on this service's store, retriever and model, with ``answer``'s
        settings (and ``selector`` choosing the sentences shown): the tests and the benchmarks
        compare steps on and off with it."""
        selector = selector or SentenceSelector(
            self.embedder, answer.context_sentences, answer.sentence_term_weight, answer.sentence_rank_weight,
            answer.sentence_kind_weight,
        )
        return AnswerPipeline(answer, self.llm, selector, self._retrieve_checked, self.retriever.next_chunk)

    @classmethod
    def from_settings(cls, settings: Settings) -> RagService:
        embedder = MiniLMEmbedding(embed_batch_size=settings.embed_batch_size)
        store = open_store(settings)
        return cls(settings, store, embedder, LLM(settings))

    def start_llm(self) -> None:
        """Start the embedded model in the background; it reports ready once it has read the
        fixed prompt every answer begins with (no-op for a remote endpoint)."""
        self.llm.start()

    def close(self) -> None:
        """Stop what the service started (the embedded LLM server)."""
        self.llm.close()

    # --- ingest --------------------------------------------------------------------------
    def ingest(self, article: ArticleInput) -> IngestResult:
        return self.ingester.ingest(article)

    def ingest_many(self, articles: list[ArticleInput], on_each: OnEach | None = None) -> list[IngestResult]:
        return self.ingester.ingest_many(articles, on_each)

    def ingest_paths(self, paths: Iterable[Path], on_each: OnEach | None = None) -> IngestReport:
        """Ingest files and folders. A file that cannot be read or used is reported with its
        reason and the others are ingested all the same."""
        files = list(find_article_files(list(paths)))
        return self.ingester.ingest_files(files, on_each)

    def ingest_files(self, files: list[ArticleFile], on_each: OnEach | None = None) -> IngestReport:
        return self.ingester.ingest_files(files, on_each)

    def seed_if_empty(self) -> list[IngestResult]:
        if not self.settings.seed_on_empty or self.store.counts()[0] > 0:
            return []
        if not self.settings.seed_dir.is_dir():
            log.warning("seed folder %s not found; starting with an empty store", self.settings.seed_dir)
            return []
        report = self.ingest_paths([self.settings.seed_dir])
        for failure in report.failures:
            log.warning("seed article %s not ingested: %s", failure.file, failure.reason)
        log.info("ingested %d seed articles from %s", len(report.results), self.settings.seed_dir)
        return report.results

    # --- documents -----------------------------------------------------------------------
    def list_documents(self) -> list[DocumentInfo]:
        return self.store.list_documents()

    def get_document(self, document_id: str) -> Document:
        """A document with its canonical text and chunks; an alias answers with its original's."""
        info = self._document_info(document_id)
        original = info.alias_of or document_id
        text = self.store.document_text(original)
        if text is None:
            raise NotFoundError(f"no document with id {document_id!r}")
        return Document(
            **info.model_dump(), text=text, chunks=self.store.chunks_of(original),
            aliases=[] if info.alias_of else self.store.aliases_of(document_id),
        )

    def delete_document(self, document_id: str) -> None:
        """Delete a document. Its aliases stay: the first takes its text and chunks."""
        info = self._document_info(document_id)
        if not info.alias_of:
            released = self.ingester.released_aliases(document_id)
            if released:
                self.ingester.write_group(released, None)
        self.store.delete_document(document_id)

    def _document_info(self, document_id: str) -> DocumentInfo:
        info = self.store.document_info(document_id)
        if info is None:
            raise NotFoundError(f"no document with id {document_id!r}")
        return info

    # --- retrieval -----------------------------------------------------------------------
    def check_query(self, query: str) -> str:
        query = " ".join(query.split())
        if not query:
            raise InvalidInputError("query is empty")
        if not any(ch.isalnum() for ch in query):
            raise InvalidInputError("nothing to search: the query has no letter or digit")
        if len(query) > self.settings.max_query_chars:
            raise InvalidInputError(
                f"query is {len(query)} characters; the limit is {self.settings.max_query_chars}"
            )
        return query

    def check_filter(self, search: SearchFilter | None) -> SearchFilter | None:
        """The filter with aliases named by their originals, refusing ids that do not exist."""
        if search is None or search.document_ids is None:
            return search
        if not search.document_ids:
            raise InvalidInputError("document_ids is empty: leave it out to search every document")
        infos = self.store.document_infos(search.document_ids)
        unknown = [d for d in search.document_ids if d not in infos]
        if unknown:
            raise NotFoundError(f"no document with id {unknown[0]!r}")
        originals = list(dict.fromkeys(infos[d].alias_of or d for d in search.document_ids))
        return search.model_copy(update={"document_ids": originals})

    def retrieve(self, query: str, top_k: int | None = None, search: SearchFilter | None = None) -> list[Passage]:
        """The best passages for the query."""
        query = self.check_query(query)
        top_k = top_k or self.settings.top_k
        if not 1 <= top_k <= 50:
            raise InvalidInputError("top_k must be between 1 and 50")
        return self.retriever.retrieve(query, top_k, self.check_filter(search))

    # --- answering -----------------------------------------------------------------------
    def ask(
        self, question: str, top_k: int | None = None, search: SearchFilter | None = None,
        options: GenerationOptions | None = None, debug: bool = False,
    ) -> Answer:
        *_, answer = self.ask_stream(question, top_k, search, options, debug)
        return answer

    def ask_stream(
        self, question: str, top_k: int | None = None, search: SearchFilter | None = None,
        options: GenerationOptions | None = None, debug: bool = False,
    ) -> Iterator[AnswerEvent]:
        """Like ask(), as verified pieces of text and then the Answer (rag.answer.pipeline)."""
        question = self.check_query(question)
        if top_k is not None and not 1 <= top_k <= 50:
            raise InvalidInputError("top_k must be between 1 and 50")
        return self.pipeline.stream(question, top_k, self.check_filter(search), options, debug)

    def _retrieve_checked(self, query: str, top_k: int, search: SearchFilter | None) -> list[Passage]:
        """Retrieval for the pipeline: the query and filter were checked with the question."""
        return self.retriever.retrieve(query, top_k, search)

    def chat(
        self, messages: list[ChatMessage], options: GenerationOptions | None = None,
        top_k: int | None = None, search: SearchFilter | None = None,
    ) -> tuple[str, Iterator[AnswerEvent]]:
        """The standalone question a conversation asks, and its streamed answer."""
        question = standalone_question(self.llm, check_messages(messages))
        return question, self.ask_stream(question, top_k, search, options)

    def health(self) -> Health:
        try:
            self.store.ping()
            documents, chunks = self.store.counts()
            aliases = self.store.alias_count()
        except RagError as exc:
            return Health(
                status="degraded", store="unreachable", documents=None, chunks=None,
                embedding_model=MODEL_NAME, llm=self.llm.model, llm_status=self.llm.status(),
                llm_runtime=self.llm.runtime(),
                detail=exc.message, **self._boundary(),
            )
        return Health(
            status="ok", store="ok", documents=documents, chunks=chunks, aliases=aliases,
            embedding_model=MODEL_NAME, llm=self.llm.model, llm_status=self.llm.status(),
            llm_runtime=self.llm.runtime(), **self._boundary(),
        )

    def _boundary(self) -> dict:
        s = self.settings
        return {
            "auth": "on" if s.auth_enabled else "off",
            "limits": Limits(
                max_request_bytes=s.max_request_bytes, max_document_bytes=s.max_document_bytes,
                max_query_chars=s.max_query_chars, questions_per_minute=s.questions_per_minute,
                llm_concurrency=self.llm.concurrency,
            ),
        }
