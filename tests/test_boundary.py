"""Limits that hold however a request is sent (chunked, multipart, plain), and no writes from
other web pages when there is no key (content types, Origin, Host): the real app, on a real
uvicorn on loopback where the way the body travels matters."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from chromadb.api.client import SharedSystemClient
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from tests.conftest import SEEDS, build_service, serving

ARTICLE = "Floods in Valencia.\n\nThe river Turia rose by four metres overnight, officials said."
KEY = "boundary-key"


@pytest.fixture
def make(tmp_path, embedder):
    """An app over an empty store with the given settings (no seeds: these tests read little)."""
    built = []

    def build(**overrides):
        settings = Settings(data_dir=tmp_path / f"data{len(built)}", seed_dir=SEEDS, **overrides)
        built.append(build_service(settings, embedder))
        return built[-1]

    yield build
    for svc in built:
        svc.close()
    SharedSystemClient.clear_system_cache()


class Body:
    """A request body streamed in ``piece``-byte chunks (no Content-Length: chunked), counting
    how much of it the client was asked for."""

    def __init__(self, total: int, piece: int = 64 * 1024, start: bytes = b"") -> None:
        self.total, self.piece, self.start, self.sent = total, piece, start, 0

    def __iter__(self) -> Iterator[bytes]:
        if self.start:
            self.sent += len(self.start)
            yield self.start
        filler = b"x" * self.piece
        while self.sent < self.total:
            self.sent += len(filler)
            yield filler


def send(url: str, body: Body, content_type: str = "application/json", **headers) -> int | None:
    """POST a streamed body: the status, or None when the server closed the connection before a
    response could be read (it may refuse and hang up while the client is still writing)."""
    try:
        response = httpx.post(url, content=iter(body), headers={"Content-Type": content_type, **headers}, timeout=30)
    except httpx.TransportError:
        return None
    return response.status_code


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_a_chunked_body_over_the_limit_is_413_as_it_streams(make):
    svc = make(max_request_bytes=200_000)
    with serving(create_app(svc)) as url:
        before = rss_mib()
        body = Body(64 * 1024 * 1024, start=b'{"text": "')
        status = send(f"{url}/v1/documents", body)
        grown = rss_mib() - before
        assert status in (413, None)
        assert body.sent < 32 * 1024 * 1024, f"the client wrote {body.sent} bytes before the server stopped it"
        assert grown < 50, f"RSS grew {grown:.0f} MiB"
        # A body under the limit, chunked too, is read and used.
        small = json.dumps({"text": ARTICLE, "id": "valencia"}).encode()
        assert httpx.post(f"{url}/v1/documents", content=iter([small[:20], small[20:]]),
                          headers={"Content-Type": "application/json"}).status_code == 201
        # The refusal itself, read whole: a body a little over the limit.
        refused = httpx.post(f"{url}/v1/retrieve", content=iter([b'{"query": "', b"x" * 250_000, b'"}']),
                             headers={"Content-Type": "application/json"})
        assert refused.status_code == 413 and "RAG_MAX_REQUEST_BYTES" in refused.json()["detail"]
    assert [d.id for d in svc.list_documents()] == ["valencia"]


def test_a_chunked_multipart_upload_over_the_limit_is_413(make):
    svc = make(max_request_bytes=200_000)
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()
    with serving(create_app(svc)) as url:
        refused = httpx.post(f"{url}/v1/documents", content=iter([head, b"word " * 60_000, f"\r\n--{boundary}--\r\n".encode()]),
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert refused.status_code == 413, refused.text
        fits = httpx.post(f"{url}/v1/documents", content=iter([head, ARTICLE.encode(), f"\r\n--{boundary}--\r\n".encode()]),
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert fits.status_code == 201, fits.text
    assert [d.id for d in svc.list_documents()] == ["big"]


def test_a_plain_body_over_the_limit_is_413_by_its_length(make):
    svc = make(max_request_bytes=1000)
    with TestClient(create_app(svc)) as client:
        refused = client.post("/v1/documents", content=b"x" * 5000, headers={"Content-Type": "application/json"})
        assert refused.status_code == 413 and "RAG_MAX_REQUEST_BYTES" in refused.json()["detail"]
    assert svc.list_documents() == []


def test_without_a_key_the_body_is_never_read(make):
    svc = make(api_key=KEY)
    with serving(create_app(svc)) as url:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            body = Body(64 * 1024 * 1024, start=b'{"query": "')
            status = send(f"{url}/v1/retrieve", body, **headers)
            assert status in (401, None)
            assert body.sent < 32 * 1024 * 1024, f"the client wrote {body.sent} bytes before the 401"
            refused = httpx.post(f"{url}/v1/retrieve", content=iter([b'{"query": "floods"}']),
                                 headers={"Content-Type": "application/json", **headers})
            assert refused.status_code == 401 and "API key" in refused.json()["detail"]
        granted = httpx.post(f"{url}/v1/retrieve", content=iter([b'{"query": "floods"}']),
                             headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
        assert granted.status_code == 200


# --- cross-site writes without a key -------------------------------------------------------------
def test_writes_accept_only_their_documented_content_types(make):
    svc = make()
    with TestClient(create_app(svc)) as client:
        as_text = json.dumps({"text": ARTICLE, "id": "planted"})
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"Content-Type": content_type} if content_type else {}
            refused = client.post("/v1/documents", content=as_text, headers=headers)
            assert refused.status_code == 415 and "application/json" in refused.json()["detail"], refused.text
            assert client.post("/v1/retrieve", content=json.dumps({"query": "floods"}),
                               headers=headers).status_code == 415
        assert client.post("/v1/documents", json={"text": ARTICLE, "id": "sent"}).status_code == 201
        assert client.post("/v1/documents", files={"file": ("up.txt", ARTICLE.encode() + b" Again.", "text/plain")}).status_code == 201
    assert sorted(d.id for d in svc.list_documents()) == ["sent", "up"]


def test_writes_from_a_foreign_origin_are_403(make):
    svc = make(cors_origins=["http://allowed.example"])
    with TestClient(create_app(svc)) as client:
        foreign = {"Origin": "http://attacker.example"}
        refused = client.post("/v1/documents", json={"text": ARTICLE, "id": "planted"}, headers=foreign)
        assert refused.status_code == 403 and "RAG_CORS_ORIGINS" in refused.json()["detail"]
        assert client.post("/v1/documents", files={"file": ("planted.txt", ARTICLE.encode(), "text/plain")},
                           headers=foreign).status_code == 403
        assert client.post("/v1/documents", json={"text": ARTICLE, "id": "own"},
                           headers={"Origin": "http://testserver"}).status_code == 201
        assert client.delete("/v1/documents/own", headers=foreign).status_code == 403
        assert client.delete("/v1/documents/own", headers={"Origin": "null"}).status_code == 403
        assert client.post("/v1/documents", json={"text": ARTICLE + " More.", "id": "configured"},
                           headers={"Origin": "http://allowed.example"}).status_code == 201
        assert client.get("/v1/documents", headers=foreign).status_code == 200  # reads: CORS decides
    assert sorted(d.id for d in svc.list_documents()) == ["configured", "own"]


def test_a_host_that_is_not_the_servers_is_403_without_a_key(make):
    svc = make(allowed_hosts=[])
    with TestClient(create_app(svc)) as client:
        for host in ("rebound.attacker.example", "rebound.attacker.example:8000", "testserver"):
            refused = client.get("/v1/documents", headers={"Host": host})
            assert refused.status_code == 403 and "RAG_ALLOWED_HOSTS" in refused.json()["detail"]
        for host in ("127.0.0.1:8000", "localhost:8000", "localhost", "[::1]:8000"):
            assert client.get("/v1/documents", headers={"Host": host}).status_code == 200, host
    named = make(allowed_hosts=["news.internal"])
    with TestClient(create_app(named)) as client:
        assert client.get("/healthz", headers={"Host": "news.internal:8000"}).status_code == 200
        assert client.get("/healthz", headers={"Host": "other.internal"}).status_code == 403
    keyed = make(api_key=KEY, allowed_hosts=[])  # with keys, a page cannot act without one anyway
    with TestClient(create_app(keyed)) as client:
        assert client.get("/v1/documents", headers={"Host": "api.example.com", "Authorization": f"Bearer {KEY}"}).status_code == 200
