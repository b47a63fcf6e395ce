"""Reading a question before it is answered: whether it asks two things, what each part needs
beside it to stand on its own, and what kind of answer it asks for. Both retrieval (a search per
part) and the answer path (a prompt per part, the answer's type) read questions this way."""

from __future__ import annotations

import re

_QUESTION_WORD = r"(?:what|which|who|whom|whose|when|where|why|how)\b"
# ", and which firm did it buy": a second question joined to the first.
_SECOND_QUESTION = re.compile(rf"(?:,\s*|;\s*|\s+)and\s+(?=(?:\w+\s+){{0,2}}{_QUESTION_WORD})", re.IGNORECASE)


def question_parts(question: str) -> list[str]:
    """The two questions of a question that joins them with "and" before a question word
    ("Who bought the firm, and when did the deal close?"); [] for a question that asks one thing.
    The second part is returned as it is written; ``standing_parts`` gives it its context."""
    pieces = [p.strip(" ,;?") for p in _SECOND_QUESTION.split(question, maxsplit=1)]
    return pieces if len(pieces) == 2 and all(len(p.split()) >= 3 for p in pieces) else []


# A clause boundary followed by a question phrase: ". How many", ", in which month", ", what".
_QUESTION_CLAUSE = re.compile(rf"[.,;:]\s+(?=(?:\w+\s+){{0,2}}{_QUESTION_WORD})", re.IGNORECASE)


def lead_in(first_part: str) -> str:
    """What a question says before it asks: the sentence or clause that names its subject ahead
    of the question phrase ("In the Balco steroid case," / "Adrian Mutu was sacked by Chelsea.");
    "" when the question opens with its question phrase."""
    boundaries = list(_QUESTION_CLAUSE.finditer(first_part))
    if not boundaries:
        return ""
    lead = first_part[: boundaries[-1].start() + 1]
    return lead if len(lead.split()) >= 3 else ""


def standing_parts(parts: list[str]) -> list[str]:
    """Each part as a question that stands on its own: the second, written after an "and", often
    names its subject only by "he" or "the hearing", which the question's lead-in names, so the
    lead-in is put before it."""
    if len(parts) < 2 or not (lead := lead_in(parts[0])):
        return parts
    first, second = parts
    if lead.endswith("."):  # after a sentence, the part starts one
        second = second[:1].upper() + second[1:]
    return [first, f"{lead} {second}"]


_ASKS_AMOUNT = re.compile(r"\bhow\s+(?:many|much)\b|\bwhat\s+(?:percentage|proportion|number|amount|sum|price)\b", re.I)
# "When" asks only before the verb it inverts ("When did …", "When was …"); "When the bank held
# rates, which economist …" opens with a clause of time and asks something else.
_ASKS_TIME = re.compile(
    r"^\s*(?:when\s+(?:did|does|do|is|are|was|were|will|would|has|have|had|can|could|should|might|must)\b"
    r"|in\s+(?:what|which)\s+(?:year|month)\b|(?:what|which)\s+(?:year|month|day|date)\b)", re.I,
)
_ASKS_PLACE = re.compile(r"^\s*(?:where\b|in\s+(?:what|which)\s+(?:city|country|town|place)\b)", re.I)


def asks_for(question: str) -> set[str]:
    """What the question's phrase asks for: "amount" (how many, how much, what percentage),
    "time" (when, in which year), "place" (where, in which city); empty for anything else."""
    patterns = {"amount": _ASKS_AMOUNT, "time": _ASKS_TIME, "place": _ASKS_PLACE}
    return {kind for kind, pattern in patterns.items() if pattern.search(question)}


# What kind of thing a question's phrase asks for, as the sentence selector weighs it: broader
# than asks_for, which verification holds an answer to.
_ASKS_FIGURE = re.compile(
    r"\bhow\s+(?:many|much|long|tall|old|far|big|high|heavy|large|fast|often)\b"
    r"|\bwhat\s+(?:percentage|proportion|number|amount|sum|price|age|score|fee|fine)\b|\bcost\b", re.I,
)
_ASKS_WHEN = re.compile(
    r"\bwhen\s+(?:did|does|do|is|are|was|were|will|would|has|have|had)\b|\b(?:what|which)\s+(?:year|month|day|date)\b", re.I,
)
_ASKS_NAME = re.compile(r"\b(?:who|whom|whose|where)\b|\b(?:which|what)\s+(?!year|month|day|date)\w+", re.I)
_PHRASE_START = re.compile(rf"(?:^|[.,;:?-]\s+|\s)(?={_QUESTION_WORD})", re.IGNORECASE)


def asked_kind(question: str) -> str | None:
    """"figure" (how many, how tall, what … cost), "time" (when did, which year) or "name" (who,
    where, which firm) by the question's last question phrase (after any lead-in); None for
    anything else (why, how did)."""
    starts = list(_PHRASE_START.finditer(question))
    phrase = question[starts[-1].end():] if starts else question
    for kind, pattern in (("figure", _ASKS_FIGURE), ("time", _ASKS_WHEN), ("name", _ASKS_NAME)):
        if pattern.search(phrase):
            return kind
    return None
