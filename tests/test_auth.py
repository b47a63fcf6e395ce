"""The trust boundary over the real app: API keys (full and read-only), the question quota,
the request-size cap, CORS, and the warning of `rag serve` on an open address."""

from __future__ import annotations

import os
import subprocess
import sys

import openai
import pytest
from chromadb.api.client import SharedSystemClient
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import QuestionQuota
from rag.cli import cli, exposure_warning, is_loopback
from rag.config import Settings
from tests.conftest import DOC_A, build_answering, serving
from tests.fake_llm import NOT_FOUND_REPLY

FULL, OTHER, READER = "full-key-1", "full-key-2", "reader-key-1"
ARTICLE = "Floods in Valencia.\n\nThe river Turia rose by four metres overnight, officials said."


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def build(tmp_path, embedder, fake_llm):
    """A seeded fake-LLM service with the given settings, closed at the end."""
    built = []

    def make(**overrides):
        svc = build_answering(tmp_path / f"data{len(built)}", embedder, fake_llm, **overrides)
        built.append(svc)
        return svc

    yield make
    for svc in built:
        svc.close()
    SharedSystemClient.clear_system_cache()


@pytest.fixture
def keyed(build):
    return build(api_key=f"{FULL}, {OTHER}", read_only_api_key=READER)


@pytest.fixture
def api(keyed):
    with TestClient(create_app(keyed)) as client:
        yield client


REQUESTS = [
    ("GET", "/v1/documents", None),
    ("POST", "/v1/documents", {"text": ARTICLE}),
    ("GET", f"/v1/documents/{DOC_A}", None),
    ("DELETE", f"/v1/documents/{DOC_A}", None),
    ("POST", "/v1/retrieve", {"query": "soldiers"}),
    ("POST", "/v1/ask", {"question": "How many soldiers surrendered?"}),
    ("POST", "/v1/chat/completions", {"model": "rag-news", "messages": [{"role": "user", "content": "Hi?"}]}),
    ("GET", "/v1/models", None),
]


@pytest.mark.parametrize("method,path,body", REQUESTS, ids=[f"{m} {p}" for m, p, _ in REQUESTS])
def test_every_endpoint_wants_a_key(api, fake_llm, method, path, body):
    for headers in ({}, bearer("wrong-key"), {"Authorization": f"Basic {FULL}"}):
        response = api.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        detail = response.json()["detail"]
        assert isinstance(detail, str) and "API key" in detail
    assert not fake_llm.requests  # refused before anything reached the model
    assert DOC_A in [d["id"] for d in api.get("/v1/documents", headers=bearer(FULL)).json()["documents"]]


def test_health_and_the_page_stay_open(api):
    health = api.get("/healthz")
    assert health.status_code == 200 and health.json()["auth"] == "on"
    assert api.get("/").status_code == 200
    assert api.get("/web/app.js").status_code == 200


def test_each_full_key_works(api, fake_llm):
    for key in (FULL, OTHER):
        assert api.get("/v1/documents", headers=bearer(key)).status_code == 200
        passages = api.post("/v1/retrieve", json={"query": "soldiers"}, headers=bearer(key)).json()["passages"]
        assert passages
        fake_llm.script(NOT_FOUND_REPLY)
        assert api.post("/v1/ask", json={"question": "Who won the cup?"}, headers=bearer(key)).status_code == 200
    created = api.post("/v1/documents", json={"id": "valencia", "text": ARTICLE}, headers=bearer(OTHER))
    assert created.status_code == 201
    assert api.delete("/v1/documents/valencia", headers=bearer(FULL)).status_code == 200


def test_a_read_only_key_reads_but_cannot_write(api, fake_llm):
    reader = bearer(READER)
    assert api.get("/v1/documents", headers=reader).status_code == 200
    assert api.get(f"/v1/documents/{DOC_A}", headers=reader).status_code == 200
    assert api.post("/v1/retrieve", json={"query": "soldiers"}, headers=reader).json()["passages"]
    fake_llm.script(NOT_FOUND_REPLY)
    assert api.post("/v1/ask", json={"question": "Who won the cup?"}, headers=reader).status_code == 200
    for response in (
        api.post("/v1/documents", json={"text": ARTICLE}, headers=reader),
        api.post("/v1/documents", files={"file": ("a.txt", ARTICLE.encode(), "text/plain")}, headers=reader),
        api.delete(f"/v1/documents/{DOC_A}", headers=reader),
    ):
        assert response.status_code == 403, response.text
        assert "read-only" in response.json()["detail"]
    assert len(api.get("/v1/documents", headers=reader).json()["documents"]) == 2


def test_the_openai_client_sends_the_key(keyed):
    with serving(create_app(keyed)) as url:
        models = openai.OpenAI(base_url=f"{url}/v1", api_key=FULL, max_retries=0).models.list()
        assert [m.id for m in models.data] == ["rag-news", "rag-news+sources"]
        with pytest.raises(openai.AuthenticationError) as refused:
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
        assert "invalid API key" in str(refused.value)


