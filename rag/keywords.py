"""The keyword side: BM25 over chunk texts in a tantivy index on disk, written by one process at a
time and read, memory-mapped, by every service process that shares the folder.

Chunks are analysed as bm25s analysed them before (words of two or more characters, lowercased,
English stop words out, Snowball stems) and the stems indexed, space-separated, under tantivy's
whitespace tokenizer, so the terms are today's terms and tantivy's BM25 (Lucene's formula, k1 1.2,
b 0.75) scores them as bm25s's "lucene" method did. A chunk's text, title and metadata are stored
in the index's compressed document store, read from disk for the few winners of a search: no
process holds chunk text in memory, and none rebuilds anything at start.

Writers take tantivy's lock file, which holds across processes: a second writer waits for it (and
says so in the log) rather than failing. Readers see a commit by any process within about half a
second (tantivy watches the index's meta.json), and at once after their own.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import Stemmer
import tantivy
from bm25s.stopwords import STOPWORDS_EN

from rag.errors import StoreUnavailableError
from rag.filters import DATE_KEY, day_number
from rag.models import Chunk, MetadataValue, SearchFilter

log = logging.getLogger(__name__)

Ranking = list[tuple[str, float]]  # (chunk id, score), best first
WORD = re.compile(r"(?u)\b\w\w+\b")  # bm25s's default, scikit-learn's CountVectorizer's
STOP_WORDS = frozenset(STOPWORDS_EN)
SYNCED_FILE = "synced"  # the Chroma revision the index was last known to match
WRITER_HEAP = 64_000_000  # bytes tantivy buffers before it writes a segment
LOCK_POLL_S = 0.1


class KeywordLockBusy(StoreUnavailableError):
    """Another process holds the keyword index's writer lock."""


