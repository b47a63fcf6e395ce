"""Ingest, storage and deletion through the real service over a real Chroma."""

import pytest
from chromadb.api.client import SharedSystemClient

from rag.models import SearchFilter
from rag.errors import DocumentTooLargeError, InvalidInputError, NotFoundError
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
    results = seeded.ingest_paths([SEEDS]).results
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
    found = seeded.retriever.keyword_index().search("Sudzha Defense Ministry", 20)
    assert found and {s.chunk.document_id for s in seeded.store.chunks_by_id([i for i, _ in found])} == {DOC_A}
    with pytest.raises(NotFoundError):
        seeded.get_document(DOC_B)
    assert seeded.store.counts()[0] == 1


def test_keyword_index_follows_chunks_another_writer_adds(settings, embedder):
    reader = build_service(settings.model_copy(update={"store_recheck_s": 0}), embedder)
    writer = build_service(settings, embedder)
    reader.ingest(ArticleInput(text=ARTICLE, document_id="vostok"))
    assert reader.retrieve("Volkova") and len(reader.retriever.keyword_index()) > 0
    writer.ingest(ArticleInput(text="Harbour pilots in Gdansk voted to strike over rosters.", document_id="pilots"))
    found = reader.retriever.keyword_index().search("Gdansk harbour pilots", 5)
    assert [reader.retriever.keyword_index().get(chunk_id).chunk.document_id for chunk_id, _ in found] == ["pilots"]


def test_retrieval_returns_the_text_another_writer_replaced(settings, embedder):
    reader = build_service(settings, embedder)  # rechecks the store only every 2 s
    writer = build_service(settings, embedder)
    reader.ingest(ArticleInput(text="Harbour pilots in Gdansk voted to strike over rosters.", document_id="pilots"))
    assert "Gdansk" in reader.retrieve("harbour pilots strike")[0].text
    writer.ingest(ArticleInput(text="Harbour pilots in Gdynia voted to strike over pay.", document_id="pilots"))
    [passage] = reader.retrieve("harbour pilots strike", top_k=1)
    assert passage.text == "Harbour pilots in Gdynia voted to strike over pay."


def test_whole_collections_are_read_in_pages(seeded, monkeypatch):
    monkeypatch.setattr("rag.store.READ_PAGE", 1)
    chunks = seeded.store.all_chunks()
    assert len(chunks) == len({s.chunk.chunk_id for s in chunks}) == seeded.store.counts()[1] > 1
    assert [d.id for d in seeded.list_documents()] == [DOC_A, DOC_B]


def test_retrieve_can_be_limited_to_documents(seeded):
    passages = seeded.retrieve("Gerasimov", top_k=10, search=SearchFilter(document_ids=[DOC_A]))
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


def test_many_articles_at_once_store_what_one_at_a_time_stores(settings, embedder, tmp_path):
    # Several write groups, each over articles.
    service = build_service(settings.model_copy(update={"ingest_group_chunks": 3}), embedder)
    articles = [ArticleInput(text=ARTICLE.replace("Vostok", f"Vostok {n}") * (n + 1), document_id=f"v{n}")
                for n in range(6)]
    reported = []
    together = service.ingest_many(articles[:5], on_each=reported.append)
    assert [r.status for r in together] == ["created"] * 5 and reported == together
    updated = service.ingest_many([articles[0], ArticleInput(text=ARTICLE, document_id="v1"), articles[5]])
    assert [r.status for r in updated] == ["unchanged", "updated", "created"]

    one_by_one = build_service(settings.model_copy(update={"data_dir": tmp_path / "other"}), embedder)
    for article in [*articles[:5], ArticleInput(text=ARTICLE, document_id="v1"), articles[5]]:
        one_by_one.ingest(article)
    for n in range(6):
        assert [(c.chunk_id, c.start, c.end) for c in service.get_document(f"v{n}").chunks] == [
            (c.chunk_id, c.start, c.end) for c in one_by_one.get_document(f"v{n}").chunks
        ]
    assert service.store.counts() == one_by_one.store.counts()
    # The same chunks indexed and the same best passage; the order of the near-tied rest may
    # differ, since BM25's statistics count replaced chunks until a segment merge drops them (as
    # Lucene's do), and merges follow the commits.
    assert service.store.keywords.chunk_ids() == one_by_one.store.keywords.chunk_ids()
    assert service.retrieve("How deep did Vostok 3 drill?")[0].chunk_id == one_by_one.retrieve("How deep did Vostok 3 drill?")[0].chunk_id


def test_two_articles_with_one_id_are_refused_before_any_write(service):
    with pytest.raises(InvalidInputError, match="two articles have the id 'vostok'"):
        service.ingest_many([ArticleInput(text=ARTICLE, document_id="vostok"),
                             ArticleInput(text=ARTICLE * 2, document_id="vostok")])
    assert service.store.counts() == (0, 0)


def test_seed_if_empty_runs_once(service):
    assert len(service.seed_if_empty()) == 2
    assert service.seed_if_empty() == []


