"""Typed values passed between layers (and returned by the API as they are)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, FiniteFloat, model_serializer, model_validator

# NaN and infinities are refused: JSON has no way to write them back (they were listed as null).
MetadataValue = str | int | FiniteFloat | bool


@dataclass(frozen=True)
class ArticleInput:
    """An article as it arrives (a request body, an upload, a file), before cleaning."""

    text: str
    document_id: str | None = None
    title: str | None = None
    metadata: dict[str, MetadataValue] | None = None


class Chunk(BaseModel):
    """A span of a document's canonical text: ``document_text[start:end] == text``."""

    chunk_id: str
    document_id: str
    index: int
    start: int
    end: int
    text: str


class DocumentInfo(BaseModel):
    id: str
    title: str
    chunk_count: int
    sha256: str = Field(description="sha256 of the canonical (cleaned) text.")
    ingested_at: datetime
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    alias_of: str | None = Field(
        None, description="Set when the same text is stored under this id: the article is kept "
        "once, and this id answers with that document's text and chunks."
    )


class Document(DocumentInfo):
    text: str = Field(description="The canonical text all offsets refer to.")
    chunks: list[Chunk]
    aliases: list[str] = Field(default_factory=list, description="Ids of articles with the same text.")


class IngestResult(BaseModel):
    document_id: str
    title: str
    status: Literal["created", "updated", "unchanged", "duplicate"]
    chunk_count: int
    duplicate_of: str | None = Field(None, description="The stored article with the same text.")


class IngestFailure(BaseModel):
    """A file that could not be ingested, and why; the others are ingested all the same."""

    file: str
    reason: str


class IngestReport(BaseModel):
    results: list[IngestResult]
    failures: list[IngestFailure] = Field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(result.status == status for result in self.results)


class SearchFilter(BaseModel):
    """Which articles a search may return: some ids, metadata equal to given values (section,
    source, ...), a publication date range (articles without a date are then left out)."""

    document_ids: list[str] | None = None
    where: dict[str, MetadataValue] = Field(default_factory=dict)
    date_from: date | None = None
    date_to: date | None = None

    @model_validator(mode="after")
    def _check(self) -> SearchFilter:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        texts = [*(self.document_ids or []), *self.where, *(v for v in self.where.values() if isinstance(v, str))]
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate ("\ud800"): no store can hold or match it
                raise ValueError(f"{text!r} is not valid Unicode text") from None
        return self

    @property
    def is_empty(self) -> bool:
        return self.document_ids is None and not self.where and not self.date_from and not self.date_to


class ArticleSpan(BaseModel):
    """A span of an article's canonical text, with what a reader needs to find and trust it."""

    document_id: str
    title: str
    chunk_id: str
    start: int
    end: int
    metadata: dict[str, MetadataValue] = Field(
        default_factory=dict, description="The article's metadata (section, source, date, url ...)."
    )


class Passage(ArticleSpan):
    """A retrieved chunk with its fused retrieval score (reciprocal rank fusion), or a chunk read
    beside one (``context_of``)."""

    text: str
    score: float
    context_of: str | None = Field(
        None, description="Not retrieved itself: the retrieved chunk it neighbours in its article, "
        "read with it for an answer (its score is 0).",
    )

    @model_serializer(mode="wrap")
    def _retrieved_without_context_of(self, handler):
        # A retrieved passage is written as before: the field is there only on a neighbour.
        data = handler(self)
        if self.context_of is None and isinstance(data, dict):
            data.pop("context_of", None)
        return data


class Limits(BaseModel):
    """What the service accepts, as configured."""

    max_request_bytes: int
    max_document_bytes: int
    max_query_chars: int
    questions_per_minute: int = Field(description="Per key (or client address); 0: no limit.")
    llm_concurrency: int = Field(description="Generations in flight at once; more wait their turn.")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    store: Literal["ok", "unreachable"]
    documents: int | None
    chunks: int | None
    aliases: int | None = Field(None, description="Ids kept as aliases of a document with the same text.")
    embedding_model: str
    llm: str
    llm_status: Literal["ok", "unreachable", "starting", "unknown"] = Field(
        "unknown", description="ok: the embedded model has loaded and read the fixed prompt, so "
        "a first answer costs what later ones do; starting: not yet; unknown: a remote endpoint.",
    )
    llm_runtime: str = Field(
        "", description="What serves the model: the embedded llama.cpp runtime and its build "
        "(chosen by the CPU's flags), or the remote endpoint.",
    )
    auth: Literal["off", "on"] = Field("off", description="Whether the API asks for a key.")
    limits: Limits | None = None
    detail: str | None = None


class Citation(ArticleSpan):
    """A verified quote: ``document_text[start:end] == quote``."""

    ref: int = Field(description="The [n] marker in the answer text.")
    quote: str


class Timings(BaseModel):
    retrieve_ms: float
    generate_ms: float
    total_ms: float


class PartAnswer(BaseModel):
    """One thing the question asks, answered with citations or declared missing."""

    question: str = Field(description="The part as the question asks it.")
    answered: bool
    text: str = Field(description="The part's statement in the answer, with its [n] markers; or "
                      "the statement that the articles do not answer it.")
    refs: list[int] = Field([], description="The citations ([n]) this part's statement rests on.")
    reason: str | None = Field(None, description="Why the part is not answered.")


class TraceStep(BaseModel):
    """One step of the answer pipeline as it ran: what it read or wrote, and its verdict."""

    step: str
    part: int | None = Field(None, description="The question part (0-based) the step worked on.")
    data: dict = {}


class Answer(BaseModel):
    answer: str
    abstained: bool = Field(description="True when no part of the question is answered.")
    abstain_reason: str | None = None
    parts: list[PartAnswer] = Field(
        [], description="Each thing the question asks (one, or two for a question that asks two), "
        "answered or not, and why not: a half answer is never shown as a whole one.",
    )
    # The named steps (RAG_ANSWER__STEPS) whose output the answer shows: reanchor's citations,
    # read_on's second reading.
    steps: list[str] = []
    citations: list[Citation]
    passages: list[Passage]
    model: str
    timings: Timings
    trace: list[TraceStep] | None = Field(
        None, description="With debug: what the model was shown, what it wrote, each check's "
        "verdict and the steps taken.",
    )
