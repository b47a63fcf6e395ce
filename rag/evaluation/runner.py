"""Running the question set through a system and scoring it."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from rag.errors import InvalidInputError
from rag.evaluation.backends import EvalBackend
from rag.evaluation.dataset import EvalQuestion
from rag.evaluation.judge import SupportJudge
from rag.evaluation.metrics import QuestionScore, Summary, score_question, summarise
from rag.models import Answer, Timings


class Threshold(BaseModel):
    min: float | None = None
    max: float | None = None


class EvalConfig(BaseModel):
    retrieval_k: int = Field(5, ge=1, le=50)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)


class SystemResult(BaseModel):
    system: str
    summary: Summary
    questions: list[QuestionScore]


def load_config(path: Path) -> EvalConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInputError(f"{path}: {exc}") from None
    config = EvalConfig(retrieval_k=data.get("retrieval", {}).get("k", 5), thresholds=data.get("thresholds", {}))
    unknown = set(config.thresholds) - set(Summary.model_fields)
    if unknown:
        raise InvalidInputError(f"{path}: unknown figures {sorted(unknown)}")
    return config


def run_system(
    backend: EvalBackend, questions: list[EvalQuestion], judge: SupportJudge, k: int,
    on_each: Callable[[QuestionScore], None] | None = None,
) -> SystemResult:
    scores = []
    for question in questions:
        started = time.perf_counter()
        answer = backend.ask(question.question)
        latency_ms = (time.perf_counter() - started) * 1000
        score = score_question(question, answer, latency_ms, backend.document_text, judge, k)
        scores.append(score)
        if on_each:
            on_each(score)
    return SystemResult(system=backend.name, summary=summarise(scores), questions=scores)


def run_retrieval(backend: EvalBackend, questions: list[EvalQuestion], k: int) -> SystemResult:
    """Retrieval figures alone: no LLM involved, so cheap enough for every CI run."""
    scores = []
    for question in questions:
        started = time.perf_counter()
        passages = backend.retrieve(question.question, k) if question.answerable else []
        latency_ms = (time.perf_counter() - started) * 1000
        answer = Answer(answer="", abstained=True, citations=[], passages=passages, model="",
                        timings=Timings(retrieve_ms=latency_ms, generate_ms=0, total_ms=latency_ms))
        scores.append(score_question(question, answer, latency_ms, backend.document_text, None, k))
    return SystemResult(system=f"{backend.name} (retrieval only)", summary=summarise(scores), questions=scores)


def failures(result: SystemResult, config: EvalConfig, figures: set[str] | None = None) -> list[str]:
    """The figures below (or above) their thresholds, as readable lines."""
    missed = []
    summary = result.summary.model_dump()
    for figure, bound in config.thresholds.items():
        if figures is not None and figure not in figures:
            continue
        value = summary[figure]
        if bound.min is not None and value < bound.min:
            missed.append(f"{figure} = {value:.3f} < {bound.min}")
        if bound.max is not None and value > bound.max:
            missed.append(f"{figure} = {value:.3f} > {bound.max}")
    return missed
