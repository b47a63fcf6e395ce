"""One `rag eval` run: the store to answer over (the seeds in a fresh store, or a corpus folder
ingested once and reused), the systems, their scores, the reports, the thresholds."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from chromadb.api.client import SharedSystemClient

from rag.config import Settings
from rag.errors import InvalidInputError
from rag.evaluation.backends import EvalBackend, HttpBackend, ServiceBackend
from rag.evaluation.corpus import CorpusState, ensure_ingested, store_dir
from rag.evaluation.dataset import load_questions
from rag.evaluation.judge import SupportJudge
from rag.evaluation.report import markdown_table, write_reports
from rag.evaluation.runner import SystemResult, failures, load_config, run_retrieval, run_system
from rag.llm import LLM
from rag.llm_server import packaged_model
from rag.service import RagService

RETRIEVAL_FIGURES = {"retrieval_hit_at_k", "retrieval_mrr", "retrieval_document_hit_at_k"}


def eval_settings(settings: Settings, data_dir: Path, needs_llm: bool = True) -> Settings:
    """The user's settings over the eval's own store; the model cache is shared, not copied
    (and not looked for when no LLM is needed)."""
    model_path = settings.llm_model_path
    if needs_llm and not settings.llm_base_url and model_path is None:
        model_path = packaged_model(settings.model_cache_dir)
    return settings.model_copy(update={"data_dir": data_dir, "chroma_url": "", "llm_model_path": model_path})


def open_store(
    settings: Settings, corpus: Path | None, scratch: Path, needs_llm: bool,
    build: Callable[[Settings], RagService] = RagService.from_settings,
) -> tuple[RagService, CorpusState | None]:
    """A service over the corpus's reused store, or over a fresh store of the seed articles."""
    if corpus is None:
        service = build(eval_settings(settings, scratch, needs_llm))
        service.ingest_paths([settings.seed_dir])
        return service, None
    directory = store_dir(settings, corpus)
    service = build(eval_settings(settings, directory, needs_llm))
    try:
        return service, ensure_ingested(service, corpus, directory)
    except BaseException:
        service.close()
        raise


def run_eval(
    settings: Settings, questions_path: Path, config_path: Path, out_dir: Path, *,
    url: str | None, baseline: str | None, retrieval_only: bool, limit: int | None,
    progress: Callable[[str], None], corpus: Path | None = None,
    build: Callable[[Settings], RagService] = RagService.from_settings,
) -> tuple[str, list[str]]:
    questions = load_questions(questions_path)[:limit]
    config = load_config(config_path)
    if url and corpus:
        raise InvalidInputError("--corpus is ingested in-process; a server at --url answers over its own store")
    k = config.retrieval_k
    state: CorpusState | None = None
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp, ExitStack() as stack:
        stack.callback(SharedSystemClient.clear_system_cache)
        service = None
        if not url or baseline:
            service, state = open_store(settings, corpus, Path(tmp), not retrieval_only, build)
            stack.callback(service.close)
            if state:
                progress(state.describe())
        backends: list[EvalBackend] = [HttpBackend(url) if url else ServiceBackend(service)]
        if baseline == "citation-qe":
            from rag.evaluation.baseline import CitationQEBackend

            backends.append(CitationQEBackend(service))
        judge = None
        if not retrieval_only:
            judge_llm = service.llm if service else LLM(eval_settings(settings, Path(tmp)))
            if service is None:
                stack.callback(judge_llm.close)
            judge = SupportJudge(judge_llm)
        results: list[SystemResult] = []
        for backend in backends:
            progress(f"== {backend.name}")
            if retrieval_only:
                results.append(run_retrieval(backend, questions, k))
                continue
            results.append(run_system(backend, questions, judge, k, on_each=lambda s: progress(_line(s)),
                                      judge_sample=config.judge_sample))
    figures = RETRIEVAL_FIGURES | {"latency_p50_ms", "latency_p95_ms"} if retrieval_only else None
    json_path, md_path = write_reports(results, config, out_dir, figures, questions_path, state)
    missed = failures(results[0], config, figures)
    lines = [markdown_table(results, config, figures)]
    lines += [f"{r.system}: {r.judge_agreement.describe()}" for r in results if r.judge_agreement]
    return "\n\n".join(lines) + f"\n\nwrote {json_path} and {md_path}", missed


def _line(score) -> str:
    outcome = "abstained" if score.abstained else "answered "
    verdict = "" if score.correct is None else ("correct" if score.correct else "WRONG")
    held = f"cites {score.citations_held}/{score.citations}"
    return f"{score.id} {outcome} {verdict:7} {held:10} {score.latency_ms / 1000:.1f}s  {score.answer[:80]}"
