"""Answer latency with the embedded model over the eval questions: time to the first streamed
text, total time, and prompt tokens per answer (counted by the llama.cpp server's tokenizer),
beside the share of answerable questions answered with every key fact, so that a setting which
shortens the prompt shows what it costs.

    python bench/answer_latency.py [--limit 46]
    RAG_CONTEXT_SENTENCES=4 python bench/answer_latency.py   # fewer sentences shown to the model
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import REPO, machine, p50, percentile
from rag.answer.prompt import build_messages
from rag.config import Settings
from rag.evaluation.dataset import load_questions
from rag.evaluation.metrics import answer_correct
from rag.service import RagService


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    questions = load_questions(REPO / "eval" / "questions.jsonl")[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), seed_dir=REPO / "seeds")
        cached = REPO / "data" / "models"
        if (cached / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf").exists():
            settings = settings.model_copy(update={"llm_model_path": cached / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"})
        service = RagService.from_settings(settings)
        service.ingest_paths([settings.seed_dir])
        server = service.llm.base_url().removesuffix("/v1")
        first_ms, total_ms, prompt_tokens, abstained, correct = [], [], [], 0, 0
        for question in questions:
            started = time.perf_counter()
            first = None
            for event in service.ask_stream(question.question):
                if isinstance(event, str) and first is None:
                    first = (time.perf_counter() - started) * 1000
                answer = event
            total_ms.append((time.perf_counter() - started) * 1000)
            first_ms.append(first if first is not None else total_ms[-1])
            abstained += answer.abstained
            correct += bool(answer_correct(question, answer))
            numbered = service.answerer.numbered(question.question, answer.passages)
            prompt = "\n".join(m["content"] for m in build_messages(question.question, numbered))
            count = httpx.post(f"{server}/extras/tokenize/count", json={"input": prompt}, timeout=30).json()
            prompt_tokens.append(count["count"])
            print(f"{question.id}: first text {first_ms[-1] / 1000:.1f}s, total {total_ms[-1] / 1000:.1f}s, "
                  f"{prompt_tokens[-1]} prompt tokens", flush=True)
        service.close()

    answerable = sum(q.answerable for q in questions)
    print(f"\nmachine: {machine()}; {len(questions)} eval questions ({abstained} abstained), "
          f"{settings.context_sentences} sentences shown; answer correctness {correct}/{answerable}"
          f" = {correct / max(answerable, 1):.2f}\n")
    print("| measure | p50 | p95 | target |\n|---|---|---|---|")
    print(f"| time to first streamed text | {p50(first_ms) / 1000:.1f} s | {percentile(first_ms, 0.95) / 1000:.1f} s | <= 2 s |")
    print(f"| total answer time | {p50(total_ms) / 1000:.1f} s | {percentile(total_ms, 0.95) / 1000:.1f} s | p50 <= 4 s |")
    print(f"| prompt tokens per answer | {p50(prompt_tokens):.0f} | {percentile(prompt_tokens, 0.95):.0f} | |")


if __name__ == "__main__":
    main()
