"""The judge for citations gold evidence cannot decide: the configured LLM (by default the
embedded model), asked under a JSON schema whether a quote states everything a statement says.

It applies no rule of its own before asking, and none of the answer path's: its verdicts are
counted apart from gold's, and its agreement with gold is measured on citations gold decided
(``rag.evaluation.agreement``), so a reader sees how far to trust the share it decided."""

from __future__ import annotations

import json
from functools import lru_cache

from rag.llm import LLM

JUDGE_PROMPT = (
    "You check whether a quote from a news article supports an answer to a question. Answer "
    '{"supported": true} if the quote states what the answer says, read as an answer to the '
    "question (the quote need not repeat the question's own details); "
    '{"supported": false} if it does not state it or states something else. Reply with JSON only.'
)
_SCHEMA = {"type": "object", "properties": {"supported": {"type": "boolean"}}, "required": ["supported"]}


class SupportJudge:
    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self.asked = 0
        self._cached = lru_cache(maxsize=8192)(self._judge)

    def supports(self, quote: str, statement: str, question: str = "") -> bool:
        """Whether the quote supports the statement as an answer to the question (a short
        answer, "Alan Wiley", says something only beside its question); asked once per
        distinct triple."""
        if not quote.strip() or not statement.strip():
            return False
        return self._cached(" ".join(quote.split()), " ".join(statement.split()), " ".join(question.split()))

    def _judge(self, quote: str, statement: str, question: str) -> bool:
        self.asked += 1
        asked = f"Question: {question}\n\n" if question else ""
        messages = [
            {"role": "system", "content": JUDGE_PROMPT},
            {"role": "user", "content": f"{asked}Quote: {quote}\n\nAnswer: {statement}"},
        ]
        raw = self.llm.chat_json(messages, _SCHEMA, "support_verdict")
        try:
            return json.loads(raw).get("supported") is True
        except (json.JSONDecodeError, AttributeError):
            return False
