"""Typed values passed between layers (and returned by the API as they are)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

MetadataValue = str | int | float | bool


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


class Document(DocumentInfo):
    text: str = Field(description="The canonical text all offsets refer to.")
    chunks: list[Chunk]


class IngestResult(BaseModel):
    document_id: str
    title: str
    status: Literal["created", "updated", "unchanged"]
    chunk_count: int


class Passage(BaseModel):
    """A retrieved chunk with its fused retrieval score (reciprocal rank fusion)."""

    document_id: str
    title: str
    chunk_id: str
    text: str
    start: int
    end: int
    score: float


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    store: Literal["ok", "unreachable"]
    documents: int | None
    chunks: int | None
    embedding_model: str
    llm: str
    llm_status: Literal["ok", "unreachable", "starting", "unknown"] = "unknown"
    detail: str | None = None


class Citation(BaseModel):
    """A verified quote: ``document_text[start:end] == quote``."""

    ref: int = Field(description="The [n] marker in the answer text.")
    document_id: str
    title: str
    chunk_id: str
    quote: str
    start: int
    end: int


class Timings(BaseModel):
    retrieve_ms: float
    generate_ms: float
    total_ms: float


class Answer(BaseModel):
    answer: str
    abstained: bool
    abstain_reason: str | None = None
    citations: list[Citation]
    passages: list[Passage]
    model: str
    timings: Timings
