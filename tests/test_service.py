"""Ingest, storage and deletion through the real service over a real Chroma."""

import pytest
from chromadb.api.client import SharedSystemClient

from rag.errors import DocumentTooLargeError, InvalidInputError, NotFoundError, UnsupportedContentError
from rag.service import ArticleInput
from tests.conftest import DOC_A, DOC_B, SEEDS, build_service

ARTICLE = (
    "Lake Vostok expedition returns.\n\n"
    "The expedition drilled 3,769 metres into the Antarctic ice. "
    "Samples of the lake water were sealed for analysis in Saint Petersburg.\n\n"
    "The team leader, Irina Volkova, said the samples held no surprises."
)


def chunk_ids(service, document_id):
    return [c.chunk_id for c in service.get_document(document_id).chunks]


def test_seed_ingest_records_documents_with_offsets(seeded):
    docs = {d.id: d for d in seeded.list_documents()}
    assert set(docs) == {DOC_A, DOC_B}
    for doc_id in docs:
        document = seeded.get_document(doc_id)
        assert document.chunk_count == len(document.chunks) > 1
        for chunk in document.chunks:
            assert document.text[chunk.start : chunk.end] == chunk.text


def test_reingest_of_identical_content_changes_nothing(seeded):
    before = {d.id: (d.sha256, d.ingested_at, chunk_ids(seeded, d.id)) for d in seeded.list_documents()}
    results = seeded.ingest_paths([SEEDS])
    assert {r.status for r in results} == {"unchanged"}
    after = {d.id: (d.sha256, d.ingested_at, chunk_ids(seeded, d.id)) for d in seeded.list_documents()}
    assert after == before
    assert seeded.store.counts() == (2, sum(len(v[2]) for v in before.values()))


def test_changed_content_replaces_old_chunks_completely(service):
    first = service.ingest(ArticleInput(text=ARTICLE * 3, document_id="vostok"))
    second = service.ingest(ArticleInput(text=ARTICLE, document_id="vostok"))
    assert first.status == "created" and second.status == "updated"
    assert second.chunk_count < first.chunk_count
    document = service.get_document("vostok")
    assert len(document.chunks) == second.chunk_count == service.store.counts()[1]
    assert document.text == ARTICLE  # already canonical: nothing of it is debris


def test_restart_over_the_same_data_dir_keeps_documents(settings, embedder):
    first = build_service(settings, embedder)
    first.ingest(ArticleInput(text=ARTICLE, document_id="vostok", title="Vostok", metadata={"source": "wire"}))
    first.close()
    SharedSystemClient.clear_system_cache()

    reopened = build_service(settings, embedder)
    info = reopened.list_documents()
    assert [(d.id, d.title, d.metadata) for d in info] == [("vostok", "Vostok", {"source": "wire"})]
    passages = reopened.retrieve("How deep did the expedition drill?")
    assert "3,769 metres" in passages[0].text


def test_delete_removes_from_dense_and_bm25(seeded):
    query = "Sudzha retaken by the Russian Defense Ministry"  # words BM25 matches only in DOC_B
    assert any(p.document_id == DOC_B for p in seeded.retrieve(query, top_k=10))
    seeded.delete_document(DOC_B)
    assert all(p.document_id == DOC_A for p in seeded.retrieve(query, top_k=20))
    # BM25 alone (dense filtered away) finds nothing of the deleted document either.
    bm25 = seeded.retriever._bm25_retriever().retrieve("Sudzha Defense Ministry")
    assert bm25 and all(n.node.ref_doc_id == DOC_A for n in bm25)
    with pytest.raises(NotFoundError):
        seeded.get_document(DOC_B)
    assert seeded.store.counts()[0] == 1


def test_retrieve_can_be_limited_to_documents(seeded):
    passages = seeded.retrieve("Gerasimov", top_k=10, document_ids=[DOC_A])
    assert passages and {p.document_id for p in passages} == {DOC_A}


def test_empty_store_finds_nothing(service):
    assert service.retrieve("anything at all") == []


@pytest.mark.parametrize(
    "article, error",
    [
        (ArticleInput(text=""), InvalidInputError),
        (ArticleInput(text="  \n\t \n"), InvalidInputError),
        (ArticleInput(text="🌎\nFollow World news\n"), InvalidInputError),
        (ArticleInput(text="ok text", document_id="../etc/passwd"), InvalidInputError),
        (ArticleInput(text="x" * 2_000_001), DocumentTooLargeError),
    ],
)
def test_bad_articles_are_refused_and_nothing_is_written(seeded, article, error):
    before = seeded.store.counts()
    with pytest.raises(error):
        seeded.ingest(article)
    assert seeded.store.counts() == before


def test_one_bad_file_in_a_batch_writes_nothing(service, tmp_path):
    (tmp_path / "good.txt").write_text(ARTICLE)
    (tmp_path / "bad.txt").write_bytes(b"\x00\x01binary")
    with pytest.raises(UnsupportedContentError):
        service.ingest_paths([tmp_path])
    assert service.store.counts() == (0, 0)


def test_seed_if_empty_runs_once(service):
    assert len(service.seed_if_empty()) == 2
    assert service.seed_if_empty() == []
