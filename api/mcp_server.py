"""The archive as an MCP server (Model Context Protocol), so assistants such as Claude Desktop,
IDE agents and Open WebUI can search it and ask it: four read-only tools over a RagService.
`rag mcp` serves them over stdio; create_app mounts them over streamable HTTP at /mcp, behind
the API's keys. Built with the official SDK's MCPServer (FastMCP in the SDK's 1.x)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import Field

from api.schemas import DocumentList, FilterFields, RetrieveResponse
from rag import __version__
from rag.errors import RagError
from rag.models import Document, MetadataValue
from rag.service import RagService

INSTRUCTIONS = (
    "A news archive. `search` finds passages; `ask` answers a question from the articles with "
    "verified citations (each quote is the article's text between its start and end offsets) or "
    "abstains when the articles do not say; `get_document` reads an article; `list_documents` "
    "lists them. Cite the archive's quotes and document ids rather than your own knowledge."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
# An answer is the model's: asked twice, the same question may be answered in other words.
READ_ONLY_GENERATED = READ_ONLY.model_copy(update={"idempotent_hint": False})

# The filters /v1/retrieve and /v1/ask take, as tool parameters.
DocumentIds = Annotated[list[str] | None, Field(description="Only these documents (or their aliases).")]
Where = Annotated[
    dict[str, MetadataValue] | None,
    Field(description='Metadata that must be equal, e.g. {"section": "business", "source": "BBC"}.'),
]
DateFrom = Annotated[date | None, Field(description="Published on or after this day (YYYY-MM-DD).")]
DateTo = Annotated[date | None, Field(description="Published on or before this day (YYYY-MM-DD).")]
TopK = Annotated[int | None, Field(ge=1, le=50, description="How many passages (default: the service's).")]


def _rag_errors_as_tool_errors(tool: Callable) -> Callable:
    """A RagError (not found, invalid input, the LLM down) reaches the client as the tool's
    error with its one-line message, as the API's handler and the CLI show it."""

    @functools.wraps(tool)
    def reported(*args, **kwargs):
        try:
            return tool(*args, **kwargs)
        except RagError as exc:
            raise ToolError(exc.message) from None

    return reported


def build_mcp_server(
    service: Callable[[], RagService], count_question: Callable[[], None] = lambda: None,
    on_start: Callable[[], None] | None = None,
) -> MCPServer:
    """The MCP server over the service ``service()`` returns (called at each tool call: the
    app builds its service at startup, after the server exists). ``count_question`` runs
    before each `ask` and may refuse it with a RagError (the API's per-key quota). ``on_start``
    runs (in a thread) once the server runs: over stdio, once stdin and stdout are the
    protocol's alone, so nothing it starts can read or write them."""

    @asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[None]:
        if on_start is not None:
            await anyio.to_thread.run_sync(on_start)
        yield

    server = MCPServer(name="rag-news", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan)

    def search_filter(document_ids, where, date_from, date_to):
        return FilterFields(document_ids=document_ids, where=where, date_from=date_from,
                            date_to=date_to).search_filter()

    @server.tool(annotations=READ_ONLY)
    @_rag_errors_as_tool_errors
    def search(
        query: Annotated[str, Field(min_length=1, description="What to search for.")],
        top_k: TopK = None, document_ids: DocumentIds = None, where: Where = None,
        date_from: DateFrom = None, date_to: DateTo = None,
    ) -> RetrieveResponse:
        """Passages of the news articles that best match the query (hybrid keyword and
        semantic search): each with its document id, title, start/end offsets in the article's
        text, the text, a score and the article's metadata."""
        passages = service().retrieve(query, top_k, search_filter(document_ids, where, date_from, date_to))
        return RetrieveResponse(query=query, passages=passages)

    @server.tool(annotations=READ_ONLY_GENERATED)
    @_rag_errors_as_tool_errors
    def ask(
        question: Annotated[str, Field(min_length=1, description="A question about the news articles.")],
        top_k: TopK = None, document_ids: DocumentIds = None, where: Where = None,
        date_from: DateFrom = None, date_to: DateTo = None,
        include_passages: Annotated[bool, Field(description="Also return the passages the model was shown.")] = False,
    ) -> dict[str, Any]:
        """Answer a question from the articles, with citations that were checked: each citation's
        quote is the article's text between its start and end offsets ([n] in the answer marks
        it). When the articles do not say, the answer abstains and gives the reason."""
        count_question()
        answer = service().ask(question, top_k, search_filter(document_ids, where, date_from, date_to))
        # Every field of the Answer, whatever it carries (per-part status included), so that
        # what the service adds reaches assistants too; the passages only when asked for.
        return answer.model_dump(mode="json", exclude=None if include_passages else {"passages"})

    @server.tool(annotations=READ_ONLY)
    @_rag_errors_as_tool_errors
    def get_document(
        document_id: Annotated[str, Field(min_length=1, description="The document's id (or an alias).")],
    ) -> Document:
        """One article: its canonical text (which every offset refers to), title, metadata and
        chunks."""
        return service().get_document(document_id)

    @server.tool(annotations=READ_ONLY)
    @_rag_errors_as_tool_errors
    def list_documents() -> DocumentList:
        """Every article in the archive: id, title, metadata (section, source, date...) and
        when it was ingested."""
        return DocumentList(documents=service().list_documents())

    return server


def streamable_http_endpoint(server: MCPServer, loopback: bool) -> StreamableHTTPASGIApp:
    """The server's streamable HTTP endpoint, an ASGI app for the API to route at /mcp (a route,
    not a mount: a mount would redirect /mcp to /mcp/, which MCP clients do not follow). Its
    session manager must run inside the API's lifespan: ``server.session_manager.run()``.
    Stateless, with JSON replies: no session to keep between requests. ``loopback``: the API
    listens on loopback only, so Host and Origin headers must name localhost (the SDK's guard
    against DNS rebinding); elsewhere the API key is the boundary, as for the rest of the API."""
    security = None if loopback else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    server.streamable_http_app(stateless_http=True, json_response=True, transport_security=security)
    return StreamableHTTPASGIApp(server.session_manager)
