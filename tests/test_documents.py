import pytest

from rag.documents import Chunker, clean_text, default_title, validate_document_id
from rag.errors import InvalidInputError
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


def test_default_title_is_the_first_paragraph_shortened():
    assert default_title("Short headline\n\nBody.") == "Short headline"
    assert default_title("x" * 200).endswith("…") and len(default_title("x" * 200)) == 90


@pytest.mark.parametrize("document_id", ["business/001", "a", "2005/03/report-1.html", "x_y.z-1"])
def test_path_style_ids_are_accepted(document_id):
    assert validate_document_id(document_id) == document_id


@pytest.mark.parametrize("document_id", ["", "/etc/passwd", "../x", "a/../b", "a//b", "a/", ".hidden", "a b", "a/" * 9 + "b"])
def test_ids_that_could_escape_or_mislead_are_refused(document_id):
    with pytest.raises(InvalidInputError, match="invalid document id"):
        validate_document_id(document_id)
