"""Articles as users keep them: folders of .txt, .md and saved .html pages, nested, in whatever
encoding the file was saved in. Turns files into ArticleInput (text, id, title, metadata); the
cleaning and chunking of that text are rag.documents' job.

Ids come from the path below the folder given (``business/001``), so one archive's files keep
distinct, readable ids; a file given alone keeps its stem. The first folder level below the root
is kept as the article's ``section``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

import charset_normalizer
import frontmatter
import trafilatura

from rag.errors import DocumentTooLargeError, InvalidInputError, NotFoundError, UnsupportedContentError
from rag.models import ArticleInput, MetadataValue

HTML_SUFFIXES = {".html", ".htm"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
ARTICLE_SUFFIXES = {".txt", *MARKDOWN_SUFFIXES, *HTML_SUFFIXES}
# Front matter keys read as the article's own fields; other scalar keys are kept as metadata too.
FRONT_MATTER_TITLE = "title"
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
# Below these, text that is not UTF-8 is read as Windows-1252 rather than detected (decode_text).
DETECTABLE_BYTES = 64
DETECTABLE_NON_ASCII_SHARE = 0.02


@dataclass(frozen=True)
class ArticleFile:
    """A file to ingest, with the id and section its place in the archive gives it."""

    path: Path
    document_id: str
    section: str | None = None
    label: str = ""  # how reports name the file: its path below the folder given
    metadata: dict[str, MetadataValue] | None = None  # given for every file, over the file's own

    def with_metadata(self, metadata: dict[str, MetadataValue]) -> ArticleFile:
        return replace(self, metadata={**(self.metadata or {}), **metadata})


def find_article_files(paths: list[Path]) -> Iterator[ArticleFile]:
    """Expand files and folders into the articles to ingest. A missing path, a folder with no
    articles or a file of another type is the caller's mistake and stops before any work; files of
    other types inside a folder (images, notes) are passed over."""
    for path in paths:
        if not path.exists():
            raise NotFoundError(f"{path}: no such file or folder")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in ARTICLE_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise InvalidInputError(f"{path}: folder holds no .txt, .md or .html files")
            yield from _with_unique_ids(path, found)
        elif path.suffix.lower() in ARTICLE_SUFFIXES:
            yield ArticleFile(path, slug(path.stem), label=path.name)
        else:
            raise InvalidInputError(f"{path}: not a .txt, .md or .html file")


def _with_unique_ids(root: Path, files: list[Path]) -> Iterator[ArticleFile]:
    """Ids from the path below root without its suffix; where two files differ only in their
    suffix (001.txt beside 001.html), each keeps its suffix."""
    relative = [file.relative_to(root) for file in files]
    stems = [relative_id(rel.with_suffix("")) for rel in relative]
    taken = {stem: stems.count(stem) for stem in stems}
    for file, rel, stem in zip(files, relative, stems):
        document_id = stem if taken[stem] == 1 else relative_id(rel)
        section = slug(rel.parts[0]) if len(rel.parts) > 1 else None
        yield ArticleFile(file, document_id, section, label=rel.as_posix())


def relative_id(relative: Path) -> str:
    return "/".join(slug(part) for part in relative.parts)


def slug(name: str, empty: str = "x") -> str:
    """A path segment as an id segment: accents folded, other characters outside letters, digits,
    '.', '_' and '-' replaced by '-'; ``empty`` when nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE_ID_CHARS.sub("-", ascii_name).strip("-._")
    return cleaned[:128] or empty


def read_article(file: ArticleFile, max_bytes: int) -> ArticleInput:
    data = file.path.read_bytes()
    article = parse_article(data, file.path.name, max_bytes)
    metadata = dict(article.metadata or {})
    if file.section:
        metadata.setdefault("section", file.section)
    metadata.update(file.metadata or {})
    return ArticleInput(text=article.text, document_id=file.document_id, title=article.title, metadata=metadata)


