"""Links in an answer. Articles are untrusted input: one can ask the model to end its answer with
a markdown image whose address carries the question to someone else's server, or to send the
reader to a login page. A chat client that renders markdown fetches such an image unasked. So the
statements the answer path verified are checked once more, as text a client might render:

- a statement holding markdown link or image markup (``[text](address)``, ``![alt](address)``)
  is withheld, whatever its evidence says: an answer is plain text with ``[n]`` markers;
- a statement holding a web address (``http://…``, ``https://…``, ``www.…``) that no retrieved
  passage states verbatim is withheld: the articles did not give the reader that address.

The pipeline checks each accepted claim's words this way before it is rendered: a claim that
fails is a part not answered, with the reason."""

from __future__ import annotations

import re

from rag.models import Passage

_MARKUP = re.compile(r"!?\[[^\]\n]*\]\(\s*[^)\s]+[^)\n]*\)")
_ADDRESS = re.compile(r"(?:\bhttps?://|\bwww\.)[^\s<>\"'“”‘’()\[\]]+", re.IGNORECASE)


def unstated_links(statement: str, passages: list[Passage]) -> list[str]:
    """The markup and the addresses in ``statement`` that the rules above withhold."""
    stated = "\n".join(passage.text for passage in passages)
    markup = [m.group() for m in _MARKUP.finditer(statement)]
    addresses = (m.group().rstrip(".,;:!?") for m in _ADDRESS.finditer(statement))
    return markup + [address for address in addresses if address not in stated]
