"""The answer pipeline (rag.answer.pipeline) and its parts."""

from rag.answer.pipeline import NOT_FOUND, AnswerEvent, AnswerPipeline
from rag.answer.prompt import SentenceSelector

__all__ = ["NOT_FOUND", "AnswerEvent", "AnswerPipeline", "SentenceSelector"]
