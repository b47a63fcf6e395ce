"""One `rag eval` run: build the systems, run them, write the reports, check thresholds."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from chromadb.api.client import SharedSystemClient

from rag.config import Settings
from rag.evaluation.backends import EvalBackend, HttpBackend, ServiceBackend
from rag.evaluation.dataset import load_questions
from rag.evaluation.judge import SupportJudge
from rag.evaluation.judge_check import check_judge, load_pairs
from rag.evaluation.report import markdown_table, write_reports
from rag.evaluation.runner import SystemResult, failures, load_config, run_retrieval, run_system
from rag.llm import LLM
from rag.llm_server import packaged_model
from rag.service import RagService

RETRIEVAL_FIGURES = {"retrieval_hit_at_k", "retrieval_mrr"}


def eval_settings(settings: Settings, data_dir: Path) -> Settings:
    """The user's settings over a fresh store holding only the seed articles, so the eval
    measures the same corpus every time; the model cache is shared, not copied."""
    model_path = settings.llm_model_path
    if not settings.llm_base_url and model_path is None:
        model_path = packaged_model(settings.model_cache_dir)
    return settings.model_copy(update={"data_dir": data_dir, "chroma_url": "", "llm_model_path": model_path})


def run_eval(
    settings: Settings, questions_path: Path, config_path: Path, out_dir: Path, *,
    url: str | None, baseline: str | None, retrieval_only: bool, limit: int | None,
    progress: Callable[[str], None],
) -> tuple[str, list[str]]:
    questions = load_questions(questions_path)[:limit]
    config = load_config(config_path)
    k = config.retrieval_k
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        service = None
        try:
            if url:
                backends: list[EvalBackend] = [HttpBackend(url)]
            else:
                service = RagService.from_settings(eval_settings(settings, Path(tmp)))
                service.ingest_paths([settings.seed_dir])
                backends = [ServiceBackend(service)]
            if baseline == "citation-qe":
                if service is None:
                    service = RagService.from_settings(eval_settings(settings, Path(tmp)))
                    service.ingest_paths([settings.seed_dir])
                from rag.evaluation.baseline import CitationQEBackend

                backends.append(CitationQEBackend(service))
            results: list[SystemResult] = []
            for backend in backends:
                progress(f"== {backend.name}")
                if retrieval_only:
                    results.append(run_retrieval(backend, questions, k))
                    continue
                judge_llm = service.llm if service else LLM(eval_settings(settings, Path(tmp)))
                judge = SupportJudge(judge_llm)
                results.append(run_system(
                    backend, questions, judge, k,
                    on_each=lambda s: progress(
                        f"{s.id} {'abstained' if s.abstained else 'answered '} "
                        f"{'' if s.correct is None else ('correct' if s.correct else 'WRONG')} "
                        f"{s.latency_ms / 1000:.1f}s  {s.answer[:90]}"
                    ),
                ))
                if service is None:
                    judge_llm.close()
        finally:
            if service is not None:
                service.close()
            SharedSystemClient.clear_system_cache()
    figures = RETRIEVAL_FIGURES | {"latency_p50_ms", "latency_p95_ms"} if retrieval_only else None
    json_path, md_path = write_reports(results, config, out_dir, figures)
    missed = failures(results[0], config, figures)
    table = markdown_table(results, config, figures)
    return f"{table}\n\nwrote {json_path} and {md_path}", missed


def run_judge_check(settings: Settings, pairs_path: Path, out_dir: Path) -> str:
    """The support judge, on the configured LLM, against the labelled pairs; writes judge.json."""
    pairs = load_pairs(pairs_path)
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        llm = LLM(eval_settings(settings, Path(tmp)))
        try:
            agreement = check_judge(SupportJudge(llm), pairs)
        finally:
            llm.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "judge.json"
    json_path.write_text(agreement.model_dump_json(indent=2), encoding="utf-8")
    return f"{agreement.describe()}\n\nwrote {json_path}"
