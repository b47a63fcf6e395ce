"""A question set's format (one JSON object per line, e.g. ``eval/questions.jsonl``) and its
loader: per question its key facts, in accepted wordings, and per key fact gold evidence, text
copied verbatim from the article that states it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, model_validator

from rag.errors import InvalidInputError, NotFoundError
from rag.text import contains_phrase

Category = Literal["single", "both", "multi", "conflict", "unanswerable"]


class KeyFact(BaseModel):
    fact: str = Field(description="What the answer must state.")
    variants: list[str] = Field(min_length=1, description="Accepted wordings; any one counts.")

    def found_in(self, text: str) -> bool:
        """The fact or a variant as whole words, case, quotes and inflection aside ("economists"
        for "economist", not "economy"): the fact's own wording always counts, even where the
        variants list only shorter ones ("Egypt" beside "Egyptian")."""
        return any(contains_phrase(text, wording) for wording in (self.fact, *self.variants))


class GoldEvidence(BaseModel):
    fact: str
    document_id: str
    text: str = Field(description="Text of the article, copied verbatim (whitespace and quote style aside).")


class EvalQuestion(BaseModel):
    id: str
    category: Category
    question: str
    answerable: bool
    reference_answer: str
    key_facts: list[KeyFact]
    evidence: list[GoldEvidence]

    @model_validator(mode="after")
    def _consistent(self) -> EvalQuestion:
        if self.answerable != bool(self.key_facts):
            raise ValueError("answerable questions need key facts; unanswerable ones none")
        facts = {f.fact for f in self.key_facts}
        if facts != {e.fact for e in self.evidence}:
            raise ValueError("every key fact needs gold evidence, and evidence must name a key fact")
        return self


Record = TypeVar("Record", bound=BaseModel)


def load_jsonl(path: Path, model: type[Record], what: str) -> list[Record]:
    """One ``model`` per non-blank line; a bad line is an error naming the file and line."""
    if not path.is_file():
        raise NotFoundError(f"{path}: no such {what} file")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(model.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise InvalidInputError(f"{path}:{number}: {exc}") from None
    if not records:
        raise InvalidInputError(f"{path}: no {what}s")
    return records


def load_questions(path: Path) -> list[EvalQuestion]:
    return load_jsonl(path, EvalQuestion, "question")
