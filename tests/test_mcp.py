"""The MCP server through the official SDK's own client, over both transports: `rag mcp` over
stdio (a real subprocess, its LLM the fake served on loopback) and streamable HTTP at /mcp of a
real uvicorn serving create_app, behind the API's keys."""

import json
import os
import subprocess
import sys
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from chromadb.api.client import SharedSystemClient
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from api.app import create_app
from tests.conftest import DOC_A, DOC_B, REPO, SEEDS, build_answering, free_port, serving, stop, wait_until_ok
from tests.fake_llm import NOT_FOUND_REPLY, asgi_app, cite

TOOLS = {"search", "ask", "get_document", "list_documents"}
SURRENDER_QUOTE = "asserting that 430 Ukrainian soldiers had surrendered"
SURRENDER_Q = "How many Ukrainian soldiers surrendered?"


def structured(result) -> dict:
    assert not result.is_error, result.content
    # The same JSON as text, for clients that read only the content.
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


async def exercise(session: ClientSession, fake_llm) -> None:
    """What every transport must give: the four tools, and each one working."""
    await session.initialize()
    tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == TOOLS
    assert all(tool.annotations.read_only_hint for tool in tools.values())
    assert tools["ask"].annotations.idempotent_hint is False and tools["search"].annotations.idempotent_hint
    assert {"query", "top_k", "document_ids", "where", "date_from", "date_to"} <= set(
        tools["search"].input_schema["properties"])

    fake_llm.script(cite(SURRENDER_QUOTE, "430 Ukrainian soldiers surrendered."))
    answer = structured(await session.call_tool("ask", {"question": SURRENDER_Q}))
    assert answer["answer"] == "430 Ukrainian soldiers surrendered [1]." and answer["abstained"] is False
    citation = answer["citations"][0]
    assert citation["document_id"] == DOC_A and "430 Ukrainian soldiers" in citation["quote"]
    assert "passages" not in answer and {"steps", "timings", "model"} <= set(answer)

    found = structured(await session.call_tool("search", {"query": "eight Russian assaults", "top_k": 3}))
    assert len(found["passages"]) == 3 and found["passages"][0]["document_id"] == DOC_B
    only_a = structured(await session.call_tool("search", {"query": "assaults", "document_ids": [DOC_A]}))
    assert {p["document_id"] for p in only_a["passages"]} == {DOC_A}

    document = structured(await session.call_tool("get_document", {"document_id": DOC_A}))
    assert document["text"][citation["start"]:citation["end"]] == citation["quote"]
    listed = structured(await session.call_tool("list_documents", {}))
    assert {d["id"] for d in listed["documents"]} == {DOC_A, DOC_B}

    missing = await session.call_tool("get_document", {"document_id": "no-such-article"})
    assert missing.is_error and "no document with id 'no-such-article'" in missing.content[0].text


@pytest.fixture
def fake_llm_url(fake_llm):
    """The fake LLM served over real HTTP on loopback, for the `rag mcp` subprocess."""
    with serving(asgi_app(fake_llm)) as url:
        yield f"{url}/v1"


