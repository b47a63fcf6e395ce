"""Search filters over article metadata, applied alike by Chroma (a ``where`` clause) and by the
keyword index (a test on each document's metadata), so both sides of hybrid search see the same
articles.

An article's metadata is copied onto each of its chunks under a prefix, away from LlamaIndex's own
keys, with its date also as a day number (20050131): Chroma compares numbers only.
"""

from __future__ import annotations

from datetime import date

from rag.models import MetadataValue, SearchFilter

METADATA_PREFIX = "meta_"
DATE_KEY = "date"
DAY_KEY = "_day"  # beside the prefix: meta__day, never a user's key once the prefix is stripped


def day_number(value: MetadataValue | date | None) -> int | None:
    """An ISO date (or the date part of an ISO timestamp) as YYYYMMDD, else None."""
    if isinstance(value, date):
        return value.year * 10000 + value.month * 100 + value.day
    if not isinstance(value, str):
        return None
    try:
        return day_number(date.fromisoformat(value.strip()[:10]))
    except ValueError:
        return None


def chunk_fields(metadata: dict[str, MetadataValue]) -> dict[str, MetadataValue]:
    """An article's metadata as fields stored on each of its chunks."""
    fields = {METADATA_PREFIX + key: value for key, value in metadata.items()}
    day = day_number(metadata.get(DATE_KEY))
    if day is not None:
        fields[METADATA_PREFIX + DAY_KEY] = day
    return fields


def article_metadata(chunk_metadata: dict) -> dict[str, MetadataValue]:
    """The article's metadata back from a chunk's stored fields."""
    return {
        key[len(METADATA_PREFIX):]: value for key, value in chunk_metadata.items()
        if key.startswith(METADATA_PREFIX) and key != METADATA_PREFIX + DAY_KEY
    }


def chroma_where(search: SearchFilter | None) -> dict | None:
    """The filter as a Chroma ``where`` clause on chunk metadata; None when it lets all through."""
    if search is None:
        return None
    clauses: list[dict] = []
    if search.document_ids is not None:
        clauses.append({"document_id": {"$in": search.document_ids}})
    clauses += [{METADATA_PREFIX + key: value} for key, value in sorted(search.where.items())]
    if search.date_from:
        clauses.append({METADATA_PREFIX + DAY_KEY: {"$gte": day_number(search.date_from)}})
    if search.date_to:
        clauses.append({METADATA_PREFIX + DAY_KEY: {"$lte": day_number(search.date_to)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def matches(search: SearchFilter | None, document_id: str, metadata: dict[str, MetadataValue]) -> bool:
    """Whether an article passes the filter: the same test as chroma_where, in Python."""
    if search is None:
        return True
    if search.document_ids is not None and document_id not in search.document_ids:
        return False
    if any(metadata.get(key) != value for key, value in search.where.items()):
        return False
    if search.date_from or search.date_to:
        day = day_number(metadata.get(DATE_KEY))
        if day is None:
            return False
        if search.date_from and day < day_number(search.date_from):
            return False
        if search.date_to and day > day_number(search.date_to):
            return False
    return True
