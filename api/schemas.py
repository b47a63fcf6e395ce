"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from rag.errors import InvalidInputError
from rag.models import Citation, DocumentInfo, MetadataValue, PartAnswer, Passage, SearchFilter


class FilterFields(BaseModel):
    """Which articles a request may draw on; every field optional, all must hold."""

    document_ids: list[str] | None = Field(None, description="Only these documents (or their aliases).")
    where: dict[str, MetadataValue] | None = Field(
        None, description="Metadata that must be equal, e.g. {\"section\": \"business\", \"source\": \"BBC\"}."
    )
    date_from: date | None = Field(None, description="Published on or after this day (articles with a date only).")
    date_to: date | None = Field(None, description="Published on or before this day.")

    def search_filter(self) -> SearchFilter | None:
        try:
            search = SearchFilter(document_ids=self.document_ids, where=self.where or {},
                                  date_from=self.date_from, date_to=self.date_to)
        except ValidationError as exc:
            raise InvalidInputError(f"invalid filter: {exc.errors()[0]['msg']}") from None
        return None if search.is_empty else search


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


class RetrieveRequest(FilterFields):
    query: str = Field(min_length=1, description="What to search for.")
    top_k: int | None = Field(None, ge=1, le=50)


class RetrieveResponse(BaseModel):
    query: str
    passages: list[Passage]


class Access(BaseModel):
    """What the caller may do, so that a client (the web page) offers only that."""

    auth: Literal["on", "off"]
    can_write: bool = Field(description="May ingest and delete documents (false for a read-only key).")


class ErrorBody(BaseModel):
    detail: str


class AskRequest(FilterFields):
    question: str = Field(min_length=1, description="A question about the ingested articles.")
    top_k: int | None = Field(None, ge=1, le=50, description="Passages to give the model.")
    debug: bool = Field(False, description="Add the answer's trace: what the model was shown, "
                        "what it wrote, each check's verdict and the steps taken.")


# --- OpenAI-compatible chat ------------------------------------------------------------------
class ContentPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessageIn(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart] = Field(description="Text, or a list of text parts.")

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = Field(False, description="A last chunk with `usage` (and no choices).")


class ChatCompletionRequest(FilterFields):
    model: str | None = Field(
        None, description="`rag-news`; `rag-news+sources` also appends a \"Sources:\" block of the "
        "citations to the answer text. Any other name is accepted and answered as `rag-news`.",
    )
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    top_k: int | None = Field(None, ge=1, le=50, description="Passages to give the model.")


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatCompletionMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatUsage(BaseModel):
    """Tokens the model read and wrote for this answer, over all its calls (a follow-up's
    rewrite, the answer, a repair): as the model server reported them, or estimated at four
    characters a token where it reported none."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """The standard shape, plus the answer's grounding."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChatChoice]
    usage: ChatUsage
    citations: list[Citation]
    abstained: bool
    abstain_reason: str | None = None
    parts: list[PartAnswer] = Field([], description="Each part of the question, answered or not, and why not.")
    rewritten_question: str = Field(description="The standalone question that was answered.")
    passages: list[Passage]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "rag-news"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
