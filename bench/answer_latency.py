"""Answer latency with the embedded model over an eval question set and its corpus (by default
the BBC dev questions over ../shared/corpora/bbc, ingested once under the data dir and reused,
as `rag eval --corpus` does): prompt tokens and generated tokens (counted by the llama.cpp
server's tokenizer, over every model call the answer's trace records), time to the first streamed text and total, beside answer correctness, so a
setting that shortens the prompt shows what it costs.

    python -m bench.answer_latency [--limit 40] [--set eval/bbc_dev.jsonl] [--corpus DIR]
    RAG_ANSWER__CONTEXT_SENTENCES=6 python -m bench.answer_latency   # fewer sentences shown
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import REPO, machine, p50, percentile
from rag.answer.prompt import SYSTEM_PROMPT
from rag.config import Settings
from rag.evaluation.dataset import load_questions
from rag.evaluation.metrics import answer_correct
from rag.evaluation.session import open_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", type=Path, default=REPO / "eval" / "bbc_dev.jsonl")
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpora" / "bbc")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    questions = load_questions(args.set)[: args.limit]
    settings = Settings()
    with tempfile.TemporaryDirectory() as scratch:
        service, state = open_store(settings, args.corpus, Path(scratch), needs_llm=True)
        if state:
            print(state.describe(), flush=True)
        server = service.llm.base_url().removesuffix("/v1")

        def tokens(text: str) -> int:
            return len(httpx.post(f"{server}/tokenize", json={"content": text}, timeout=30).json()["tokens"])

        first_ms, total_ms, prompt_tokens, generated_tokens = [], [], [], []
        abstained = correct = 0
        for question in questions:
            started = time.perf_counter()
            first = None
            for event in service.ask_stream(question.question, debug=True):
                if isinstance(event, str) and first is None:
                    first = (time.perf_counter() - started) * 1000
                answer = event
            total_ms.append((time.perf_counter() - started) * 1000)
            first_ms.append(first if first is not None else total_ms[-1])
            abstained += answer.abstained
            correct += bool(answer_correct(question, answer))
            # What the model read and wrote, from the answer's trace: every call to it.
            calls = [t.data for t in answer.trace if "wrote" in t.data]
            prompt_tokens.append(sum(tokens(c.get("shown", c.get("asked", "")) + c.get("question", "")) for c in calls)
                                 + sum(system_tokens(tokens, t.step) for t in answer.trace if "wrote" in t.data))
            generated_tokens.append(sum(tokens(c["wrote"]) for c in calls if c["wrote"]))
            print(f"{question.id}: first text {first_ms[-1] / 1000:.1f}s, total {total_ms[-1] / 1000:.1f}s, "
                  f"{len(calls)} model calls, {prompt_tokens[-1]} prompt tokens, {generated_tokens[-1]} generated",
                  flush=True)
        service.close()

    answerable = sum(q.answerable for q in questions)
    print(f"\nmachine: {machine()}; {len(questions)} questions of {args.set.name} ({abstained} abstained), "
          f"{settings.answer.context_sentences} sentences shown, steps {sorted(s.value for s in settings.answer.steps)}; answer correctness {correct}/{answerable}"
          f" = {correct / max(answerable, 1):.2f}\n")
    print("| measure | p50 | p95 | target |\n|---|---|---|---|")
    print(f"| time to first shown text | {p50(first_ms) / 1000:.1f} s | {percentile(first_ms, 0.95) / 1000:.1f} s | p50 <= 4 s |")
    print(f"| total answer time | {p50(total_ms) / 1000:.1f} s | {percentile(total_ms, 0.95) / 1000:.1f} s | p50 <= 6 s, p95 <= 10 s |")
    print(f"| prompt tokens (system prompt included) | {p50(prompt_tokens):.0f} | {percentile(prompt_tokens, 0.95):.0f} | |")
    print(f"| generated tokens | {p50(generated_tokens):.0f} | {percentile(generated_tokens, 0.95):.0f} | |")


def system_tokens(tokens, step: str) -> int:
    """The fixed system prompt of a model call (read from the cache after the first, but counted)."""
    from rag.answer.confirm import CONFIRM_SYSTEM_PROMPT

    return tokens(CONFIRM_SYSTEM_PROMPT if step == "confirm" else SYSTEM_PROMPT)


if __name__ == "__main__":
    main()
