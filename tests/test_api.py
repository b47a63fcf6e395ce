"""The HTTP API through FastAPI's TestClient over a real service."""

from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import DOC_A, DOC_B, build_service

ARTICLE = "Floods in Valencia.\n\nThe river Turia rose by four metres overnight, officials said."


def test_healthz(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["store"] == "ok"
    assert body["documents"] == 2 and body["chunks"] > 2
    assert "MiniLM" in body["embedding_model"]


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/documents", "/v1/documents/{document_id}", "/v1/retrieve", "/healthz"} <= set(paths)
    assert "multipart/form-data" in paths["/v1/documents"]["post"]["requestBody"]["content"]


def test_create_json_then_idempotent_then_update(client):
    first = client.post("/v1/documents", json={"id": "valencia", "title": "Floods", "text": ARTICLE})
    assert first.status_code == 201 and first.json()["status"] == "created"
    again = client.post("/v1/documents", json={"id": "valencia", "title": "Floods", "text": ARTICLE})
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    changed = client.post("/v1/documents", json={"id": "valencia", "text": ARTICLE + " Two died."})
    assert changed.json()["status"] == "updated"
    doc = client.get("/v1/documents/valencia").json()
    assert doc["text"].endswith("Two died.")
    assert all(doc["text"][c["start"] : c["end"]] == c["text"] for c in doc["chunks"])


def test_create_without_id_derives_one_from_the_text(client):
    body = client.post("/v1/documents", json={"text": ARTICLE}).json()
    assert body["document_id"].startswith("doc-") and body["title"] == "Floods in Valencia."


def test_multipart_upload_uses_the_file_stem(client):
    response = client.post(
        "/v1/documents", files={"file": ("valencia-floods.txt", ARTICLE.encode(), "text/plain")}
    )
    assert response.status_code == 201, response.text
    assert response.json()["document_id"] == "valencia-floods"
    listed = [d["id"] for d in client.get("/v1/documents").json()["documents"]]
    assert listed == sorted([DOC_A, DOC_B, "valencia-floods"])


def test_list_get_delete(client):
    docs = client.get("/v1/documents").json()["documents"]
    assert {d["id"] for d in docs} == {DOC_A, DOC_B}
    assert all(len(d["sha256"]) == 64 and d["chunk_count"] > 0 and d["ingested_at"] for d in docs)
    assert client.delete(f"/v1/documents/{DOC_B}").json() == {"id": DOC_B, "deleted": True}
    assert client.get(f"/v1/documents/{DOC_B}").status_code == 404
    passages = client.post("/v1/retrieve", json={"query": "Sudzha", "top_k": 10}).json()["passages"]
    assert passages and all(p["document_id"] == DOC_A for p in passages)


def test_retrieve(client):
    body = client.post("/v1/retrieve", json={"query": "How many soldiers surrendered?", "top_k": 3}).json()
    assert len(body["passages"]) == 3
    top = body["passages"][0]
    assert set(top) == {"document_id", "title", "chunk_id", "text", "start", "end", "score", "metadata"}
    assert any("430 Ukrainian soldiers" in p["text"] for p in body["passages"])


def assert_error(response, status, fragment):
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and fragment in detail, detail


def test_bad_input_is_a_clear_4xx_and_writes_nothing(client, seeded):
    before = seeded.store.counts()
    assert_error(client.post("/v1/documents", json={"text": "   \n "}), 422, "empty")
    assert_error(client.post("/v1/documents", json={"title": "no text"}), 422, "text")
    assert_error(client.post("/v1/documents", content=b"{not json", headers={"content-type": "application/json"}), 422, "invalid")
    assert_error(client.post("/v1/documents", json={"id": "a/../b", "text": "x y z"}), 422, "invalid document id")
    assert_error(client.post("/v1/documents", files={"file": ("x.bin", b"\x00\x01\x02", "application/octet-stream")}), 415, "binary")
    assert_error(client.post("/v1/documents", files={"other": ("x.txt", b"text", "text/plain")}), 422, "file")
    assert seeded.store.counts() == before


def test_size_limit_is_413(settings, embedder):
    service = build_service(settings.model_copy(update={"max_document_bytes": 100}), embedder)
    with TestClient(create_app(service)) as small:
        assert_error(small.post("/v1/documents", json={"text": "word " * 50}), 413, "limit")
        assert_error(small.post("/v1/documents", files={"file": ("big.txt", b"word " * 50, "text/plain")}), 413, "limit")


def test_unknown_document_is_404(client):
    assert_error(client.get("/v1/documents/nope"), 404, "nope")
    assert_error(client.delete("/v1/documents/nope"), 404, "nope")


def test_empty_query_is_422(client):
    assert_error(client.post("/v1/retrieve", json={"query": ""}), 422, "query")
    assert_error(client.post("/v1/retrieve", json={"query": "   "}), 422, "empty")
    assert_error(client.post("/v1/retrieve", json={"query": "x", "top_k": 0}), 422, "top_k")
    assert_error(client.post("/v1/retrieve", json={"query": "x" * 2001}), 422, "limit")


SAVED_PAGE = b"""<html><head><title>Pilots strike | Baltic Courier</title>
<meta property="og:title" content="Pilots strike"><meta name="author" content="Ewa Nowak">
<meta property="article:published_time" content="2024-03-14"><meta property="og:site_name" content="Baltic Courier">
</head><body><nav>Home | Sport | Subscribe</nav><article><p>Harbour pilots in Gdansk walked out on Thursday in a
dispute over night-shift rosters, leaving fourteen cargo ships waiting at anchor outside the port.</p>
<p>The union said talks had broken down after six weeks of negotiation with the port authority.</p></article>
<footer>Copyright 2024 Baltic Courier</footer></body></html>"""


def test_path_style_ids_html_uploads_metadata_and_filters(client):
    created = client.post("/v1/documents", json={"id": "politics/2005/budget", "text": ARTICLE,
                                                 "metadata": {"source": "wire", "date": "2005-03-16"}})
    assert created.status_code == 201, created.text
    assert client.get("/v1/documents/politics/2005/budget").json()["metadata"]["source"] == "wire"
    page = client.post("/v1/documents", files={"file": ("pilots strike.html", SAVED_PAGE, "text/html")})
    assert page.status_code == 201, page.text
    doc = client.get(f"/v1/documents/{page.json()['document_id']}").json()
    assert doc["id"] == "pilots-strike" and doc["title"] == "Pilots strike"
    assert doc["metadata"] == {"author": "Ewa Nowak", "date": "2024-03-14", "source": "Baltic Courier"}
    assert "fourteen cargo ships" in doc["text"] and "Subscribe" not in doc["text"] and "Copyright" not in doc["text"]

    def ids(**fields):
        response = client.post("/v1/retrieve", json={"query": "Gdansk pilots Turia river", "top_k": 10, **fields})
        assert response.status_code == 200, response.text
        return {p["document_id"] for p in response.json()["passages"]}

    assert ids(where={"source": "Baltic Courier"}) == {"pilots-strike"}
    assert ids(date_from="2005-01-01", date_to="2005-12-31") == {"politics/2005/budget"}
    assert ids(date_from="2024-01-01") == {"pilots-strike"}
    assert_error(client.post("/v1/retrieve", json={"query": "x", "document_ids": ["nope"]}), 404, "'nope'")
    assert_error(client.post("/v1/retrieve", json={"query": "x", "date_from": "last week"}), 422, "date_from")
    assert client.delete("/v1/documents/politics/2005/budget").json() == {"id": "politics/2005/budget", "deleted": True}
    assert client.get("/v1/documents/politics/2005/budget").status_code == 404


def test_a_duplicate_upload_is_an_alias(client):
    first = client.post("/v1/documents", json={"id": "a", "text": ARTICLE}).json()
    second = client.post("/v1/documents", json={"id": "b", "text": ARTICLE}).json()
    assert first["status"] == "created" and (second["status"], second["duplicate_of"]) == ("duplicate", "a")
    alias = client.get("/v1/documents/b").json()
    assert alias["alias_of"] == "a" and alias["text"] == client.get("/v1/documents/a").json()["text"]
    assert client.get("/healthz").json()["aliases"] == 1
