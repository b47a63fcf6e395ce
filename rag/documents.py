"""Articles' text: cleaning page debris, document ids, chunking with exact character offsets."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from llama_index.core.node_parser import SentenceSplitter

from rag.errors import InvalidInputError
from rag.models import Chunk
from rag.text import sentences

# Segments of letters, digits, '.', '_' and '-', each starting with a letter or digit, joined by
# '/': an archive's path below its root (business/001), never '..' or an absolute path.
DOCUMENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){0,7}$")
MAX_DOCUMENT_ID_CHARS = 256
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
    text = unicodedata.normalize("NFKC", raw.replace("\x00", "")).replace("\r\n", "\n").replace("\r", "\n")
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
    # "UJ", "LONDON —", "PARIS, France —": a dateline whose story text was cut away.
    dangling_dash = line.endswith(("—", "–")) and len(words) <= 4
    return dangling_dash or (len(words) <= 3 and bool(_DATELINE_FRAGMENT.match(line)))


def validate_document_id(document_id: str) -> str:
    if len(document_id) > MAX_DOCUMENT_ID_CHARS or not DOCUMENT_ID_PATTERN.match(document_id):
        raise InvalidInputError(
            f"invalid document id {document_id!r}: use letters, digits, '.', '_' or '-', starting "
            "with a letter or digit, in up to 8 parts joined by '/' (at most 256 characters)"
        )
    return document_id


def default_title(canonical: str, limit: int = 90) -> str:
    first = canonical.split(PARAGRAPH_BREAK, 1)[0]
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def sentence_pieces(text: str) -> list[str]:
    """The text cut at the sentence boundaries of rag.text (the splitter the answer path and the
    eval use), each piece keeping the whitespace after it, so the pieces join back to the text."""
    starts = [start for start, _ in sentences(text)]
    if not starts:
        return [text] if text else []
    cuts = [0] + starts[1:] + [len(text)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if a < b]


class Chunker:
    """Sentence-aware chunks sized in embedding-model tokens, each with exact offsets: LlamaIndex's
    splitter packs paragraphs, then sentences (rag.text's), then words, into the token budget."""

    def __init__(
        self, count_tokens: Callable[[str], list], chunk_size: int, chunk_overlap: int
    ) -> None:
        self._splitter = SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            paragraph_separator=PARAGRAPH_BREAK,
            tokenizer=count_tokens,
            chunking_tokenizer_fn=sentence_pieces,
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
