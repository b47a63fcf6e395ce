"""`rag eval` on one question set with several answer-step configurations, the model's replies
shared between them: every request to the LLM goes through a replay cache at its HTTP edge, so a
request that one configuration already made is answered from the cache. A step that acts after
the others (confirm) then costs only its own calls, and the configurations differ only by the
step (the model's replies to the same prompts are the same replies, byte for byte).

    python -m bench.steps_compared --set eval/bbc_val.jsonl --corpus ../shared/corpora/bbc \\
        --steps reanchor,read_on --steps reanchor,read_on,confirm --out eval/results/val-steps
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from pathlib import Path

import httpx

from bench.common import REPO, machine
from rag.config import AnswerSettings, Settings
from rag.evaluation.session import run_eval
from rag.llm import LLM
from rag.embedding import MiniLMEmbedding
from rag.service import RagService
from rag.store import open_store


class ReplayTransport(httpx.BaseTransport):
    """Answers a request it has seen (same method, path and body) with the bytes the server sent
    then, as far as the client read them; passes anything else on and records it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner
        self._seen: dict[str, tuple[int, list[tuple[str, str]], bytes]] = {}
        self.hits = self.misses = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        key = hashlib.sha256(request.method.encode() + request.url.path.encode() + request.read()).hexdigest()
        if key in self._seen:
            self.hits += 1
            status, headers, body = self._seen[key]
            return httpx.Response(status, headers=headers, content=body)
        self.misses += 1
        response = self._inner.handle_request(request)
        seen = self._seen
        chunks: list[bytes] = []

        class Recording(httpx.SyncByteStream):
            def __iter__(self):
                for chunk in response.stream:
                    chunks.append(chunk)
                    yield chunk

            def close(self) -> None:
                response.close()
                if response.status_code == 200:  # what the client read, as it read it
                    headers = [(k, v) for k, v in response.headers.items()
                               if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")]
                    seen[key] = (response.status_code, headers, b"".join(chunks))

        return httpx.Response(response.status_code, headers=response.headers, stream=Recording())


def per_category(eval_json: Path) -> dict[str, str]:
    system = json.loads(eval_json.read_text())["systems"][0]
    right, total = Counter(), Counter()
    for q in system["questions"]:
        if q["answerable"]:
            total[q["category"]] += 1
            right[q["category"]] += bool(q["correct"])
    return {c: f"{right[c]}/{total[c]}" for c in sorted(total)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", type=Path, default=REPO / "eval" / "bbc_val.jsonl")
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpora" / "bbc")
    parser.add_argument("--steps", action="append", required=True, help="a configuration: comma-separated steps")
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "steps-compared")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    transport = ReplayTransport(httpx.HTTPTransport())
    client = httpx.Client(transport=transport, timeout=None)
    lines = []
    for steps in args.steps:
        settings = Settings()
        settings = settings.model_copy(update={"answer": AnswerSettings(**{**settings.answer.model_dump(), "steps": steps})})

        def build(built: Settings) -> RagService:
            # As RagService.from_settings builds it, the LLM's HTTP client the replay cache.
            store = open_store(built)
            embedder = MiniLMEmbedding(embed_batch_size=built.embed_batch_size)
            return RagService(built, store, embedder, LLM(built, http_client=client))

        out = args.out / (steps.replace(",", "+") or "none")
        report, _ = run_eval(
            settings, args.set, REPO / "eval" / "config.toml", out, url=None, baseline=None,
            retrieval_only=False, limit=args.limit, progress=lambda line: None, corpus=args.corpus, build=build,
        )
        summary = json.loads((out / "eval.json").read_text())["systems"][0]["summary"]
        figures = " / ".join(f"{summary[k]:.2f}" for k in (
            "answer_correctness", "citation_precision", "citation_recall", "unanswerable_abstained_rate",
            "false_abstention_rate", "verbatim_quote_rate"))
        lines.append(f"| {steps or '(none)'} | {figures} | {per_category(out / 'eval.json')} |")
        print(lines[-1], f"(replies from the cache: {transport.hits}, asked: {transport.misses})", flush=True)
    print(f"\nmachine: {machine()}; {args.set.name}")
    print("| steps | correctness / precision / recall / unanswerable abstained / false abstention / verbatim | right by category |")
    print("|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