def parse_article(data: bytes, name: str, max_bytes: int) -> ArticleInput:
    """A file's bytes (read from disk or uploaded) as an article, by its name's suffix: a saved
    HTML page's main text and metadata, Markdown's front matter, or plain text."""
    if len(data) > max_bytes:
        raise DocumentTooLargeError(
            f"{name} is {len(data):,} bytes; the limit is {max_bytes:,} (RAG_MAX_DOCUMENT_BYTES)"
        )
    suffix = Path(name).suffix.lower()
    if suffix in HTML_SUFFIXES:
        return parse_html(data, name)
    text = decode_text(data, name)
    if suffix in MARKDOWN_SUFFIXES:
        return parse_markdown(text, name)
    return ArticleInput(text=text)


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 (with or without a byte-order mark) when it decodes. Otherwise, text that is mostly
    ASCII with a few other bytes (a pound sign, a curly quote) or too short to tell is read as
    Windows-1252, the legacy encoding of Western web and news text (the HTML standard's fallback
    for latin-1 too): a statistical detector has too little to go on there and guesses Japanese or
    Central European code pages for a lone '£'. Text with many non-ASCII bytes (Cyrillic, Greek,
    CJK in a legacy code page) is read in the encoding charset-normalizer finds. Binary is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark holds NULs
        return data.decode("utf-16")
    if b"\x00" in data:
        raise UnsupportedContentError(f"{name} is a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        not_utf8_at = exc.start
    non_ascii = sum(byte >= 0x80 for byte in data)
    if len(data) < DETECTABLE_BYTES or non_ascii / len(data) < DETECTABLE_NON_ASCII_SHARE:
        return data.decode("cp1252", errors="strict") if _is_cp1252(data) else data.decode("latin-1")
    for match in charset_normalizer.from_bytes(data):
        if not match.encoding.startswith(("utf_16", "utf_32")):  # without a BOM, a misreading
            return str(match)
    raise UnsupportedContentError(
        f"{name} is not text in any encoding recognised (not UTF-8 at byte {not_utf8_at})"
    )


def _is_cp1252(data: bytes) -> bool:
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:  # the five bytes Windows-1252 leaves undefined
        return False
    return True


def parse_markdown(text: str, name: str) -> ArticleInput:
    """Markdown with optional YAML front matter (title, date, source, url, author ...)."""
    try:
        post = frontmatter.loads(text)
    except Exception as exc:  # the YAML library raises several types for a malformed block
        raise InvalidInputError(f"{name}: front matter is not valid YAML ({type(exc).__name__})") from None
    metadata: dict[str, MetadataValue] = {}
    for key, value in post.metadata.items():
        if key == FRONT_MATTER_TITLE:
            continue
        scalar = metadata_value(value)
        if scalar is not None:
            metadata[str(key).lower()] = scalar
    title = post.metadata.get(FRONT_MATTER_TITLE)
    return ArticleInput(text=post.content, title=str(title) if title else None, metadata=metadata)


def parse_html(data: bytes, name: str) -> ArticleInput:
    """The main text of a saved page, without navigation, adverts and comments, and its title,
    author, date, site and URL, as trafilatura extracts them."""
    try:
        extracted = trafilatura.bare_extraction(
            data, with_metadata=True, include_comments=False, include_tables=False, favor_precision=True,
        )
    except Exception as exc:  # lxml raises on pages it cannot parse at all
        raise UnsupportedContentError(f"{name}: cannot parse the HTML ({type(exc).__name__})") from None
    if extracted is None or not (extracted.text or "").strip():
        raise InvalidInputError(f"{name}: no article text found in the page")
    metadata: dict[str, MetadataValue] = {}
    for key, value in (("author", extracted.author), ("date", extracted.date),
                       ("source", extracted.sitename), ("url", extracted.url)):
        scalar = metadata_value(value)
        if scalar is not None:
            metadata[key] = scalar
    return ArticleInput(text=extracted.text, title=extracted.title or None, metadata=metadata)


def metadata_value(value: object) -> MetadataValue | None:
    """A front-matter or page value as stored metadata: scalars as they are, dates as ISO dates,
    lists of names joined; nested structures are dropped."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ", ".join(value) or None
    return None