def test_a_file_with_no_text_is_named_and_the_rest_of_its_folder_is_written(service, tmp_path):
    (tmp_path / "a_good.txt").write_text(ARTICLE)
    (tmp_path / "b_blank.txt").write_text("  \n\n Share this \n")  # only page debris
    report = service.ingest_paths([tmp_path])
    assert [(f.file, f.reason) for f in report.failures] == [
        ("b_blank.txt", "article text is empty once whitespace and page debris are removed")
    ]
    assert [r.document_id for r in report.results] == ["a_good"] and service.store.counts()[0] == 1


def test_the_keyword_index_persists_and_is_trusted_at_reopen_without_reindexing(settings, embedder):
    first = build_service(settings, embedder)
    first.ingest(ArticleInput(text=ARTICLE, document_id="vostok"))
    query = "How deep did the expedition drill?"
    expected = [p.chunk_id for p in first.retrieve(query)]
    revision = first.store.revision()
    assert first.store.keywords.synced_revision() == revision
    first.close()
    SharedSystemClient.clear_system_cache()

    reopened = build_service(settings, embedder)
    assert reopened.store.revision() == revision and reopened.store.keywords.synced_revision() == revision
    assert len(reopened.retriever.keyword_index()) == reopened.store.counts()[1]
    assert reopened.store.repair_keywords() == (0, 0)  # nothing to do: marker and counts agree
    assert [p.chunk_id for p in reopened.retrieve(query)] == expected


def test_a_crash_between_the_chroma_write_and_the_keyword_write_is_repaired_at_start(settings, embedder):
    """A write that stopped after Chroma and before the keyword commit leaves chunks the index
    lacks (an ingest) or holds too many (a delete), and no synced marker: the next start finds it
    by the marker, compares ids, indexes what is missing from Chroma's stored text and drops the rest."""
    from rag.models import Chunk
    from rag.store import StoredChunk

    service = build_service(settings, embedder)
    service.ingest(ArticleInput(text=ARTICLE, document_id="vostok"))
    service.ingest(ArticleInput(text="Harbour pilots in Gdansk voted to strike over rosters.", document_id="pilots"))
    chunks = service.store.counts()[1]
    # The state such a crash leaves: the keyword side of the last writes never committed, and a
    # chunk of a deleted article still held.
    with service.store.keywords.writing() as changes:
        changes.mark_unsynced()
        changes.delete_documents(["pilots", "vostok"])
        changes.add([StoredChunk(Chunk(chunk_id="gone#0000", document_id="gone", index=0, start=0, end=14,
                                       text="Zeppelin gone."), "Gone", {})])
    service.close()
    SharedSystemClient.clear_system_cache()
    assert service.store.keywords.synced_revision() is None

    restarted = build_service(settings, embedder)
    keywords = restarted.retriever.keyword_index()
    assert len(keywords) == chunks and keywords.get("gone#0000") is None
    assert keywords.synced_revision() == restarted.store.revision()
    assert [restarted.store.keywords.get(i).chunk.document_id for i, _ in keywords.search("Gdansk harbour pilots", 5)] == ["pilots"]
    assert keywords.search("zeppelin", 5) == []
    assert restarted.store.repair_keywords() == (0, 0)


def test_the_start_up_check_leaves_an_index_another_process_is_writing(settings, embedder):
    """A start while another process holds the writer lock (a write under way, its marker
    removed) does not wait for it or compare ids: that writer marks the index synced."""
    from rag.keywords import KeywordIndex
    from rag.store import open_store

    service = build_service(settings, embedder)
    service.ingest(ArticleInput(text=ARTICLE, document_id="vostok"))
    chunks = service.store.counts()[1]
    with service.store.keywords.writing() as changes:
        changes.mark_unsynced()
        changes.delete_documents(["vostok"])
    SharedSystemClient.clear_system_cache()
    other_writer = KeywordIndex(settings.keyword_path)
    with other_writer.writing():
        store = open_store(settings)
        assert len(store.keywords) == 0
    assert store.repair_keywords() == (chunks, 0) and len(store.keywords) == chunks


def test_a_repair_does_not_embed(settings, embedder, caplog):
    service = build_service(settings, embedder)
    service.ingest(ArticleInput(text=ARTICLE, document_id="vostok"))
    with service.store.keywords.writing() as changes:
        changes.mark_unsynced()
        changes.delete_documents(["vostok"])
    SharedSystemClient.clear_system_cache()
    before = service.store.counts()[1]
    from rag.store import open_store

    with caplog.at_level("WARNING"):
        store = open_store(settings)  # a store alone, no embedder at all
    assert len(store.keywords) == before and "repaired from Chroma" in caplog.text




def test_a_write_waits_for_another_writers_lock_then_fails_naming_it_with_nothing_written(settings, embedder, caplog):
    from rag.errors import StoreUnavailableError
    from rag.keywords import KeywordIndex

    service = build_service(settings.model_copy(update={"keyword_lock_wait_s": 0.5}), embedder)
    before = service.store.counts()
    with KeywordIndex(settings.keyword_path).writing(), caplog.at_level("WARNING"):
        with pytest.raises(StoreUnavailableError, match="writer lock"):
            service.ingest(ArticleInput(text=ARTICLE, document_id="vostok"))
    assert "waiting for its lock" in caplog.text
    assert service.store.counts() == before  # the lock is taken before Chroma is written
    assert service.ingest(ArticleInput(text=ARTICLE, document_id="vostok")).status == "created"
