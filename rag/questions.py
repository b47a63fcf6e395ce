"""Reading a question before it is answered: whether it asks two things, what each part needs
beside it to stand on its own, and what kind of answer it asks for. Both retrieval (a search per
part) and the answer path (a prompt per part, the answer's type) read questions this way."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rag.text import content_terms

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
    """Each part as a question that stands on its own. The second, written after an "and", often
    names its subject only by "he" or "the hearing", which the question's lead-in names, so the
    lead-in is put before it; a second part that is only a question phrase ("and on what day?")
    asks about the first part's subject and event, so it is asked after the first part."""
    if len(parts) < 2:
        return parts
    first, second = parts
    if not content_terms(second) - _ASKING_TERMS:
        return [first, f"{first}: {second}"]
    if not (lead := lead_in(first)):
        # "… and how much did it pay?": the pronoun points into the first part.
        return [first, f"{first}: {second}"] if _PRONOUN.search(second) else parts
    if lead.endswith("."):  # after a sentence, the part starts one
        second = second[:1].upper() + second[1:]
    return [first, f"{lead} {second}"]


_PRONOUN = re.compile(r"\b(?:he|she|it|they|him|her|them|his|its|their)\b", re.IGNORECASE)
# The words of a bare question phrase ("on what day", "for how long", "in which city").
_ASKING_TERMS = content_terms(
    "day date year month week time hour season place city country town venue amount number much "
    "many long often far cost price percentage"
)


# What kind of thing a question's phrase asks for. One reading serves the sentence selector (a
# sentence holding that kind of thing gains a little) and verification (an answer to a part
# that asks for a figure must hold one).
_ASKS_FIGURE = re.compile(
    r"\bhow\s+(?:many|much|long|tall|old|far|big|high|heavy|large|fast|often)\b"
    r"|\bwhat\s+(?:percentage|proportion|number|amount|sum|price|age|score|fee|fine)\b|\bcost\b", re.I,
)
_ASKS_TIME = re.compile(
    r"\bwhen\s+(?:did|does|do|is|are|was|were|will|would|has|have|had|can|could|should|might|must)\b"
    r"|\b(?:what|which)\s+(?:year|month|day|date)\b", re.I,
)
_ASKS_PLACE = re.compile(r"\bwhere\b|\b(?:what|which)\s+(?:city|country|town|place|venue|stadium)\b", re.I)
_ASKS_NAME = re.compile(r"\b(?:who|whom|whose)\b|\b(?:which|what)\s+(?!year|month|day|date)\w+", re.I)
_PHRASE_START = re.compile(rf"(?:^|[.,;:?-]\s+|\s)(?={_QUESTION_WORD})", re.IGNORECASE)

AskedKind = Literal["figure", "time", "place", "name"]


def asked_kind(question: str) -> AskedKind | None:
    """"figure" (how many, how tall, what … cost), "time" (when did, which year), "place"
    (where, in which city) or "name" (who, which firm), read from the question's last question
    phrase (after any lead-in: "When the bank held rates, which economist …" asks a name); None
    for anything else (why, how did)."""
    starts = list(_PHRASE_START.finditer(question))
    phrase = question[starts[-1].end():] if starts else question
    for kind, pattern in (("figure", _ASKS_FIGURE), ("time", _ASKS_TIME), ("place", _ASKS_PLACE),
                          ("name", _ASKS_NAME)):
        if pattern.search(phrase):
            return kind  # type: ignore[return-value]
    return None


@dataclass(frozen=True)
class PartPlan:
    """One thing a question asks: as written, as a question that stands on its own (the
    lead-in put before a second part), and the kind of thing it asks for."""

    asked: str
    standing: str
    kind: AskedKind | None
    # The words an answer's evidence must bear on: the part as written, or, for a part that is
    # only a question phrase or points back with a pronoun, the part as it stands (the first
    # part's words name its subject). A lead-in is context, not what the evidence must say.
    checked: str = ""


@dataclass(frozen=True)
class QuestionPlan:
    """A question read once, before anything is retrieved: the one or two things it asks."""

    question: str
    parts: tuple[PartPlan, ...]

    @property
    def two_part(self) -> bool:
        return len(self.parts) > 1


def plan_question(question: str) -> QuestionPlan:
    parts = question_parts(question)
    if not parts:
        return QuestionPlan(question, (PartPlan(question, question, asked_kind(question), question),))
    first = parts[0]
    return QuestionPlan(question, tuple(
        PartPlan(asked, standing, asked_kind(standing),
                 checked=standing if standing.startswith(f"{first}: ") else asked)
        for asked, standing in zip(parts, standing_parts(parts), strict=True)
    ))
