"""The support checker behind citation precision and recall (ALCE's definitions), offline.

ALCE uses an NLI model (TRUE, T5-11B) to ask whether cited text entails a statement. No NLI
model ships on PyPI for offline use here, so the checker asks the configured LLM (by default
the embedded Qwen2.5-1.5B) a yes/no entailment question under a JSON schema, and first applies
three hard rules: every number and every name (capitalised word) in the statement must appear in
the evidence (on the labelled pairs of ``eval/judge_pairs.jsonl`` the 1.5B judge accepted wrong
speakers, days and places: "Trump said…" against a sentence where Vance did), and a statement
that only quotes the evidence, verbatim, after naming an article as its source ("Another
article reports: “…”"), is supported (the 1.5B judge rejects such quotes).
Limits: the judge still accepts some claims the evidence only predicts or calls uncertain, and
a name given in an earlier sentence ("…, he added") is not in the evidence; ``rag eval
--check-judge`` measures its agreement with the labelled pairs. Its verdicts are a fair
comparison between systems judged the same way, not a ground truth."""

from __future__ import annotations

import json
import re
from functools import lru_cache

from rag.support import all_names, content_words, numbers
from rag.llm import LLM

JUDGE_PROMPT = (
    "You check whether a statement is supported by evidence from news articles. Answer "
    '{"supported": true} only if the evidence states everything the statement says; '
    'otherwise {"supported": false}. Reply with JSON only.'
)
_SOURCE_QUOTE = re.compile(
    r"(?:another|the other|one|the|an|each) (?:news )?(?:article|report|source)s? (?:reports|says|said|reported|writes)"
    r":?\s*[“\"](?P<quote>.+)[”\"]\W*",
    re.IGNORECASE | re.DOTALL,
)
# The answer moves a sentence's final stop out of its closing quotes ('had “collapsed”” [2].'),
# so a quoted sentence ending '“collapsed.”' is compared without that stop.
_STOP_BEFORE_CLOSING_QUOTES = re.compile(r"[.!?](?=[”\"’]+$)")


def _as_rendered(text: str) -> str:
    return _STOP_BEFORE_CLOSING_QUOTES.sub("", " ".join(text.split()))


_SCHEMA = {"type": "object", "properties": {"supported": {"type": "boolean"}}, "required": ["supported"]}


class SupportJudge:
    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self._cached = lru_cache(maxsize=4096)(self._judge)

    def supports(self, evidence: list[str], statement: str) -> bool:
        if not evidence:
            return False
        return self._cached(tuple(evidence), statement)

    def _judge(self, evidence: tuple[str, ...], statement: str) -> bool:
        joined = "\n".join(f"- {text}" for text in evidence)
        if not numbers(statement) <= numbers(joined):
            return False
        if not all_names(statement) <= content_words(joined):
            return False
        if quoted := _SOURCE_QUOTE.fullmatch(statement.strip()):
            quote = _as_rendered(quoted.group("quote")).rstrip(".")
            return any(quote in _as_rendered(text) for text in evidence)
        messages = [
            {"role": "system", "content": JUDGE_PROMPT},
            {"role": "user", "content": f"Evidence:\n{joined}\n\nStatement: {statement}"},
        ]
        raw = self.llm.chat_json(messages, _SCHEMA, "support_verdict")
        try:
            return bool(json.loads(raw).get("supported"))
        except (json.JSONDecodeError, AttributeError):
            return False
