"""Files as users keep them: nested folders, legacy encodings, saved web pages, front matter."""

from pathlib import Path

import pytest

from rag.errors import DocumentTooLargeError, InvalidInputError, NotFoundError, UnsupportedContentError
from rag.loading import decode_text, find_article_files, parse_article, parse_html, parse_markdown, read_article
from tests.conftest import SEEDS

SAVED_PAGE = """<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8">
<title>Harbour pilots strike over rosters | Baltic Courier</title>
<meta property="og:title" content="Harbour pilots strike over rosters">
<meta name="author" content="Ewa Nowak">
<meta property="article:published_time" content="2024-03-14T09:30:00Z">
<meta property="og:site_name" content="Baltic Courier">
<link rel="canonical" href="https://courier.example/news/pilots-strike">
</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/sport">Sport</a></li><li>Subscribe now</li></ul></nav>
<div class="cookie-banner">We use cookies to improve your experience. Accept all cookies.</div>
<article>
<h1>Harbour pilots strike over rosters</h1>
<p>Harbour pilots in Gdansk walked out on Thursday in a dispute over night-shift rosters, leaving
fourteen cargo ships waiting at anchor outside the port.</p>
<p>The pilots' union said talks with the port authority had broken down after six weeks, and that
its members would not return until the rosters were withdrawn.</p>
<p>A spokesman for the port authority said contingency plans were in place and that ferries were
not affected by the stoppage.</p>
</article>
<aside><h3>Most read</h3><ol><li>Ten recipes for winter</li><li>Transfer rumours</li></ol></aside>
<footer>Copyright 2024 Baltic Courier. All rights reserved. Privacy policy. Terms.</footer>
</body></html>
"""


def test_a_folder_gives_ids_below_it_and_sections(tmp_path: Path):
    for name in ["business/001.txt", "business/002.md", "sport/001.txt", "top.txt", "sport/deep/x y.html",
                 "sport/notes.pdf", ".git/HEAD.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("Some text.")
    files = {f.document_id: f for f in find_article_files([tmp_path])}
    assert set(files) == {"business/001", "business/002", "sport/001", "top", "sport/deep/x-y"}
    assert files["business/001"].section == "business" and files["top"].section is None
    assert files["sport/deep/x-y"].section == "sport" and files["sport/deep/x-y"].label == "sport/deep/x y.html"


def test_files_differing_only_in_suffix_keep_it(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "001.txt").write_text("One.")
    (tmp_path / "a" / "001.html").write_text("<p>Two.</p>")
    assert sorted(f.document_id for f in find_article_files([tmp_path])) == ["a/001.html", "a/001.txt"]


def test_a_file_given_alone_keeps_its_stem_and_bad_arguments_stop_at_once(tmp_path: Path):
    assert [f.document_id for f in find_article_files([SEEDS / "000_c4a23f2ead4fdd84.txt"])] == ["000_c4a23f2ead4fdd84"]
    with pytest.raises(NotFoundError):
        list(find_article_files([tmp_path / "missing"]))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "photo.jpg").write_bytes(b"\xff")
    with pytest.raises(InvalidInputError, match="no .txt, .md or .html"):
        list(find_article_files([tmp_path / "empty"]))
    with pytest.raises(InvalidInputError, match="not a .txt"):
        list(find_article_files([tmp_path / "empty" / "photo.jpg"]))


@pytest.mark.parametrize("text, encoding", [
    ("Le café coûte 2,50 € à Nîmes, a déclaré le maire, qui a ajouté que les prix montent. " * 3, "cp1252"),
    ("Le café coûte 2,50 € à Nîmes, a déclaré le maire, qui a ajouté que les prix montent. " * 3, "utf-16"),
    ("The striker, a £15.8m signing, was sacked after failing a drugs test last year. " * 4, "latin-1"),
    ("It cost “£5” – or so they said. " * 3, "cp1252"),
    ("café", "latin-1"),
    ("Правительство объявило о новых мерах поддержки малого бизнеса в регионах страны.", "cp1251"),
    ("政府は地方の中小企業を支援する新たな措置を発表した。関係者によると、来月から実施される。", "shift_jis"),
])
def test_legacy_encodings_are_read(text, encoding):
    assert decode_text(text.encode(encoding), "x.txt") == text


def test_binary_and_oversize_are_refused_and_a_bom_is_dropped():
    with pytest.raises(UnsupportedContentError, match="binary"):
        decode_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "x.png")
    with pytest.raises(DocumentTooLargeError, match="limit"):
        parse_article(b"a" * 101, "x.txt", 100)
    assert decode_text("\ufeffBOM text".encode(), "x.txt") == "BOM text"


def test_a_saved_page_gives_its_main_text_and_metadata():
    article = parse_html(SAVED_PAGE.encode(), "pilots.html")
    assert article.title == "Harbour pilots strike over rosters"
    assert "fourteen cargo ships" in article.text and "ferries were not affected" in " ".join(article.text.split())
    for debris in ("cookies", "Most read", "Copyright", "Subscribe"):
        assert debris not in article.text
    assert article.metadata == {
        "author": "Ewa Nowak", "date": "2024-03-14", "source": "Baltic Courier",
        "url": "https://courier.example/news/pilots-strike",
    }


def test_a_page_without_article_text_is_refused():
    with pytest.raises(InvalidInputError, match="no article text"):
        parse_html(b"<html><head><title>Live</title></head><body><script>load()</script></body></html>", "empty.html")


def test_markdown_front_matter_is_metadata():
    article = parse_markdown(
        "---\ntitle: Pilots strike\ndate: 2024-03-14\nsource: Baltic Courier\nurl: https://x.example/a\n"
        "tags: [ports, strikes]\nnested: {a: 1}\n---\n# Pilots strike\n\nHarbour pilots walked out.\n", "a.md"
    )
    assert article.title == "Pilots strike" and article.text.startswith("# Pilots strike")
    assert article.metadata == {"date": "2024-03-14", "source": "Baltic Courier", "url": "https://x.example/a",
                                "tags": "ports, strikes"}
    assert parse_markdown("No front matter here.", "b.md").metadata == {}
    with pytest.raises(InvalidInputError, match="front matter"):
        parse_markdown("---\ntitle: [unclosed\n---\nText.", "c.md")


def test_read_article_adds_section_and_given_metadata(tmp_path: Path):
    (tmp_path / "tech").mkdir()
    text = "The new handset will cost £199 when it goes on sale in the shops next month, the firm said."
    (tmp_path / "tech" / "001.txt").write_bytes(text.encode("latin-1"))
    [file] = find_article_files([tmp_path])
    article = read_article(file.with_metadata({"source": "BBC"}), 1000)
    assert article.document_id == "tech/001" and article.text == text
    assert article.metadata == {"section": "tech", "source": "BBC"}
