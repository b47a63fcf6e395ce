"""Conversations: checking chat messages and turning a follow-up into a standalone question
(retrieval only sees one question, so "And how many surrendered?" must carry its subject)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Literal

from rag.errors import InvalidInputError, RagError
from rag.llm import LLM

log = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant"]
HISTORY_MESSAGES = 6  # the turns a rewrite looks back on
HISTORY_CHARS = 400  # of each, so a long answer does not crowd out the question

REWRITE_PROMPT = (
    "Rewrite the user's last message as one standalone question about the news, resolving "
    "pronouns and references (who, what, where) from the conversation. Keep its meaning; do not "
    'answer it. Reply in JSON: {"question": "..."}'
)
_REWRITE_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string", "maxLength": 300}},
    "required": ["question"],
}


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


def check_messages(messages: list[ChatMessage]) -> list[ChatMessage]:
    """The conversation, refused with a clear reason if it cannot be answered."""
    if not messages:
        raise InvalidInputError("messages is empty: send at least one user message")
    last = messages[-1]
    if last.role != "user":
        raise InvalidInputError(f"the last message must come from the user, not the {last.role}")
    for number, message in enumerate(messages):
        if message.role == "user" and not message.content.strip():
            raise InvalidInputError(f"messages.{number}.content is empty")
    return messages


def standalone_question(llm: LLM, messages: list[ChatMessage]) -> str:
    """The last user message, rewritten from the history when there is one."""
    question = " ".join(messages[-1].content.split())
    history = [m for m in messages[:-1] if m.role in ("user", "assistant") and m.content.strip()]
    if not history:
        return question
    turns = "\n".join(
        f"{m.role}: {' '.join(m.content.split())[:HISTORY_CHARS]}" for m in history[-HISTORY_MESSAGES:]
    )
    prompt = [
        {"role": "system", "content": REWRITE_PROMPT},
        {"role": "user", "content": f"Conversation:\n{turns}\n\nLast message: {question}"},
    ]
    try:
        rewritten = json.loads(llm.chat_json(prompt, _REWRITE_SCHEMA, "standalone_question"))["question"]
    except (json.JSONDecodeError, KeyError, TypeError):
        log.info("follow-up rewrite was malformed; using the message as it is")
        return question
    except RagError:
        raise
    rewritten = " ".join(str(rewritten).split())
    return rewritten or question