class Analyzer:
    """The one analysis of chunk texts and queries."""

    def __init__(self) -> None:
        self._stemmer = Stemmer.Stemmer("english")

    def terms(self, text: str) -> list[str]:
        return self._stemmer.stemWords([w for w in WORD.findall(text.lower()) if w not in STOP_WORDS])


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("chunk_id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("document_id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("chunk_index", stored=True, indexed=True)
    builder.add_integer_field("start", stored=True)
    builder.add_integer_field("end", stored=True)
    builder.add_text_field("terms", tokenizer_name="whitespace", index_option="freq")
    builder.add_text_field("facets", tokenizer_name="raw", index_option="basic")  # key=value, for filters
    builder.add_integer_field("day", indexed=True)  # the article's date as YYYYMMDD, for date filters
    builder.add_text_field("text", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("title", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("metadata", stored=True, tokenizer_name="raw", index_option="basic")
    return builder.build()


def facet(key: str, value: MetadataValue) -> str:
    """A metadata pair as one indexed term; numbers compare as numbers (1 == 1.0), as in Python."""
    if isinstance(value, bool):
        shown = f"b:{str(value).lower()}"
    elif isinstance(value, (int, float)):
        shown = f"n:{float(value)!r}"
    else:
        shown = f"s:{value}"
    return f"{key}={shown}"


class KeywordEntry:
    """A chunk as the keyword index stores it, with its article's title and metadata."""

    __slots__ = ("chunk", "title", "metadata")

    def __init__(self, chunk: Chunk, title: str, metadata: dict[str, MetadataValue]) -> None:
        self.chunk, self.title, self.metadata = chunk, title, metadata


class KeywordIndex:
    """A tantivy index in ``folder``: opened (or created) here, searched by any number of
    processes, written through ``writing()`` by one at a time."""

    def __init__(self, folder: Path, lock_wait_s: float = 60.0) -> None:
        self.folder = folder
        self._lock_wait_s = lock_wait_s
        self._analyzer = Analyzer()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._schema = _schema()
            self._index = tantivy.Index(self._schema, path=str(folder), reuse=True)
            self._index.config_reader(reload_policy="commit")
        except (OSError, ValueError) as exc:
            raise StoreUnavailableError(f"cannot open the keyword index in {folder}: {exc}") from exc
        self._in_process = threading.Lock()  # tantivy's lock file refuses a second writer at once

    # --- reads -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._index.searcher().num_docs

    def query_terms(self, query: str) -> list[str]:
        return self._analyzer.terms(query)

    def reload(self) -> None:
        """See every commit made so far, by any process."""
        self._index.reload()

    def search(self, query: str, k: int, search: SearchFilter | None = None) -> Ranking:
        """The k chunks scoring highest by BM25 for the query's terms (a chunk holding none is not
        ranked), among those passing the filter."""
        terms = self.query_terms(query)
        if not terms or k <= 0:
            return []
        # Repeated terms count again, as bm25s counted them.
        wanted = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(self._schema, "terms", t, index_option="freq"))
             for t in terms]
        )
        if search is not None and not _lets_all_through(search):
            if search.document_ids is not None and not search.document_ids:
                return []
            wanted = tantivy.Query.boolean_query([
                (tantivy.Occur.Must, wanted),
                (tantivy.Occur.Must, tantivy.Query.const_score_query(self._filter_query(search), 0.0)),
            ])
        searcher = self._index.searcher()
        hits = searcher.search(wanted, k, count=False).hits
        return [(searcher.doc(address).get_first("chunk_id"), float(score)) for score, address in hits]

    def _filter_query(self, search: SearchFilter) -> tantivy.Query:
        clauses: list[tantivy.Query] = []
        if search.document_ids is not None:
            clauses.append(tantivy.Query.term_set_query(self._schema, "document_id", list(search.document_ids)))
        for key, value in sorted(search.where.items()):
            clauses.append(tantivy.Query.term_query(self._schema, "facets", facet(key, value)))
        if search.date_from or search.date_to:
            clauses.append(tantivy.Query.range_query(
                self._schema, "day", tantivy.FieldType.Integer,
                day_number(search.date_from) if search.date_from else 0,
                day_number(search.date_to) if search.date_to else 99991231,
            ))
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, clause) for clause in clauses])

    def get(self, chunk_id: str) -> KeywordEntry | None:
        return self.get_many([chunk_id]).get(chunk_id)

    def get_many(self, chunk_ids: Iterable[str]) -> dict[str, KeywordEntry]:
        """The entries of these chunk ids that the index holds, by id."""
        ids = list(dict.fromkeys(chunk_ids))
        if not ids:
            return {}
        searcher = self._index.searcher()
        hits = searcher.search(tantivy.Query.term_set_query(self._schema, "chunk_id", ids), len(ids), count=False).hits
        entries = (_entry(searcher.doc(address)) for _, address in hits)
        return {entry.chunk.chunk_id: entry for entry in entries}

    def at(self, document_id: str, index: int) -> KeywordEntry | None:
        """The document's chunk at this position, if the index holds it."""
        searcher = self._index.searcher()
        query = tantivy.Query.boolean_query([
            (tantivy.Occur.Must, tantivy.Query.term_query(self._schema, "document_id", document_id)),
            (tantivy.Occur.Must, tantivy.Query.term_query(self._schema, "chunk_index", index)),
        ])
        hits = searcher.search(query, 1, count=False).hits
        return _entry(searcher.doc(hits[0][1])) if hits else None

    def chunk_ids(self) -> set[str]:
        """Every chunk id held (reads each stored document: for the start-up repair, not queries)."""
        searcher = self._index.searcher()
        total = searcher.num_docs
        if not total:
            return set()
        hits = searcher.search(tantivy.Query.all_query(), total, count=False).hits
        return {searcher.doc(address).get_first("chunk_id") for _, address in hits}

    def synced_revision(self) -> str | None:
        """The store revision the index was last written to match; None while a write is under
        way, or after one that did not finish."""
        try:
            return (self.folder / SYNCED_FILE).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    # --- writes ----------------------------------------------------------------------------
    @contextmanager
    def writing(self, wait: bool = True) -> Iterator[KeywordWriter]:
        """The index's writer, held until the block ends: waits while another process holds it
        (or, with wait=False, raises KeywordLockBusy at once). Changes are committed at the end of
        a block that raises nothing."""
        with self._in_process:
            writer = self._acquire(self._lock_wait_s if wait else 0.0)
            try:
                changes = KeywordWriter(self, writer)
                yield changes
                writer.commit()
                if changes.synced_to is not None:
                    marker = self.folder / (SYNCED_FILE + ".tmp")
                    marker.write_text(changes.synced_to, encoding="utf-8")
                    marker.replace(self.folder / SYNCED_FILE)
            except BaseException:
                writer.rollback()
                raise
            finally:
                writer.wait_merging_threads()  # finishes merges and releases the lock file
                del writer
            self._index.reload()

    def _acquire(self, wait_s: float) -> tantivy.IndexWriter:
        deadline = time.monotonic() + wait_s
        waited = False
        while True:
            try:
                writer = self._index.writer(heap_size=WRITER_HEAP, num_threads=1)
                if waited:
                    log.info("keyword index writer lock in %s acquired", self.folder)
                return writer
            except ValueError as exc:
                if "LockBusy" not in str(exc):
                    raise StoreUnavailableError(f"cannot write the keyword index in {self.folder}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise KeywordLockBusy(
                        f"another process holds the keyword index writer lock in {self.folder} "
                        f"(waited {wait_s:.0f} s); try again"
                    ) from exc
                if not waited:
                    log.warning("another process is writing the keyword index in %s; waiting for its lock", self.folder)
                    waited = True
                time.sleep(LOCK_POLL_S)


