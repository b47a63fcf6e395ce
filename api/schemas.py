"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from rag.models import DocumentInfo, Passage

MetadataValue = str | int | float | bool


class DocumentCreate(BaseModel):
    id: str | None = Field(None, description="Document id; derived from the text's hash if absent.")
    title: str | None = Field(None, max_length=500)
    text: str = Field(description="The article, plain text or Markdown.")
    metadata: dict[str, MetadataValue] | None = None


class DocumentList(BaseModel):
    documents: list[DocumentInfo]


class Deleted(BaseModel):
    id: str
    deleted: bool = True


class RetrieveRequest(BaseModel):
    query: str = Field(min_length=1, description="What to search for.")
    top_k: int | None = Field(None, ge=1, le=50)
    document_ids: list[str] | None = Field(None, description="Search only these documents.")


class RetrieveResponse(BaseModel):
    query: str
    passages: list[Passage]


class ErrorBody(BaseModel):
    detail: str


class AskRequest(BaseModel):
    question: str = Field(min_length=1, description="A question about the ingested articles.")
    top_k: int | None = Field(None, ge=1, le=50, description="Passages to give the model.")
    document_ids: list[str] | None = Field(None, description="Answer only from these documents.")
