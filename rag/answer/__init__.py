"""The answer path: prompt, parse, verify, repairs, answerer."""

from rag.answer.answerer import NOT_FOUND, AnswerEvent, Answerer
from rag.answer.prompt import SentenceSelector

__all__ = ["NOT_FOUND", "AnswerEvent", "Answerer", "SentenceSelector"]
