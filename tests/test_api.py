"""The HTTP API through FastAPI's TestClient over a real service."""

from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import DOC_A, DOC_B

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
    assert set(top) == {"document_id", "title", "chunk_id", "text", "start", "end", "score"}
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
    assert_error(client.post("/v1/documents", json={"id": "a/b", "text": "x y z"}), 422, "invalid document id")
    assert_error(client.post("/v1/documents", files={"file": ("x.bin", b"\x00\x01\x02", "application/octet-stream")}), 415, "binary")
    assert_error(client.post("/v1/documents", files={"file": ("x.txt", "café".encode("latin-1"), "text/plain")}), 415, "UTF-8")
    assert_error(client.post("/v1/documents", files={"other": ("x.txt", b"text", "text/plain")}), 422, "file")
    assert seeded.store.counts() == before


def test_size_limit_is_413(seeded):
    seeded.settings = seeded.settings.model_copy(update={"max_document_bytes": 100})
    with TestClient(create_app(seeded)) as small:
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
