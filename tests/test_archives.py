"""Archives as users keep them, through the real service (real Chroma, real embedder): nested
folders, a bad file among good ones, duplicates kept as aliases, metadata and filters."""

from datetime import date
from pathlib import Path

import pytest

from rag.errors import InvalidInputError, NotFoundError
from rag.models import ArticleInput, SearchFilter
from tests.conftest import build_service

ARTICLES = {
    "business/001.txt": "Ferry firm profits rise\n\nProfits at the Baltic ferry operator rose 12% to £40m in the "
                        "three months to March, helped by higher fares on the Gdansk route.",
    "business/002.txt": "Steel plant to close\n\nThe steel plant in Nowa Huta will close next year with the loss "
                        "of 800 jobs, its owner said on Monday.",
    "sport/001.txt": "Gdansk win cup final\n\nLechia Gdansk won the cup final 2-1 after extra time, with the "
                     "winner scored by their captain in the 115th minute.",
    "sport/002.txt": "Sprinter breaks record\n\nThe sprinter ran 100m in 9.91 seconds in Warsaw, a national "
                     "record, and said she hoped to go faster in the summer.",
}


def write_archive(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def test_a_nested_archive_gets_path_ids_sections_and_a_second_run_changes_nothing(service, tmp_path):
    archive = write_archive(tmp_path / "archive", ARTICLES)
    first = service.ingest_paths([archive])
    assert not first.failures
    assert {r.document_id: r.status for r in first.results} == {
        "business/001": "created", "business/002": "created", "sport/001": "created", "sport/002": "created",
    }
    assert service.get_document("sport/001").metadata == {"section": "sport"}
    counts = service.store.counts()
    second = service.ingest_paths([archive])
    assert [r.status for r in second.results] == ["unchanged"] * 4 and service.store.counts() == counts


def test_one_bad_file_is_reported_and_the_others_are_stored(service, tmp_path):
    latin1 = ("Club fined over ticket prices\n\nThe club was fined £25,000 after charging fans £80 for a "
              "cup tie, the league's disciplinary panel ruled.").encode("latin-1")
    archive = write_archive(tmp_path / "archive", {
        **ARTICLES, "sport/199.txt": latin1, "sport/broken.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00",
        "tech/blank.txt": "  \n Share this \n",
    })
    report = service.ingest_paths([archive])
    assert sorted((f.file, f.reason.split(" ")[-1]) for f in report.failures) == [
        ("sport/broken.txt", "text"), ("tech/blank.txt", "removed"),
    ]
    assert "binary" in report.failures[0].reason
    assert len(report.results) == 5 and service.store.counts()[0] == 5
    assert "fined £25,000" in service.get_document("sport/199").text
    assert service.retrieve("How much was the club fined over ticket prices?", top_k=1)[0].document_id == "sport/199"


def test_a_duplicate_is_an_alias_never_a_second_copy(service, tmp_path):
    archive = write_archive(tmp_path / "archive", {**ARTICLES, "sport/900.txt": ARTICLES["sport/002.txt"] + "\n\n"})
    report = service.ingest_paths([archive])
    [duplicate] = [r for r in report.results if r.status == "duplicate"]
    assert (duplicate.document_id, duplicate.duplicate_of) == ("sport/900", "sport/002")
    assert service.store.counts() == (4, sum(r.chunk_count for r in report.results))
    assert service.store.alias_count() == 1

    alias, original = service.get_document("sport/900"), service.get_document("sport/002")
    assert alias.alias_of == "sport/002" and alias.text == original.text and alias.chunks == original.chunks
    assert original.aliases == ["sport/900"]
    passages = service.retrieve("How fast did the sprinter run in Warsaw?", top_k=4)
    assert [p.document_id for p in passages].count("sport/002") == 1
    assert all(p.document_id != "sport/900" for p in passages)
    # Re-ingesting the archive leaves the alias as it is.
    assert {r.status for r in service.ingest_paths([archive]).results} == {"unchanged"}
    # Asking within the alias searches its original.
    only = SearchFilter(document_ids=["sport/900"])
    assert {p.document_id for p in service.retrieve("sprinter", top_k=5, search=only)} == {"sport/002"}


def test_deleting_an_original_hands_its_text_to_an_alias(service, tmp_path):
    text = ARTICLES["business/002.txt"]
    for document_id in ("plant-a", "plant-b", "plant-c"):
        service.ingest(ArticleInput(text=text, document_id=document_id))
    service.delete_document("plant-a")
    heir = service.get_document("plant-b")
    assert heir.alias_of is None and heir.chunks and heir.aliases == ["plant-c"]
    assert service.get_document("plant-c").alias_of == "plant-b"
    assert service.retrieve("steel plant jobs", top_k=1)[0].document_id == "plant-b"
    with pytest.raises(NotFoundError):
        service.get_document("plant-a")
    # An original whose text changes leaves its old text to its alias.
    service.ingest(ArticleInput(text=ARTICLES["sport/001.txt"], document_id="plant-b"))
    assert service.get_document("plant-c").alias_of is None
    assert "Nowa Huta" in service.get_document("plant-c").text
    assert service.store.counts()[0] == 2 and service.store.alias_count() == 0


def test_metadata_filters_apply_to_dense_and_keyword_search_alike(service, tmp_path):
    service.ingest_paths([write_archive(tmp_path / "archive", ARTICLES)])
    service.ingest(ArticleInput(text="Gdansk port traffic\n\nCargo traffic through Gdansk rose by a fifth in 2024.",
                                document_id="wire-1", metadata={"source": "wire", "date": "2024-05-02"}))
    service.ingest(ArticleInput(text="Gdansk port strike\n\nDockers in Gdansk struck for a day in 2023.",
                                document_id="wire-2", metadata={"source": "wire", "date": "2023-02-11"}))
    query = "Gdansk"
    sport = service.retrieve(query, top_k=10, search=SearchFilter(where={"section": "sport"}))
    assert sport[0].document_id == "sport/001" and {p.document_id for p in sport} == {"sport/001", "sport/002"}
    since = service.retrieve(query, top_k=10, search=SearchFilter(date_from=date(2024, 1, 1)))
    assert {p.document_id for p in since} == {"wire-1"}
    window = SearchFilter(where={"source": "wire"}, date_from=date(2023, 1, 1), date_to=date(2023, 12, 31))
    assert {p.document_id for p in service.retrieve(query, top_k=10, search=window)} == {"wire-2"}
    assert service.retrieve(query, top_k=10, search=SearchFilter(where={"section": "nope"})) == []
    # Each side alone honours the filter too.
    keyword = service.retriever.keyword_index().search(query, 10, SearchFilter(where={"section": "sport"}))
    assert {service.retriever.keyword_index().get(i).chunk.document_id for i, _ in keyword} == {"sport/001"}
    assert service.retrieve(query, top_k=3)[0].metadata  # passages carry their article's metadata


def test_filter_errors_are_clear(service):
    service.ingest(ArticleInput(text="Some text about ports.", document_id="one"))
    with pytest.raises(NotFoundError, match="'missing'"):
        service.retrieve("ports", search=SearchFilter(document_ids=["one", "missing"]))
    with pytest.raises(InvalidInputError, match="empty"):
        service.retrieve("ports", search=SearchFilter(document_ids=[]))


def test_the_store_reopened_keeps_aliases_and_metadata(settings, embedder, tmp_path):
    archive = write_archive(tmp_path / "archive", {**ARTICLES, "sport/900.txt": ARTICLES["sport/002.txt"]})
    first = build_service(settings, embedder)
    first.ingest_paths([archive])
    first.close()
    reopened = build_service(settings, embedder)
    assert reopened.get_document("sport/900").alias_of == "sport/002"
    assert {p.metadata["section"] for p in reopened.retrieve("Gdansk", top_k=5)} <= {"business", "sport"}
    assert {r.status for r in reopened.ingest_paths([archive]).results} == {"unchanged"}


def test_nothing_to_ingest_is_an_empty_report(service):
    assert service.ingest_many([]) == []
    assert service.ingest_files([]).results == [] and service.store.counts() == (0, 0)
