"""Routes: parse the request, call the service, return a schema. Nothing else."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from api.auth import CallerDep, count_question
from api.question_queue import question_queue
from api.schemas import (
    Access,
    AskRequest,
    Deleted,
    DocumentCreate,
    DocumentList,
    ErrorBody,
    RetrieveRequest,
    RetrieveResponse,
)
from rag.errors import InvalidInputError
from rag.loading import parse_article, slug
from rag.models import Answer, ArticleInput, Document, Health, IngestResult
from rag.service import RagService


async def get_service(request: Request) -> RagService:
    # async: FastAPI runs a sync dependency in its thread pool, a thread hop per request.
    return request.app.state.service


ServiceDep = Annotated[RagService, Depends(get_service)]
# Every status a route of the API can answer with, declared in the OpenAPI schema (a bounded
# schemathesis run, tests/test_schema_fuzz.py, holds the routes to it).
ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 415, 422, 503)}
QUESTION_ERRORS = {
    429: {"model": ErrorBody, "description": "Over RAG_QUESTIONS_PER_MINUTE (Retry-After)"},
    503: {"model": ErrorBody, "description": "The LLM or the store is unreachable, or the question queue "
          "is full or was waited on too long (Retry-After)"},
}

router = APIRouter(responses=ERRORS)
# Open even when the API asks for a key; without keys, a foreign Host is 403.
health_router = APIRouter(responses={403: {"model": ErrorBody}})

_UPLOAD_DOC = {
    "requestBody": {
        "content": {
            "application/json": {"schema": DocumentCreate.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                    },
                }
            },
        },
        "required": True,
    }
}


@health_router.get("/healthz", tags=["service"])
def healthz(service: ServiceDep) -> Health:
    return service.health()


@router.get("/v1/access", tags=["service"])
async def access(caller: CallerDep, service: ServiceDep) -> Access:
    """What the key sent (or, with authentication off, anyone) may do."""
    return Access(auth="on" if service.settings.auth_enabled else "off", can_write=caller.can_write)


@router.post(
    "/v1/documents", tags=["documents"], status_code=status.HTTP_201_CREATED,
    openapi_extra=_UPLOAD_DOC,
    responses={200: {"model": IngestResult, "description": "Already stored: updated, unchanged, or kept as an alias"}},
)
async def create_document(request: Request, response: Response, service: ServiceDep) -> IngestResult:
    """Ingest an article: a JSON body, or a multipart upload with a `file` field."""
    article = await _read_article(request, service.settings.max_document_bytes)
    result = await run_in_threadpool(service.ingest, article)
    if result.status != "created":
        response.status_code = status.HTTP_200_OK
    return result


async def _read_article(request: Request, max_bytes: int) -> ArticleInput:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInputError("multipart upload needs a 'file' field")
        # One byte over the limit is enough to refuse, without reading a huge upload whole.
        data = await upload.read(max_bytes + 1)
        name = (upload.filename or "upload").replace("\\", "/").rsplit("/", 1)[-1]
        article = parse_article(data, name, max_bytes)
        # A name that leaves no id ("...txt", "日本.txt"): the id is derived from the text, as for
        # a JSON body without one.
        named = slug(name.rsplit(".", 1)[0], empty="")
        return ArticleInput(
            text=article.text,
            document_id=str(form.get("id") or "") or named or None,
            title=str(form.get("title") or "") or article.title,
            metadata=article.metadata,
        )
    try:
        body = DocumentCreate.model_validate_json(await request.body())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInputError(f"invalid document body: {where}: {first['msg']}") from None
    return ArticleInput(text=body.text, document_id=body.id, title=body.title, metadata=body.metadata)


@router.get("/v1/documents", tags=["documents"])
def list_documents(service: ServiceDep) -> DocumentList:
    return DocumentList(documents=service.list_documents())


@router.get("/v1/documents/{document_id:path}", tags=["documents"])
def get_document(document_id: str, service: ServiceDep) -> Document:
    return service.get_document(document_id)


@router.delete("/v1/documents/{document_id:path}", tags=["documents"])
def delete_document(document_id: str, service: ServiceDep) -> Deleted:
    service.delete_document(document_id)
    return Deleted(id=document_id)


@router.post("/v1/retrieve", tags=["retrieval"])
def retrieve(body: RetrieveRequest, service: ServiceDep) -> RetrieveResponse:
    passages = service.retrieve(body.query, body.top_k, body.search_filter())
    return RetrieveResponse(query=body.query, passages=passages)


@router.post("/v1/ask", tags=["answers"], dependencies=[Depends(count_question)], responses=QUESTION_ERRORS)
async def ask(body: AskRequest, request: Request, service: ServiceDep) -> Answer:
    """Answer each part of the question from the retrieved passages with verified citations, or
    say which part the articles do not answer (``parts``); ``debug`` adds the trace. Questions
    wait their turn at the model in a bounded queue; a full one is 503 with Retry-After."""
    search = body.search_filter()
    with await question_queue(request).enter(request) as turn:
        return await turn.run(service.ask, body.question, body.top_k, search, None, body.debug)
