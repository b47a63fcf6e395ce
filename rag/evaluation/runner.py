"""Running the question set through a system and scoring it."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from rag.errors import InvalidInputError
from rag.evaluation.agreement import JudgeAgreement, judge_agreement
from rag.evaluation.backends import EvalBackend
from rag.evaluation.dataset import EvalQuestion
from rag.evaluation.gold import DocumentTexts
from rag.evaluation.judge import SupportJudge
from rag.evaluation.metrics import QuestionScore, Summary, score_question, summarise
from rag.models import Answer, Timings


class Threshold(BaseModel):
    min: float | None = None
    max: float | None = None


class EvalConfig(BaseModel):
    retrieval_k: int = Field(5, ge=1, le=50)
    judge_sample: int = Field(20, ge=0, description="Gold-decided citations the judge is also asked about.")
    thresholds: dict[str, Threshold] = Field(default_factory=dict)


class SystemResult(BaseModel):
    system: str
    summary: Summary
    questions: list[QuestionScore]
    judge_agreement: JudgeAgreement | None = None


def load_config(path: Path) -> EvalConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInputError(f"{path}: {exc}") from None
    config = EvalConfig(retrieval_k=data.get("retrieval", {}).get("k", 5),
                        judge_sample=data.get("judge", {}).get("sample", 20),
                        thresholds=data.get("thresholds", {}))
    unknown = set(config.thresholds) - set(Summary.model_fields)
    if unknown:
        raise InvalidInputError(f"{path}: unknown figures {sorted(unknown)}")
    return config


def run_system(
    backend: EvalBackend, questions: list[EvalQuestion], judge: SupportJudge | None, k: int,
    on_each: Callable[[QuestionScore], None] | None = None, judge_sample: int = 20,
) -> SystemResult:
    """Every question through the system, scored; then the judge on a sample of the citations
    gold decided, for its agreement with gold."""
    texts = DocumentTexts(backend.document_text)
    scores = []
    for question in questions:
        started = time.perf_counter()
        answer = backend.ask(question.question)
        latency_ms = (time.perf_counter() - started) * 1000
        score = score_question(question, answer, latency_ms, texts, judge, k)
        scores.append(score)
        if on_each:
            on_each(score)
    agreement = None
    if judge is not None and judge_sample:
        agreement = judge_agreement(judge, [v for s in scores for v in s.verdicts], judge_sample)
    return SystemResult(system=backend.name, summary=summarise(scores), questions=scores, judge_agreement=agreement)


def run_retrieval(backend: EvalBackend, questions: list[EvalQuestion], k: int) -> SystemResult:
    """Retrieval figures alone: no LLM involved, so cheap enough for every CI run."""
    texts = DocumentTexts(backend.document_text)
    scores = []
    for question in questions:
        started = time.perf_counter()
        passages = backend.retrieve(question.question, k) if question.answerable else []
        latency_ms = (time.perf_counter() - started) * 1000
        answer = Answer(answer="", abstained=True, citations=[], passages=passages, model="",
                        timings=Timings(retrieve_ms=latency_ms, generate_ms=0, total_ms=latency_ms))
        scores.append(score_question(question, answer, latency_ms, texts, None, k))
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
