"""The answer path: prompt, parse, verify, repairs, answerer."""

from rag.answer.answerer import NOT_FOUND, AnswerEvent, Answerer
from rag.answer.prompt import SentenceSelector
from rag.answer.repairs import ANSWER_STEPS

__all__ = ["ANSWER_STEPS", "NOT_FOUND", "AnswerEvent", "Answerer", "SentenceSelector"]