def test_rag_mcp_over_stdio(tmp_path, fake_llm, fake_llm_url):
    env = {"RAG_DATA_DIR": str(tmp_path / "data"), "RAG_SEED_DIR": str(SEEDS), "RAG_LLM_BASE_URL": fake_llm_url,
           "RAG_LLM_MODEL": "fake-model", "RAG_LLM_MAX_RETRIES": "0", "PYTHONPATH": str(REPO),
           "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "rag.cli", "mcp"], env=env, cwd=str(REPO))

    async def run() -> None:
        with anyio.fail_after(180):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
                await exercise(session, fake_llm)

    anyio.run(run)
    assert fake_llm.requests and fake_llm.requests[0]["model"] == "fake-model"


@asynccontextmanager
async def http_session(url: str, key: str | None = None):
    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with create_mcp_http_client(headers=headers) as http_client:
        async with streamable_http_client(f"{url}/mcp", http_client=http_client) as (read, write):
            async with ClientSession(read, write) as session:
                yield session


def test_mcp_over_streamable_http_in_the_api(live_server, fake_llm):
    async def run() -> None:
        with anyio.fail_after(120):
            async with http_session(live_server) as session:
                await exercise(session, fake_llm)

    anyio.run(run)


@pytest.fixture
def keyed_server(tmp_path, embedder, fake_llm):
    service = build_answering(tmp_path / "keyed", embedder, fake_llm, api_key="sesame",
                              read_only_api_key="reader")
    with serving(create_app(service)) as url:
        yield url
    service.close()
    SharedSystemClient.clear_system_cache()


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def test_mcp_asks_for_the_api_key(keyed_server, fake_llm):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = httpx.post(f"{keyed_server}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})
        assert refused.status_code == 401 and "key" in refused.json()["detail"]
        assert refused.headers["www-authenticate"].startswith("Bearer")
    accepted = httpx.post(f"{keyed_server}/mcp", json=INITIALIZE,
                          headers={**MCP_HEADERS, "Authorization": "Bearer sesame"})
    assert accepted.status_code == 200 and accepted.json()["result"]["serverInfo"]["name"] == "rag-news"

    async def run() -> None:
        with anyio.fail_after(120):
            async with http_session(keyed_server, "reader") as session:  # the tools only read
                await session.initialize()
                assert {t.name for t in (await session.list_tools()).tools} == TOOLS
                fake_llm.script(NOT_FOUND_REPLY)
                answer = structured(await session.call_tool("ask", {"question": "Who won the 1966 World Cup?"}))
                assert answer["abstained"] is True and answer["citations"] == []

    anyio.run(run)


def test_mcp_questions_count_against_the_key_quota(tmp_path, embedder, fake_llm):
    service = build_answering(tmp_path / "quota", embedder, fake_llm, api_key="sesame,other",
                              questions_per_minute=1)

    async def ask(url: str, key: str):
        async with http_session(url, key) as session:
            await session.initialize()
            return await session.call_tool("ask", {"question": "Who won the 1966 World Cup?"})

    try:
        with serving(create_app(service)) as url:
            fake_llm.script(NOT_FOUND_REPLY, NOT_FOUND_REPLY)
            assert not anyio.run(ask, url, "sesame").is_error
            refused = anyio.run(ask, url, "sesame")
            assert refused.is_error and "too many questions: at most 1 a minute" in refused.content[0].text
            # The same quota as the API's: this key's next /v1/ask is over it too; another key is not.
            over = httpx.post(f"{url}/v1/ask", json={"question": "Who won?"}, headers={"Authorization": "Bearer sesame"})
            assert over.status_code == 429
            assert not anyio.run(ask, url, "other").is_error
    finally:
        service.close()
        SharedSystemClient.clear_system_cache()


def test_rag_serve_serves_mcp_over_the_service_it_builds(tmp_path):
    """The app that builds its own service at startup (`rag serve`) runs the MCP sessions in its
    lifespan and hands the tools that service."""
    port = free_port()
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "data"), "RAG_SEED_DIR": str(SEEDS),
           "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1", "RAG_LLM_MAX_RETRIES": "0", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def run(url: str) -> None:
        with anyio.fail_after(60):
            async with http_session(url) as session:
                await session.initialize()
                listed = structured(await session.call_tool("list_documents", {}))
                assert {d["id"] for d in listed["documents"]} == {DOC_A, DOC_B}
                down = await session.call_tool("ask", {"question": SURRENDER_Q})
                assert down.is_error and "cannot reach the LLM at http://127.0.0.1:9/v1" in down.content[0].text

    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ok(f"{url}/healthz", process, 120)
        anyio.run(run, url)
    finally:
        stop(process)
