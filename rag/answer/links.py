"""Links in an answer. Articles are untrusted input: one can ask the model to end its answer with
a markdown image whose address carries the question to someone else's server, or to send the
reader to a login page. A chat client that renders markdown fetches such an image unasked. So the
statements the answer path verified are checked once more, as text a client might render:

- a statement holding markdown link or image markup (``[text](address)``, ``![alt](address)``)
  is withheld, whatever its evidence says: an answer is plain text with ``[n]`` markers;
- a statement holding a web address (``http://…``, ``https://…``, ``www.…``) that no retrieved
  passage states verbatim is withheld: the articles did not give the reader that address.

The citations that only withheld statements used go with them, and the others are numbered again
in order of use, so the answer's ``[n]`` markers and ``citations`` still match. When nothing is
left, the answer abstains."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from rag.answer import NOT_FOUND, AnswerEvent
from rag.models import Answer, Passage

_MARKUP = re.compile(r"!?\[[^\]\n]*\]\(\s*[^)\s]+[^)\n]*\)")
_ADDRESS = re.compile(r"(?:\bhttps?://|\bwww\.)[^\s<>\"'“”‘’()\[\]]+", re.IGNORECASE)
# The [n] markers a rendered statement ends with, before its stop.
_MARKERS = re.compile(r"((?:\[\d+\])+)([.!?])$")
_REF = re.compile(r"\[(\d+)\]")


def unstated_links(statement: str, passages: list[Passage]) -> list[str]:
    """The markup and the addresses in ``statement`` that the rules above withhold."""
    stated = "\n".join(passage.text for passage in passages)
    markup = [m.group() for m in _MARKUP.finditer(statement)]
    addresses = (m.group().rstrip(".,;:!?") for m in _ADDRESS.finditer(statement))
    return markup + [address for address in addresses if address not in stated]


class _Renumbering:
    """Citation numbers in order of first use among the statements kept."""

    def __init__(self) -> None:
        self.refs: dict[int, int] = {}  # as the answer path numbered -> as shown

    def apply(self, piece: str) -> str:
        markers = _MARKERS.search(piece.rstrip())
        if not markers:
            return piece
        for ref in _REF.findall(markers.group(1)):
            self.refs.setdefault(int(ref), len(self.refs) + 1)
        renumbered = "".join(f"[{self.refs[int(ref)]}]" for ref in _REF.findall(markers.group(1)))
        return piece[: markers.start(1)] + renumbered + piece[markers.end(1) :]


def without_unstated_links(events: Iterable[AnswerEvent], passages: list[Passage]) -> Iterator[AnswerEvent]:
    """The answer path's events (pieces of verified text, then the Answer) with every statement
    that carries a link the rules withhold left out, and the Answer made to match."""
    renumbering = _Renumbering()
    shown: list[str] = []
    withheld: list[str] = []
    for event in events:
        if isinstance(event, Answer):
            yield from _matching(event, shown, withheld, renumbering)
            return
        if event == NOT_FOUND or not (links := unstated_links(event, passages)):
            piece = renumbering.apply(event)
            piece = piece.lstrip() if not shown else piece  # the first statement shown leads
            shown.append(piece)
            yield piece
        else:
            withheld += links


def _matching(answer: Answer, shown: list[str], withheld: list[str], renumbering: _Renumbering) -> Iterator[AnswerEvent]:
    if not withheld:
        yield answer
        return
    if not renumbering.refs:
        reason = f"every statement of the model's answer linked to {withheld[0]!r}, which the articles do not give"
        yield NOT_FOUND
        yield answer.model_copy(update={
            "answer": NOT_FOUND, "abstained": True, "abstain_reason": reason, "citations": [],
        })
        return
    citations = sorted(
        (c.model_copy(update={"ref": renumbering.refs[c.ref]}) for c in answer.citations if c.ref in renumbering.refs),
        key=lambda c: c.ref,
    )
    yield answer.model_copy(update={"answer": "".join(shown), "citations": citations})
