"""Articles in: loading files, cleaning page debris, chunking with exact character offsets."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from llama_index.core.node_parser import SentenceSplitter

from rag.errors import (
    DocumentTooLargeError,
    InvalidInputError,
    NotFoundError,
    UnsupportedContentError,
)
from rag.models import Chunk

TEXT_SUFFIXES = {".txt", ".md"}
DOCUMENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PARAGRAPH_BREAK = "\n\n"

# Page debris seen in scraped news: share/follow prompts, a lone emoji, a dateline cut in half.
_CALL_TO_ACTION = re.compile(
    r"^(follow|subscribe( to)?|sign up( for)?|share( this)?|read more|click here|"
    r"download (our|the) app|advertisement|watch:?|listen:?|related:?)\b",
    re.IGNORECASE,
)
_DATELINE_FRAGMENT = re.compile(r"^[A-Z][A-Z.,'’ -]{0,30}[—–-]?$")


@dataclass(frozen=True)
class CleanText:
    text: str
    sha256: str


def clean_text(raw: str) -> CleanText:
    """Normalise unicode and whitespace and drop page debris, keeping paragraphs.

    The result is the document's canonical text: every offset the service reports refers
    to it, so it must be deterministic for identical input.
    """
    text = unicodedata.normalize("NFKC", raw).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = []
    for line in text.split("\n"):
        line = " ".join(line.split())
        if line and not _is_debris(line):
            paragraphs.append(line)
    canonical = PARAGRAPH_BREAK.join(paragraphs)
    return CleanText(canonical, hashlib.sha256(canonical.encode("utf-8")).hexdigest())


def _is_debris(line: str) -> bool:
    if not any(ch.isalnum() for ch in line):
        return True  # lone emoji, dashes, bullets
    words = line.split()
    if len(words) <= 6 and _CALL_TO_ACTION.match(line) and not line.endswith((".", "?", "!")):
        return True
    # "UJ", "MOSCOW —", "KYIV, Ukraine —": a dateline whose story text was cut away.
    dangling_dash = line.endswith(("—", "–")) and len(words) <= 4
    return dangling_dash or (len(words) <= 3 and bool(_DATELINE_FRAGMENT.match(line)))


def validate_document_id(document_id: str) -> str:
    if not DOCUMENT_ID_PATTERN.match(document_id):
        raise InvalidInputError(
            f"invalid document id {document_id!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return document_id


def decode_article(data: bytes, name: str, max_bytes: int) -> str:
    """Bytes of an uploaded or read file to text, refusing what is not an article."""
    if len(data) > max_bytes:
        raise DocumentTooLargeError(
            f"{name} is {len(data):,} bytes; the limit is {max_bytes:,} (RAG_MAX_DOCUMENT_BYTES)"
        )
    if b"\x00" in data:
        raise UnsupportedContentError(f"{name} is a binary file, not UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedContentError(
            f"{name} is not valid UTF-8 text (byte {exc.start}); convert it to UTF-8 first"
        ) from None


def default_title(canonical: str, limit: int = 90) -> str:
    first = canonical.split(PARAGRAPH_BREAK, 1)[0]
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def iter_article_files(paths: list[Path]) -> Iterator[Path]:
    """Expand files and folders into the .txt/.md files to ingest, refusing empty ones."""
    for path in paths:
        if not path.exists():
            raise NotFoundError(f"{path}: no such file or folder")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
            if not found:
                raise InvalidInputError(f"{path}: folder holds no .txt or .md files")
            yield from found
        elif path.suffix in TEXT_SUFFIXES:
            yield path
        else:
            raise InvalidInputError(f"{path}: not a .txt or .md file")


class Chunker:
    """Sentence-aware chunks sized in embedding-model tokens, each with exact offsets."""

    def __init__(
        self, count_tokens: Callable[[str], list], chunk_size: int, chunk_overlap: int
    ) -> None:
        self._splitter = SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            paragraph_separator=PARAGRAPH_BREAK,
            tokenizer=count_tokens,
        )

    def chunk(self, document_id: str, text: str) -> list[Chunk]:
        chunks: list[Chunk] = []
        cursor = 0
        for piece in self._splitter.split_text(text):
            start = text.find(piece, cursor)
            if start < 0:  # the splitter only cuts and strips, so this means a bug
                raise RuntimeError(f"chunk of {document_id} is not a span of its text")
            end = start + len(piece)
            index = len(chunks)
            chunks.append(
                Chunk(
                    chunk_id=chunk_id(document_id, index, piece),
                    document_id=document_id,
                    index=index,
                    start=start,
                    end=end,
                    text=piece,
                )
            )
            # Overlapping chunks start before the previous end, never before its start.
            cursor = start + 1
        return chunks


def chunk_id(document_id: str, index: int, text: str) -> str:
    """Names the chunk's text, not only its place: an id never comes to stand for other words when
    an article is re-ingested changed, so readers may keep a chunk's text by its id."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"{document_id}#{index:04d}-{digest}"
