"""Seed ingest time, /v1/retrieve latency and /v1/ask latency over ten seed questions, through
the real app (TestClient) with the embedded model. Prints a Markdown table and each answer.

    python -m bench.service_latency [--retrieve-runs 100] [--skip-ask]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.service import RagService

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "Which town did the Russian Defense Ministry say it retook?",
    "How many Ukrainian soldiers surrendered, according to Gerasimov?",
    "What share of the captured territory did Gerasimov say Russia had regained?",
    "Who is the Kremlin spokesman?",
    "How many Russian assaults did Ukrainian troops fight off on Wednesday evening?",
    "Where did Steve Witkoff's plane land on Thursday?",
    "Which foreign troops did Russia deploy to the Kursk region?",
    "How long is the ceasefire the US proposed?",
    "How did Putin say captured Ukrainian soldiers should be treated?",
    "What is the capital of France?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--retrieve-runs", type=int, default=100)
    parser.add_argument("--skip-ask", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), seed_dir=REPO / "seeds",
                            llm_model_path=None)
        service = RagService.from_settings(settings)
        started = time.perf_counter()
        results = service.ingest_paths([settings.seed_dir])
        ingest_s = time.perf_counter() - started
        chunks = sum(r.chunk_count for r in results)
        rows = [("seed ingest (2 articles, %d chunks)" % chunks, f"{ingest_s * 1000:.0f} ms", "")]

        with TestClient(create_app(service)) as client:
            client.post("/v1/retrieve", json={"query": "warm up"})
            latencies = []
            for run in range(args.retrieve_runs):
                question = QUESTIONS[run % len(QUESTIONS)]
                started = time.perf_counter()
                response = client.post("/v1/retrieve", json={"query": question})
                latencies.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
            rows.append(("/v1/retrieve p50 / p95", f"{statistics.median(latencies):.1f} ms",
                         f"{percentile(latencies, 0.95):.1f} ms"))

            if not args.skip_ask:
                service.llm.base_url()  # starts the embedded server and waits until it is ready
                ask_ms = []
                for question in QUESTIONS:
                    started = time.perf_counter()
                    body = client.post("/v1/ask", json={"question": question}).json()
                    ask_ms.append((time.perf_counter() - started) * 1000)
                    status = "ABSTAINED" if body["abstained"] else "answered"
                    print(f"- {question}\n  {status} in {ask_ms[-1] / 1000:.1f} s: {body['answer']}")
                    for citation in body["citations"]:
                        print(f"  [{citation['ref']}] {citation['document_id']} "
                              f"[{citation['start']}:{citation['end']}] {citation['quote'][:100]}")
                rows.append(("/v1/ask p50 / max (10 questions)", f"{statistics.median(ask_ms) / 1000:.1f} s",
                             f"{max(ask_ms) / 1000:.1f} s"))
        service.close()

    print("\n| measure | value | p95 / max |\n|---|---|---|")
    for name, value, tail in rows:
        print(f"| {name} | {value} | {tail} |")


if __name__ == "__main__":
    main()
