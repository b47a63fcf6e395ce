"""Gold evidence as spans of the documents a system cites: where each key fact's evidence
sits, so a citation or a retrieved passage is checked against text a person marked, not
against the system's own idea of support.

A gold text counts wherever it occurs: in the document the question names and in any other
that holds the same words (archives carry duplicates and re-published copies), compared after
whitespace and quote normalisation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rag.errors import NotFoundError
from rag.evaluation.dataset import EvalQuestion, GoldEvidence
from rag.models import Citation
from rag.text import find_all


@dataclass(frozen=True)
class Span:
    document_id: str
    start: int
    end: int

    def overlaps(self, other: Span) -> bool:
        return self.document_id == other.document_id and self.start < other.end and other.start < self.end

    def covers(self, other: Span) -> bool:
        return self.document_id == other.document_id and self.start <= other.start and other.end <= self.end


@dataclass(frozen=True)
class GoldSpan:
    fact: str
    span: Span


class DocumentTexts:
    """Canonical document texts read through a system (its API or service), once each; a
    document the system does not know reads as empty."""

    def __init__(self, read: Callable[[str], str]) -> None:
        self._read = read
        self._texts: dict[str, str] = {}

    def __call__(self, document_id: str) -> str:
        if document_id not in self._texts:
            try:
                self._texts[document_id] = self._read(document_id) if document_id else ""
            except NotFoundError:
                self._texts[document_id] = ""
        return self._texts[document_id]


class GoldEvidenceSpans:
    """One question's gold evidence, located in whatever document is asked about."""

    def __init__(self, question: EvalQuestion, texts: DocumentTexts) -> None:
        self.evidence: list[GoldEvidence] = question.evidence
        self.document_ids = {e.document_id for e in question.evidence}
        self._texts = texts
        self._found: dict[str, list[GoldSpan]] = {}

    def in_document(self, document_id: str) -> list[GoldSpan]:
        """Every occurrence of every gold text of the question in this document."""
        if document_id not in self._found:
            text = self._texts(document_id)
            self._found[document_id] = [
                GoldSpan(e.fact, Span(document_id, start, end))
                for e in self.evidence for start, end in find_all(text, e.text)
            ] if text else []
        return self._found[document_id]

    def missing(self) -> list[GoldEvidence]:
        """Evidence not found in the document it names: a question set out of step with its
        corpus, which would make every citation of that fact look wrong."""
        return [e for e in self.evidence
                if not any(g.fact == e.fact for g in self.in_document(e.document_id))]


def quoted_span(citation: Citation, texts: DocumentTexts) -> Span | None:
    """Where the citation's quote stands in its document: at its offsets when they hold it,
    else wherever the quote's words occur; None when the document does not hold the quote."""
    text = texts(citation.document_id)
    if not text or not citation.quote.strip():
        return None
    if text[citation.start : citation.end] == citation.quote:
        return Span(citation.document_id, citation.start, citation.end)
    found = find_all(text, citation.quote)
    return Span(citation.document_id, *found[0]) if found else None


def is_verbatim(citation: Citation, texts: DocumentTexts) -> bool:
    """The quote is exactly the document's text at the citation's offsets."""
    text = texts(citation.document_id)
    return bool(text) and text[citation.start : citation.end] == citation.quote