def test_rag_chat_with_and_without_the_key(keyed, fake_llm, tmp_path):
    fake_llm.script(NOT_FOUND_REPLY)
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "unused")}
    env.pop("RAG_CLIENT_API_KEY", None)
    command = [sys.executable, "-c", "from rag.cli import main; main()", "chat", "--url"]
    with serving(create_app(keyed)) as url:
        refused = subprocess.run(command + [url], input="Who won the cup?\n", capture_output=True,
                                 text=True, env=env, timeout=120)
        accepted = subprocess.run(command + [url], input="Who won the cup?\n", capture_output=True,
                                  text=True, env={**env, "RAG_CLIENT_API_KEY": READER}, timeout=120)
    assert refused.returncode == 0 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        f"error: {url}/v1/ refused the API key (HTTP 401): pass the server's RAG_API_KEY with --api-key "
        "or RAG_CLIENT_API_KEY"
    ]
    assert accepted.returncode == 0 and accepted.stderr == "", accepted.stderr
    assert accepted.stdout.strip()


def test_no_key_means_no_authentication(build):
    with TestClient(create_app(build())) as client:
        assert client.get("/v1/documents").status_code == 200
        assert client.get("/healthz").json()["auth"] == "off"


def test_oversized_body_is_413_before_it_is_read(build):
    svc = build(max_request_bytes=1000)
    with TestClient(create_app(svc)) as client:
        response = client.post("/v1/documents", json={"text": "word " * 300})
        assert response.status_code == 413 and "RAG_MAX_REQUEST_BYTES" in response.json()["detail"]
        assert client.post("/v1/retrieve", json={"query": "soldiers"}).status_code == 200
    assert len(svc.list_documents()) == 2


def test_questions_over_the_quota_are_429_per_key(build, fake_llm):
    svc = build(api_key=f"{FULL},{OTHER}", questions_per_minute=2)
    with TestClient(create_app(svc)) as client:
        fake_llm.script(NOT_FOUND_REPLY, NOT_FOUND_REPLY, NOT_FOUND_REPLY)
        ask = {"question": "Who won the cup?"}
        assert [client.post("/v1/ask", json=ask, headers=bearer(FULL)).status_code for _ in range(2)] == [200, 200]
        over = client.post("/v1/ask", json=ask, headers=bearer(FULL))
        assert over.status_code == 429 and 1 <= int(over.headers["retry-after"]) <= 60
        assert "at most 2 a minute" in over.json()["detail"]
        chat = {"model": "rag-news", "messages": [{"role": "user", "content": "Who won?"}]}
        assert client.post("/v1/chat/completions", json=chat, headers=bearer(FULL)).status_code == 429
        assert client.post("/v1/retrieve", json={"query": "cup"}, headers=bearer(FULL)).status_code == 200
        assert client.post("/v1/ask", json=ask, headers=bearer(OTHER)).status_code == 200  # its own quota
        limits = client.get("/healthz").json()["limits"]
    assert limits == {"max_request_bytes": 4_000_000, "max_document_bytes": 2_000_000, "max_query_chars": 2000,
                      "questions_per_minute": 2, "llm_concurrency": 8}


def test_the_quota_window_slides():
    now = [0.0]
    quota = QuestionQuota(2, clock=lambda: now[0])
    assert quota.take("a") == quota.take("a") == 0
    assert quota.take("a") == 60 and quota.take("b") == 0
    now[0] = 59.5
    assert quota.take("a") == 0.5
    now[0] = 60.0
    assert quota.take("a") == 0 and quota.take("a") == 0 and quota.take("a") == 60
    assert QuestionQuota(0).take("a") == 0


def test_cors_only_for_the_configured_origins(build):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    svc = build(api_key=FULL, cors_origins="https://news.example, https://other.example")
    with TestClient(create_app(svc)) as client:
        allowed = client.options("/v1/ask", headers={"Origin": "https://news.example", **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://news.example"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        refused = client.options("/v1/ask", headers={"Origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in refused.headers
    with TestClient(create_app(build())) as same_origin_only:
        response = same_origin_only.options("/v1/ask", headers={"Origin": "https://news.example", **preflight})
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_hosts(host):
    assert is_loopback(host)
    assert exposure_warning(Settings(host=host)) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "news.example.org"])
def test_an_open_host_without_a_key_is_warned_about(host):
    warning = exposure_warning(Settings(host=host))
    assert warning.startswith("WARNING") and host in warning and "RAG_API_KEY" in warning
    assert exposure_warning(Settings(host=host, api_key="k")) is None


def test_rag_serve_prints_the_warning(monkeypatch, tmp_path):
    import uvicorn

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **options: served.append((host, port)))  # no server
    monkeypatch.delenv("RAG_API_KEY", raising=False)
    monkeypatch.delenv("RAG_READ_ONLY_API_KEY", raising=False)
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "serve", "--host", "0.0.0.0", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert served == [("0.0.0.0", 8123)]
    assert "WARNING: serving on 0.0.0.0 without RAG_API_KEY" in result.stderr
