"""The systems an eval runs through: this service in-process, a running server over HTTP. Each
answers questions, retrieves passages and reads a document's canonical text (NotFoundError for
an id it does not hold), so the scorer checks quotes against the text the system serves."""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import httpx

from rag.errors import NotFoundError, ServiceUnavailableError
from rag.models import Answer, Passage
from rag.service import RagService


class EvalBackend(Protocol):
    name: str

    def ask(self, question: str) -> Answer: ...

    def retrieve(self, question: str, top_k: int) -> list[Passage]: ...

    def document_text(self, document_id: str) -> str: ...


class ServiceBackend:
    name = "rag-news"

    def __init__(self, service: RagService) -> None:
        self.service = service

    def ask(self, question: str) -> Answer:
        return self.service.ask(question)

    def retrieve(self, question: str, top_k: int) -> list[Passage]:
        return self.service.retrieve(question, top_k)

    @lru_cache(maxsize=None)
    def document_text(self, document_id: str) -> str:
        return self.service.get_document(document_id).text


class HttpBackend:
    """A running `rag serve`, reached through its public API."""

    def __init__(self, url: str, timeout_s: float = 600.0) -> None:
        self.name = f"rag-news @ {url}"
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s)

    def _post(self, path: str, body: dict) -> dict:
        try:
            response = self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"cannot reach {self._client.base_url}: {exc}") from None
        if response.status_code != 200:
            raise ServiceUnavailableError(f"{path} answered HTTP {response.status_code}: {response.text[:200]}")
        return response.json()

    def ask(self, question: str) -> Answer:
        return Answer.model_validate(self._post("/v1/ask", {"question": question}))

    def retrieve(self, question: str, top_k: int) -> list[Passage]:
        body = self._post("/v1/retrieve", {"query": question, "top_k": top_k})
        return [Passage.model_validate(p) for p in body["passages"]]

    @lru_cache(maxsize=None)
    def document_text(self, document_id: str) -> str:
        try:
            response = self._client.get(f"/v1/documents/{document_id}")
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"cannot reach {self._client.base_url}: {exc}") from None
        if response.status_code == 404:
            raise NotFoundError(f"no document with id {document_id!r}")
        if response.status_code != 200:
            raise ServiceUnavailableError(f"document {document_id} answered HTTP {response.status_code}")
        return response.json()["text"]