class KeywordWriter:
    """Changes to the index while its writer is held (see KeywordIndex.writing)."""

    def __init__(self, index: KeywordIndex, writer: tantivy.IndexWriter) -> None:
        self._index = index
        self._writer = writer
        self.synced_to: str | None = None

    def mark_unsynced(self) -> None:
        """Before a store write: until mark_synced, the index is not trusted at start."""
        (self._index.folder / SYNCED_FILE).unlink(missing_ok=True)

    def mark_synced(self, revision: str) -> None:
        """The index matches this store revision once the block commits: the marker is written
        after the commit, so a crash before it leaves the index untrusted."""
        self.synced_to = revision

    def add(self, entries: Iterable[KeywordEntry]) -> int:
        count = 0
        analyzer = self._index._analyzer
        for entry in entries:
            chunk = entry.chunk
            document = tantivy.Document(
                chunk_id=chunk.chunk_id, document_id=chunk.document_id, chunk_index=chunk.index,
                start=chunk.start, end=chunk.end, terms=" ".join(analyzer.terms(chunk.text)),
                text=chunk.text, title=entry.title, metadata=json.dumps(entry.metadata, ensure_ascii=False),
            )
            for key, value in entry.metadata.items():
                document.add_text("facets", facet(key, value))
            day = day_number(entry.metadata.get(DATE_KEY))
            if day is not None:
                document.add_integer("day", day)
            self._writer.add_document(document)
            count += 1
        return count

    def delete_documents(self, document_ids: Iterable[str]) -> None:
        for document_id in document_ids:
            self._writer.delete_documents_by_term("document_id", document_id)

    def delete_chunks(self, chunk_ids: Iterable[str]) -> None:
        for chunk_id in chunk_ids:
            self._writer.delete_documents_by_term("chunk_id", chunk_id)


def _lets_all_through(search: SearchFilter) -> bool:
    return search.document_ids is None and not search.where and not search.date_from and not search.date_to


def _entry(document: tantivy.Document) -> KeywordEntry:
    chunk = Chunk(
        chunk_id=document.get_first("chunk_id"), document_id=document.get_first("document_id"),
        index=document.get_first("chunk_index"), start=document.get_first("start"),
        end=document.get_first("end"), text=document.get_first("text"),
    )
    return KeywordEntry(chunk, document.get_first("title") or "", json.loads(document.get_first("metadata") or "{}"))
