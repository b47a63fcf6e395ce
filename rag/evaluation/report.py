"""The eval's outputs: a table on the terminal, a JSON file and a Markdown report with the
systems side by side, per question, with every citation not held and every judge verdict."""

from __future__ import annotations

import json
from pathlib import Path

from rag.evaluation.corpus import CorpusState
from rag.evaluation.metrics import QuestionScore
from rag.evaluation.runner import EvalConfig, SystemResult

FIGURES = [
    ("answer_correctness", "answer correctness", "{:.2f}"),
    ("citation_precision", "citation precision", "{:.2f}"),
    ("citation_recall", "citation recall", "{:.2f}"),
    ("judge_decided_rate", "citations left to the judge", "{:.2f}"),
    ("abstention_accuracy", "abstention accuracy", "{:.2f}"),
    ("unanswerable_abstained_rate", "unanswerable abstained", "{:.2f}"),
    ("false_abstention_rate", "false-abstention rate", "{:.2f}"),
    ("verbatim_quote_rate", "verbatim quotes", "{:.2f}"),
    ("retrieval_hit_at_k", "retrieval hit@k (gold span)", "{:.2f}"),
    ("retrieval_mrr", "retrieval MRR (gold span)", "{:.2f}"),
    ("retrieval_document_hit_at_k", "retrieval hit@k (gold document)", "{:.2f}"),
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


def _escaped(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


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


def _outcome(q: QuestionScore, answered: bool = True) -> str:
    if not answered:  # retrieval only
        return f"rank {q.retrieval_rank or '-'}" if q.answerable else ""
    outcome = ("abstained" if q.abstained else "answered") + ("" if q.correct is None else (" ✓" if q.correct else " ✗"))
    parts = [outcome]
    if q.answerable:
        parts.append(f"facts {q.facts_supported}/{q.key_facts}")
    if q.citations:
        parts.append(f"cites {q.citations_held}/{q.citations}")
    if q.retrieval_rank is not None or q.answerable:
        parts.append(f"rank {q.retrieval_rank or '-'}")
    return " · ".join(parts)


def _side_by_side(results: list[SystemResult], answered: bool) -> list[str]:
    lines = ["| id | category | " + " | ".join(r.system for r in results) + " |",
             "|---|---" + "|---" * len(results) + "|"]
    for row in zip(*(r.questions for r in results)):
        lines.append(f"| {row[0].id} | {row[0].category} | " + " | ".join(_outcome(q, answered) for q in row) + " |")
    return lines


def _citation_counts(result: SystemResult) -> str:
    s = result.summary
    return (f"- {result.system}: {s.citations} citations — gold held {s.held_by_gold}, gold rejected "
            f"{s.rejected_by_gold}, judge held {s.held_by_judge}, judge rejected {s.rejected_by_judge}, "
            f"undecided {s.undecided}")


def _system_section(result: SystemResult) -> list[str]:
    lines = [f"## {result.system}", "", "| id | outcome | latency (s) | answer |", "|---|---|---|---|"]
    lines += [f"| {q.id} | {_outcome(q)} | {q.latency_ms / 1000:.1f} | {_escaped(q.answer)} |" for q in result.questions]
    lines.append("")
    verdicts = [v for q in result.questions for v in q.verdicts]
    rejected = [v for v in verdicts if v.held is False]
    if rejected:
        lines += ["Citations not held:", ""]
        lines += [f"- {v.question_id} [{v.ref}] {v.decided_by}: {v.reason}. “{_escaped(v.statement)}” ← "
                  f"{v.document_id}: “{_escaped(v.quote)}”" for v in rejected] + [""]
    judged = [v for v in verdicts if v.decided_by != "gold" and v.held is not False]
    if judged:
        lines += ["Citations gold could not decide, held by the judge or left undecided:", ""]
        lines += [f"- {v.question_id} [{v.ref}] {v.reason}. “{_escaped(v.statement)}” ← "
                  f"{v.document_id}: “{_escaped(v.quote)}”" for v in judged] + [""]
    if result.judge_agreement and result.judge_agreement.disagreements:
        lines += ["Where the judge and gold disagree:", ""]
        lines += [f"- {d.question_id}: gold {'held' if d.gold else 'rejected'}, judge "
                  f"{'accepted' if d.judge else 'rejected'}. “{_escaped(d.statement)}” ← “{_escaped(d.quote)}”"
                  for d in result.judge_agreement.disagreements] + [""]
    return lines


def _gold_missing(result: SystemResult) -> list[str]:
    missing = sorted({(q.id, text) for q in result.questions for text in q.gold_missing})
    if not missing:
        return []
    lines = ["Gold evidence not found in the document it names (the question set and the corpus disagree):", ""]
    return lines + [f"- {qid}: “{_escaped(text)}”" for qid, text in missing] + [""]


def write_reports(
    results: list[SystemResult], config: EvalConfig, out_dir: Path, figures: set[str] | None = None,
    questions_path: Path | None = None, corpus: CorpusState | None = None,
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "eval.json"
    payload = {"question_set": str(questions_path or ""), "corpus": corpus.model_dump() if corpus else None,
               "systems": [r.model_dump() for r in results]}
    json_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    source = corpus.describe() if corpus else "the seed articles, in a fresh store"
    lines = ["# Eval report", "",
             f"{results[0].summary.questions} questions{f' from {questions_path}' if questions_path else ''}; {source}.",
             "", markdown_table(results, config, figures), ""]
    if figures is None:
        lines += ["Citations, each use by a statement counted once:", ""]
        lines += [_citation_counts(r) for r in results]
        lines += [f"- {r.system}: {r.judge_agreement.describe()}" for r in results if r.judge_agreement] + [""]
    lines += _gold_missing(results[0])
    lines += ["## Per question", ""] + _side_by_side(results, answered=figures is None) + [""]
    if figures is None:
        for result in results:
            lines += _system_section(result)
    md_path = out_dir / "eval.md"
    md_path.write_text("\n".join(lines), encoding="utf-8")
    return json_path, md_path
