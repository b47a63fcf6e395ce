"""What the model wrote: the sentence numbers and the answer of its JSON reply, read while the
reply is still being written, so the answer can be checked and shown the moment its closing
quote arrives."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_NUMBERS = re.compile(r'"sentences"\s*:\s*\[([^\]]*)\]')
_ANSWER = re.compile(r'"answer"\s*:\s*("(?:[^"\\]|\\.)*")')


@dataclass(frozen=True)
class ModelReply:
    """The model's choice, unchecked: the sentences it says state the answer, and the answer."""

    sentences: tuple[int, ...]
    answer: str

    @property
    def declined(self) -> bool:
        return not self.answer.strip() or not self.sentences


class ReplyParser:
    """Feeds on the streamed reply; ``reply`` is set once both fields are complete."""

    def __init__(self) -> None:
        self._buffer = ""
        self.reply: ModelReply | None = None

    def feed(self, delta: str) -> ModelReply | None:
        self._buffer += delta
        if self.reply is None:
            self.reply = _read(self._buffer)
        return self.reply

    def finish(self) -> ModelReply:
        """The reply as far as it could be read; a reply that is not the asked shape declines."""
        return self.reply or _read(self._buffer) or ModelReply((), "")


def _read(text: str) -> ModelReply | None:
    numbers, answer = _NUMBERS.search(text), _ANSWER.search(text)
    if not (numbers and answer):
        return None
    try:
        said = json.loads(answer.group(1))
    except json.JSONDecodeError:
        return None
    chosen = tuple(dict.fromkeys(int(n) for n in re.findall(r"-?\d+", numbers.group(1))))
    return ModelReply(chosen, " ".join(str(said).split()))
