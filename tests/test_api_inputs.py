"""Inputs the API refuses or tidies, and what it serves for reading about itself: NaN in
metadata and filters, a question with nothing to search, upload names that leave no id, NUL
characters, the key's scope, /docs without the network, the configuration table."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from rag.config import settings_table
from tests.conftest import build_service

ARTICLE = "Floods in Valencia.\n\nThe river Turia rose by four metres overnight, officials said."


def test_nan_and_infinity_are_422_in_filters_and_metadata(client):
    for number in ("NaN", "Infinity", "-Infinity"):
        body = '{"query": "floods", "where": {"x": %s}}' % number
        response = client.post("/v1/retrieve", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        document = '{"id": "nan-doc", "text": "The river rose.", "metadata": {"depth": %s}}' % number
        response = client.post("/v1/documents", content=document, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
    assert "nan-doc" not in [d["id"] for d in client.get("/v1/documents").json()["documents"]]
    ok = client.post("/v1/documents", json={"id": "finite", "text": ARTICLE, "metadata": {"depth": 4.5}})
    assert ok.status_code == 201 and client.get("/v1/documents/finite").json()["metadata"] == {"depth": 4.5}


def test_a_query_without_a_letter_or_digit_is_422(client):
    for query in ("???", "...", "¿¡!", "-- --"):
        for path, body in (("/v1/retrieve", {"query": query}), ("/v1/ask", {"question": query})):
            response = client.post(path, json=body)
            assert response.status_code == 422 and "nothing to search" in response.json()["detail"], response.text
    assert client.post("/v1/retrieve", json={"query": "2024?"}).status_code == 200


def test_an_upload_name_that_leaves_no_id_gets_one_from_its_text(client):
    for name, text in (("...txt", ARTICLE), ("日本.txt", ARTICLE + " Again."), (".md", ARTICLE + " Third.")):
        response = client.post("/v1/documents", files={"file": (name, text.encode(), "text/plain")})
        assert response.status_code == 201, response.text
        assert re.fullmatch(r"doc-[0-9a-f]{16}", response.json()["document_id"]), response.json()
    named = client.post("/v1/documents", files={"file": ("a.b.txt", b"Another story about rain.", "text/plain")})
    assert named.json()["document_id"] == "a.b"


def test_nul_characters_are_stripped_at_ingest(client):
    response = client.post("/v1/documents", json={"id": "nul", "title": "Flo\u0000ods", "text": "The riv\u0000er rose.\u0000"})
    assert response.status_code == 201, response.text
    document = client.get("/v1/documents/nul").json()
    assert document["title"] == "Floods" and document["text"] == "The river rose."
    assert all("\u0000" not in chunk["text"] for chunk in document["chunks"])


def test_access_tells_the_page_what_its_key_may_do(embedder, settings):
    keyed = settings.model_copy(update={"api_key": SecretStr("full"), "read_only_api_key": SecretStr("reader")})
    svc = build_service(keyed, embedder)
    try:
        with TestClient(create_app(svc)) as client:
            assert client.get("/v1/access").status_code == 401
            reader = client.get("/v1/access", headers={"Authorization": "Bearer reader"}).json()
            writer = client.get("/v1/access", headers={"Authorization": "Bearer full"}).json()
    finally:
        svc.close()
    assert reader == {"auth": "on", "can_write": False} and writer == {"auth": "on", "can_write": True}


def test_access_without_keys(client):
    assert client.get("/v1/access").json() == {"auth": "off", "can_write": True}


def test_api_docs_need_no_other_host(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    addresses = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""", page.text)
    assert addresses
    for found in (a or b for a, b in addresses):
        assert found.startswith("/"), f"/docs loads {found} from elsewhere"
        assert client.get(found).status_code == 200, found
    assert not re.search(r"https?://", page.text)
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN


def test_the_configuration_table_shows_defaults_not_pydantic_internals():
    table = settings_table()
    assert "PydanticUndefined" not in table
    assert "| `RAG_CORS_ORIGINS` | (empty) |" in table


def test_a_filter_with_a_lone_surrogate_is_422_not_a_store_failure(client):
    # JSON may escape half a UTF-16 pair ("\ud800"); no store can hold or match such a string.
    for raw in ('{"query": "floods", "where": {"\\ud800": "x"}}', '{"query": "floods", "where": {"s": "\\udfff"}}',
                '{"query": "floods", "document_ids": ["\\ud800"]}'):
        response = client.post("/v1/retrieve", content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 422 and "not valid Unicode" in response.json()["detail"], response.text
