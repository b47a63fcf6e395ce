"""An ingest run: articles read, checked, looked up in the store in batches, then embedded and
written in groups; duplicates kept as aliases; one bad file reported, never stopping the others.
Design notes: docs/ingest.md."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from rag.config import Settings
from rag.documents import Chunker, CleanText, clean_text, default_title, validate_document_id
from rag.embedding import MiniLMEmbedding
from rag.errors import DocumentTooLargeError, InvalidInputError, RagError
from rag.loading import ArticleFile, read_article
from rag.models import ArticleInput, Chunk, DocumentInfo, IngestFailure, IngestReport, IngestResult
from rag.store import ChromaStore, DocumentWrite

log = logging.getLogger(__name__)

# Files read and looked up in the store together (one registry request per batch, not per file).
READ_BATCH_FILES = 64


@dataclass(frozen=True)
class _Loaded:
    """An article read, cleaned and named."""

    article: ArticleInput
    cleaned: CleanText
    document_id: str


@dataclass(frozen=True)
class _PreparedArticle:
    """An article checked and chunked, not yet written; ``info`` is None when unchanged.
    ``releases`` names a stored original whose text this write replaces: its aliases must then
    hold the old text themselves."""

    result: IngestResult
    info: DocumentInfo | None
    text: str
    chunks: list[Chunk]
    releases: str | None = None


ArticleSource = tuple[str, Callable[[], ArticleInput]]  # (label for reports, reader)
OnEach = Callable[[IngestResult | IngestFailure], None]


class Ingester:
    """Writes articles into the store: the only writer of documents and their chunks."""

    def __init__(self, settings: Settings, store: ChromaStore, embedder: MiniLMEmbedding, chunker: Chunker) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.chunker = chunker

    def ingest(self, article: ArticleInput) -> IngestResult:
        return self.ingest_many([article])[0]

    def ingest_many(self, articles: list[ArticleInput], on_each: OnEach | None = None) -> list[IngestResult]:
        """Ingest articles given whole (request bodies): all are checked before any is written,
        and the first that cannot be used is raised, naming it when there are several."""
        several = len(articles) > 1
        sources = [(article.document_id or "", lambda a=article: a) for article in articles]
        return self._ingest(sources, on_each, strict=True, several=several).results

    def ingest_files(self, files: list[ArticleFile], on_each: OnEach | None = None) -> IngestReport:
        limit = self.settings.max_document_bytes
        sources = [(file.label, lambda f=file: read_article(f, limit)) for file in files]
        return self._ingest(sources, on_each, strict=False)

    def _ingest(
        self, sources: list[ArticleSource], on_each: OnEach | None, strict: bool, several: bool = True,
    ) -> IngestReport:
        """Read, check and look up articles in batches, then embed and write their chunks in
        groups that span articles, because the embedding model and Chroma both pay per call
        rather than per chunk. An article whose canonical text is already stored (or met earlier
        in this run) under another id is kept as an alias of it, not a second copy."""
        report = IngestReport(results=[])
        originals: dict[str, str] = {}  # sha256 -> id holding that text, in this run
        used_ids: dict[str, str] = {}  # id -> label of the article that took it, in this run
        batch_size = max(1, len(sources)) if strict else READ_BATCH_FILES
        group: list[_PreparedArticle] = []
        for at in range(0, len(sources), batch_size):
            loaded = []
            for label, read in sources[at : at + batch_size]:
                try:
                    item = self._load(read)
                except (RagError, OSError) as exc:
                    reason = exc.message if isinstance(exc, RagError) else (exc.strerror or str(exc))
                    if strict:
                        if several and label and isinstance(exc, RagError):
                            raise type(exc)(f"{label}: {reason}") from None
                        raise
                    self._report_failure(report, on_each, label, reason)
                    continue
                except Exception as exc:  # a parser's own bug must not stop the other files
                    if strict:
                        raise
                    log.exception("reading %s failed", label)
                    self._report_failure(report, on_each, label, f"unexpected {type(exc).__name__}: {exc}")
                    continue
                if item.document_id in used_ids:
                    message = f"two articles have the id {item.document_id!r}"
                    if strict:
                        raise InvalidInputError(message)
                    self._report_failure(report, on_each, label, f"{message}: {used_ids[item.document_id]} and {label}")
                    continue
                used_ids[item.document_id] = label
                loaded.append(item)
            for item in self._prepare_batch(loaded, originals):
                group.append(item)
                if sum(len(g.chunks) for g in group) >= self.settings.ingest_group_chunks:
                    report.results += self.write_group(group, on_each)
                    group = []
        report.results += self.write_group(group, on_each)
        return report

    @staticmethod
    def _report_failure(report: IngestReport, on_each: OnEach | None, label: str, reason: str) -> None:
        failure = IngestFailure(file=label, reason=reason)
        report.failures.append(failure)
        if on_each:
            on_each(failure)

    def _load(self, read: Callable[[], ArticleInput]) -> _Loaded:
        article = read()
        size = len(article.text.encode("utf-8"))
        if size > self.settings.max_document_bytes:
            raise DocumentTooLargeError(
                f"article is {size:,} bytes; the limit is {self.settings.max_document_bytes:,} "
                "(RAG_MAX_DOCUMENT_BYTES)"
            )
        for key, value in (article.metadata or {}).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidInputError(f"metadata {key!r} is {value}: only finite numbers can be stored")
        cleaned = clean_text(article.text)
        if not cleaned.text:
            raise InvalidInputError("article text is empty once whitespace and page debris are removed")
        document_id = validate_document_id(article.document_id or f"doc-{cleaned.sha256[:16]}")
        return _Loaded(article, cleaned, document_id)

    def _prepare_batch(self, loaded: list[_Loaded], originals: dict[str, str]) -> list[_PreparedArticle]:
        existing = self.store.document_infos([item.document_id for item in loaded])
        stored = self.store.originals_by_sha256([item.cleaned.sha256 for item in loaded])
        return [self._prepare(item, existing.get(item.document_id), stored, originals) for item in loaded]

    def _prepare(
        self, item: _Loaded, existing: DocumentInfo | None, stored: dict[str, str], originals: dict[str, str],
    ) -> _PreparedArticle:
        cleaned, document_id = item.cleaned, item.document_id
        title = (item.article.title or "").replace("\x00", "").strip() or default_title(cleaned.text)
        metadata = dict(item.article.metadata or {})
        if existing and (existing.sha256, existing.title, existing.metadata) == (cleaned.sha256, title, metadata):
            if not existing.alias_of:
                originals.setdefault(cleaned.sha256, document_id)
            unchanged = IngestResult(
                document_id=document_id, title=title, status="unchanged",
                chunk_count=existing.chunk_count, duplicate_of=existing.alias_of,
            )
            return _PreparedArticle(unchanged, None, cleaned.text, [])
        original = originals.get(cleaned.sha256) or stored.get(cleaned.sha256)
        releases = document_id if existing and not existing.alias_of and existing.sha256 != cleaned.sha256 else None
        now = datetime.now(timezone.utc)
        if original and original != document_id:
            info = DocumentInfo(id=document_id, title=title, chunk_count=0, sha256=cleaned.sha256,
                                ingested_at=now, metadata=metadata, alias_of=original)
            result = IngestResult(document_id=document_id, title=title, status="duplicate",
                                  chunk_count=0, duplicate_of=original)
            return _PreparedArticle(result, info, "", [], releases)
        originals[cleaned.sha256] = document_id
        chunks = self.chunker.chunk(document_id, cleaned.text)
        info = DocumentInfo(id=document_id, title=title, chunk_count=len(chunks), sha256=cleaned.sha256,
                            ingested_at=now, metadata=metadata)
        result = IngestResult(document_id=document_id, title=title,
                              status="updated" if existing else "created", chunk_count=len(chunks))
        return _PreparedArticle(result, info, cleaned.text, chunks, releases)

    def released_aliases(self, original: str) -> list[_PreparedArticle]:
        """The writes that let an original's aliases stand without it (it is deleted or its text
        changes): the first alias takes the old text and chunks, the others point at it."""
        aliases = self.store.aliases_of(original)
        text = self.store.document_text(original) if aliases else None
        if not aliases or text is None:
            return []
        infos = self.store.document_infos(aliases)
        heir, *rest = [infos[a] for a in aliases if a in infos]
        chunks = self.chunker.chunk(heir.id, text)
        writes = [_PreparedArticle(
            IngestResult(document_id=heir.id, title=heir.title, status="updated", chunk_count=len(chunks)),
            heir.model_copy(update={"alias_of": None, "chunk_count": len(chunks)}), text, chunks,
        )]
        for alias in rest:
            writes.append(_PreparedArticle(
                IngestResult(document_id=alias.id, title=alias.title, status="duplicate", chunk_count=0,
                             duplicate_of=heir.id),
                alias.model_copy(update={"alias_of": heir.id}), "", [],
            ))
        return writes

    def write_group(self, group: list[_PreparedArticle], on_each: OnEach | None) -> list[IngestResult]:
        released = [w for item in group if item.releases for w in self.released_aliases(item.releases)]
        writes = [item for item in [*group, *released] if item.info is not None]
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
