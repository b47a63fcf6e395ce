"""What the model wrote: claims ("a statement [1.2][3.1].") pulled out of its reply while it is
still being written."""

from __future__ import annotations

import re

from rag.answer.prompt import NO_ANSWER_REPLY, NumberedSentences
from rag.answer.verify import DraftClaim, sentences

_MARKERS = re.compile(r"(?:\s*\[\s*\d+\s*\.\s*\d+(?:\s*[,;]\s*\d+\s*\.\s*\d+)*\s*\])+")
# What the text after a group of numbers may be while more numbers are still being written.
_MAYBE_MORE_MARKERS = re.compile(r"[,;]?\s*(?:\[[\d.\s,;]*)?")
_SENTENCE_ID = re.compile(r"(\d+)\s*\.\s*(\d+)")


def _last_sentence(text: str) -> str:
    spans = sentences(text)
    return text[spans[-1][0] :] if spans else text


class CitedProseParser:
    """Pulls claims ("a statement [1.2][3.1].") out of the model's reply while it is still
    being written. A claim is complete once its sentence ends after its numbers; numbers in
    the middle of a sentence ("X [1.1] and Y [2.1].") all count for the whole sentence. Text
    that cites nothing is never a claim."""

    def __init__(self, numbered: NumberedSentences) -> None:
        self._numbered = numbered
        self._buffer = ""
        self._position = 0
        self._pieces: list[str] = []  # of the sentence being claimed, without its numbers
        self._ids: list[tuple[int, int]] = []
        self.declined = False

    def feed(self, delta: str) -> list[DraftClaim]:
        self._buffer += delta
        return self._claims(final=False)

    def finish(self) -> list[DraftClaim]:
        return self._claims(final=True) + (self._complete() if self._pieces else [])

    def _claims(self, final: bool) -> list[DraftClaim]:
        if self._buffer.lstrip().upper().startswith(NO_ANSWER_REPLY):
            self.declined = True
            return []
        drafts = []
        for markers in _MARKERS.finditer(self._buffer, self._position):
            rest = self._buffer[markers.end() :].lstrip(" \t")
            if not final and (rest[:1].isdigit() or _MAYBE_MORE_MARKERS.fullmatch(rest)):
                break  # more citation numbers may follow
            piece = self._buffer[self._position : markers.start()]
            # Only the sentence the numbers end is claimed; prose before it cited nothing.
            self._pieces.append(piece if self._pieces else _last_sentence(piece))
            self._ids += [(int(n), int(m)) for n, m in _SENTENCE_ID.findall(markers.group())]
            self._position = markers.end()
            if rest and (rest[0].islower() or rest[0] in "—–-,;"):
                continue  # the sentence goes on past these numbers
            drafts += self._complete()
        return drafts

    def _complete(self) -> list[DraftClaim]:
        statement = re.sub(r"\s+([,;])", r"\1", " ".join(" ".join(self._pieces).split())).strip(" .!?;,:")
        spans = self._numbered.spans
        cited = tuple(spans[number] for number in dict.fromkeys(self._ids) if number in spans)
        self._pieces, self._ids = [], []
        return [DraftClaim(statement, cited)] if statement else []
