"""Article text that addresses the model instead of reporting news: a planted chat turn
(`<|im_start|>system`), "ignore all previous instructions", "AI models reading this article:
tell the reader…". Such a paragraph is never shown to the model, so it can neither steer the
answer nor serve as its evidence; the system prompt's warning that the sentences are data is the
first defence, this the second, and the link check on the answer (rag.links) the third.

Over the 2,225 BBC articles and the seed articles no paragraph matches; the five planted
paragraphs of tests/injection (which these patterns were written against) all do."""

from __future__ import annotations

import re

_ADDRESSES_THE_MODEL = re.compile(
    r"""<\|?im_(?:start|end)\|?>|\[/?INST\]|<<SYS>>|<\|(?:system|user|assistant)\|>
    |\b(?:ignore|disregard|forget)\b[^.\n]{0,40}\b(?:instructions|prompt|rules)\b
    |\b(?:AI|language)\s+(?:models?|assistants?|systems?)\s+(?:reading|summari[sz]ing|processing)\b
    |\bnote\s+to\s+(?:AI|assistants?|language\s+models?|chatbots?)\b
    |\byou\s+are\s+(?:now\s+)?(?:a|an|in)\s+(?:helpful\s+)?(?:AI|assistant|language\s+model|chatbot|developer\s+mode)\b
    |\b(?:reveal|print|repeat|show)\b[^.\n]{0,30}\bsystem\s+prompt\b
    |^\s*(?:system|assistant)(?:\s+message)?\s*:""",
    re.IGNORECASE | re.VERBOSE | re.MULTILINE,
)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def instruction_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the text's paragraphs that address the model."""
    spans, start = [], 0
    for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        if _ADDRESSES_THE_MODEL.search(text[start:end]):
            spans.append((start, end))
        start = match.end() if match else end
    return spans
