"""The eval's outputs: a table on the terminal, a JSON file and a Markdown report."""

from __future__ import annotations

import json
from pathlib import Path

from rag.evaluation.runner import EvalConfig, SystemResult

FIGURES = [
    ("answer_correctness", "answer correctness", "{:.2f}"),
    ("citation_precision", "citation precision", "{:.2f}"),
    ("citation_recall", "citation recall", "{:.2f}"),
    ("abstention_accuracy", "abstention accuracy", "{:.2f}"),
    ("false_abstention_rate", "false-abstention rate", "{:.2f}"),
    ("verbatim_quote_rate", "verbatim quotes", "{:.2f}"),
    ("retrieval_hit_at_k", "retrieval hit@k", "{:.2f}"),
    ("retrieval_mrr", "retrieval MRR", "{:.2f}"),
    ("latency_p50_ms", "latency p50 (s)", "ms"),
    ("latency_p95_ms", "latency p95 (s)", "ms"),
]


def _cell(value: float, style: str) -> str:
    return f"{value / 1000:.1f}" if style == "ms" else style.format(value)


def _target(figure: str, config: EvalConfig) -> str:
    bound = config.thresholds.get(figure)
    if bound is None:
        return ""
    return f">= {bound.min}" if bound.min is not None else f"<= {bound.max}"


def markdown_table(results: list[SystemResult], config: EvalConfig, figures: set[str] | None = None) -> str:
    head = "| figure | " + " | ".join(r.system for r in results) + " | threshold |"
    rule = "|---" * (len(results) + 2) + "|"
    rows = [head, rule]
    for figure, label, style in FIGURES:
        if figures is not None and figure not in figures:
            continue
        cells = [_cell(getattr(r.summary, figure), style) for r in results]
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {_target(figure, config)} |")
    return "\n".join(rows)


def write_reports(
    results: list[SystemResult], config: EvalConfig, out_dir: Path, figures: set[str] | None = None
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "eval.json"
    json_path.write_text(json.dumps([r.model_dump() for r in results], indent=2), encoding="utf-8")
    lines = ["# Eval report", "", f"{results[0].summary.questions} questions.", "",
             markdown_table(results, config, figures), ""]
    for result in results:
        lines += [f"## {result.system}", "", "| id | category | outcome | rank | latency (s) | answer |",
                  "|---|---|---|---|---|---|"]
        for q in result.questions:
            outcome = ("abstained" if q.abstained else "answered") + (
                "" if q.correct is None else (" ✓" if q.correct else " ✗")
            )
            answer = q.answer.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {q.id} | {q.category} | {outcome} | {q.retrieval_rank or ''} | "
                         f"{q.latency_ms / 1000:.1f} | {answer} |")
        lines.append("")
        rejected = [(q.id, text) for q in result.questions for text in q.unsupported]
        if rejected:
            lines += ["Statements the judge found unsupported by their citations:", ""]
            lines += [f"- {qid}: {text}" for qid, text in rejected] + [""]
    md_path = out_dir / "eval.md"
    md_path.write_text("\n".join(lines), encoding="utf-8")
    return json_path, md_path
