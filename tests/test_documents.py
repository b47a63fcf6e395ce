from pathlib import Path

import pytest

from rag.documents import Chunker, clean_text, decode_article, default_title, iter_article_files
from rag.errors import (
    DocumentTooLargeError,
    InvalidInputError,
    NotFoundError,
    UnsupportedContentError,
)
from tests.conftest import SEEDS


def seed_text(name: str) -> str:
    return (SEEDS / f"{name}.txt").read_text(encoding="utf-8")


def test_clean_drops_the_debris_in_the_seeds():
    first = clean_text(seed_text("000_c4a23f2ead4fdd84")).text
    second = clean_text(seed_text("003_3250ed81d373d9f0")).text
    # A dangling dateline fragment ("UJ") and a lone dash open the first article.
    assert first.startswith("President Vladimir Putin unexpectedly visited")
    assert "🌎" not in second and "Follow World news" not in second
    # Real short paragraphs survive.
    assert "“The plan of our enemy has failed.”" in second


def test_clean_normalises_unicode_and_whitespace_and_keeps_paragraphs():
    cleaned = clean_text("  Héllo\u00a0\u00a0world.\r\n\r\n\tSecond   line.\n👍\nSubscribe to our newsletter\n")
    assert cleaned.text == "Héllo world.\n\nSecond line."
    assert cleaned.sha256 == clean_text("Héllo world.\nSecond line.").sha256


@pytest.mark.parametrize("line", ["KYIV, Ukraine —", "UJ", "—", "🌎", "Follow World news", "Share this"])
def test_debris_lines_are_dropped(line):
    assert clean_text(f"A real sentence.\n{line}\nAnother one.").text == "A real sentence.\n\nAnother one."


def test_every_chunk_is_an_exact_span_of_the_canonical_text(embedder):
    for size, overlap in [(96, 0), (48, 16), (200, 0)]:
        chunker = Chunker(embedder.token_ids, size, overlap)
        for path in SEEDS.glob("*.txt"):
            text = clean_text(path.read_text()).text
            chunks = chunker.chunk(path.stem, text)
            assert len(chunks) >= 2
            for index, chunk in enumerate(chunks):
                assert text[chunk.start : chunk.end] == chunk.text
                assert chunk.index == index and chunk.chunk_id.startswith(f"{path.stem}#{index:04d}-")
            if overlap == 0:  # the chunks cover every sentence, in order
                assert " ".join(c.text for c in chunks).split() == text.split()


def test_chunk_ids_name_their_text(embedder):
    chunker = Chunker(embedder.token_ids, 96, 0)
    first = chunker.chunk("doc", "Dockers struck in Gdansk on Monday.")
    again = chunker.chunk("doc", "Dockers struck in Gdansk on Monday.")
    changed = chunker.chunk("doc", "Dockers struck in Gdynia on Monday.")
    assert first[0].chunk_id == again[0].chunk_id != changed[0].chunk_id


def test_decode_refuses_binary_bad_encoding_and_oversize():
    with pytest.raises(UnsupportedContentError, match="binary"):
        decode_article(b"\x89PNG\x00\x00", "x.png", 100)
    with pytest.raises(UnsupportedContentError, match="UTF-8"):
        decode_article("café".encode("latin-1"), "x.txt", 100)
    with pytest.raises(DocumentTooLargeError, match="limit"):
        decode_article(b"a" * 101, "x.txt", 100)
    assert decode_article("\ufeffBOM text".encode(), "x.txt", 100) == "BOM text"


def test_iter_article_files(tmp_path: Path):
    with pytest.raises(NotFoundError):
        list(iter_article_files([tmp_path / "missing"]))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "photo.jpg").write_bytes(b"\xff")
    with pytest.raises(InvalidInputError, match="no .txt or .md"):
        list(iter_article_files([tmp_path / "empty"]))
    assert [p.name for p in iter_article_files([SEEDS])] == sorted(p.name for p in SEEDS.glob("*.txt"))


def test_default_title_is_the_first_paragraph_shortened():
    assert default_title("Short headline\n\nBody.") == "Short headline"
    assert default_title("x" * 200).endswith("…") and len(default_title("x" * 200)) == 90
