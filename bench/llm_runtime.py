"""The embedded model on each installed llama.cpp runtime, side by side in one run.

For each runtime this CPU can execute (``--force NAME`` runs one it should not), and for a
llama-cpp-python server when ``--llama-cpp-python PYTHON`` names an interpreter that has it
(the runtime this project used before), on the packaged GGUF with the same threads:

- prompt evaluation: a ~550-token answer prompt read from scratch (a different first line each
  time, so no prefix cache helps), tokens per second from the wall time of a one-token reply;
- generation: tokens per second over a 64-token reply, after its first token;
- time to first token of the same prompt, streamed;
- the whole ``/v1/ask`` over the BBC dev questions through the app (the same store, the model
  warmed as ``rag serve`` warms it): the first answer after ready, p50 and p95 of the rest.

Every figure is measured client-side the same way for every runtime.

    python -m bench.llm_runtime                      # every runtime this CPU can execute
    python -m bench.llm_runtime --ask-limit 0        # the model figures alone, a minute each
    python -m bench.llm_runtime --llama-cpp-python /path/to/venv/bin/python
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import REPO, free_port, machine, p50, percentile, seed_texts
from rag import llm_runtime
from rag.answer.prompt import SYSTEM_PROMPT
from rag.config import Settings
from rag.llm_server import packaged_model
from rag.text import sentences

REPEATS = 3


@dataclass
class Contender:
    name: str
    argv: list[str]
    env: dict[str, str]


def contenders(args, model: Path, threads: int) -> list[Contender]:
    found = []
    flags = llm_runtime.cpu_flags()
    for runtime in llm_runtime.RUNTIMES:
        if not runtime.installed:
            print(f"- {runtime.name}: not installed")
            continue
        if missing := runtime.missing_flags(flags):
            if runtime.name not in args.force:
                print(f"- {runtime.name}: skipped, this CPU lacks {', '.join(sorted(missing))}")
                continue
        # As the service starts it: a slot for each fixed prompt (the answer's, the confirm check's).
        spec = llm_runtime.ServerSpec(model, "bench", free_port(), 4096, threads, parallel=2)
        argv, env = runtime.launch(spec)
        found.append(Contender(runtime.describe(), argv, env))
    if args.llama_cpp_python:
        version = subprocess.run(
            [args.llama_cpp_python, "-c", "import llama_cpp; print(llama_cpp.__version__)"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        found.append(Contender(
            f"llama-cpp-python {version} (as the Makefile built it before)",
            [args.llama_cpp_python, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "bench",
             "--host", "127.0.0.1", "--port", str(free_port()), "--n_ctx", "4096",
             "--n_threads", str(threads), "--n_threads_batch", str(threads), "--use_mmap", "False",
             "--verbose", "False"],
            dict(os.environ),
        ))
    return found


def answer_prompt(nonce: int) -> list[dict]:
    """An answer prompt of the shape the service sends: the system prompt, numbered sentences
    from the seed articles, a question; the nonce first so no cached prefix is reused."""
    lines, count, size = [], 0, 0
    for _, text in seed_texts():
        for start, end in sentences(text):
            sentence = " ".join(text[start:end].split())[:300]
            if len(sentence) > 60 and size < 1150:  # ~330 tokens of sentences, as an answer shows
                count += 1
                size += len(sentence)
                lines.append(f"[{count}] {sentence}")
    user = "\n".join(lines) + "\n\nQuestion: What did the officials say happened?\nReply:"
    return [{"role": "system", "content": f"Request {nonce}.\n{SYSTEM_PROMPT}"}, {"role": "user", "content": user}]


def serve(contender: Contender) -> tuple[subprocess.Popen, str]:
    port = contender.argv[contender.argv.index("--port") + 1]
    base = f"http://127.0.0.1:{port}/v1"
    process = subprocess.Popen(contender.argv, env=contender.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{contender.name} exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{contender.name} not ready in 300 s")


def model_figures(base: str) -> dict:
    client = httpx.Client(timeout=300)
    request = {"model": "bench", "temperature": 0.0}
    prompt_rates, gen_rates, first_token = [], [], []
    prompt_tokens = 0
    for repeat in range(REPEATS + 1):  # the first round warms the process and is not counted
        nonce = 1000 + repeat
        started = time.perf_counter()
        reply = client.post(f"{base}/chat/completions",
                            json={**request, "messages": answer_prompt(nonce), "max_tokens": 1}).json()
        read_s = time.perf_counter() - started
        prompt_tokens = reply["usage"]["prompt_tokens"]

        messages = answer_prompt(nonce + 100)
        messages[-1]["content"] += " Then copy every numbered sentence above, word for word."
        started, first, pieces = time.perf_counter(), None, 0
        with client.stream("POST", f"{base}/chat/completions",
                           json={**request, "messages": messages, "max_tokens": 64, "stream": True}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: ") and '"content":"' in line.replace(" ", ""):
                    pieces += 1
                    if first is None:
                        first = time.perf_counter()
        ended = time.perf_counter()
        if repeat:
            prompt_rates.append(prompt_tokens / read_s)
            first_token.append(first - started)
            gen_rates.append((pieces - 1) / (ended - first) if pieces > 1 else 0.0)
    return {"prompt_tokens": prompt_tokens, "prompt_tok_s": p50(prompt_rates),
            "gen_tok_s": p50(gen_rates), "first_token_s": p50(first_token)}


def ask_figures(base: str, questions_path: Path, corpus: Path, limit: int) -> dict:
    """The whole /v1/ask through the app over the eval corpus's store, the model at ``base``."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from rag.evaluation.dataset import load_questions
    from rag.evaluation.session import open_store

    questions = load_questions(questions_path)[:limit]
    # TestClient names its host "testserver", which the API admits only when told to.
    settings = Settings(llm_base_url=base, llm_model="bench", allowed_hosts=["testserver"])
    with tempfile.TemporaryDirectory() as scratch:
        service, _ = open_store(settings, corpus, Path(scratch), needs_llm=True)
        for messages in service.pipeline.warmup_prompts():  # as the embedded server is warmed
            httpx.post(f"{base}/chat/completions", timeout=300,
                       json={"model": "bench", "messages": messages, "max_tokens": 1})
        service.retriever.keyword_index()
        seconds = []
        with TestClient(create_app(service)) as client:
            for question in questions:
                started = time.perf_counter()
                response = client.post("/v1/ask", json={"question": question.question})
                response.raise_for_status()
                seconds.append(time.perf_counter() - started)
        service.close()
    rest = seconds[1:] or seconds
    return {"first_s": seconds[0], "p50_s": p50(rest), "p95_s": percentile(rest, 0.95), "n": len(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--llama-cpp-python", help="a Python that has llama-cpp-python[server]")
    parser.add_argument("--force", action="append", default=[], help="run this runtime even if the CPU lacks its flags")
    parser.add_argument("--set", type=Path, default=REPO / "eval" / "bbc_dev.jsonl")
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpora" / "bbc")
    parser.add_argument("--ask-limit", type=int, default=80, help="questions for /v1/ask (0: none)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--only", help="only the contender whose name starts with this")
    args = parser.parse_args()

    settings = Settings()
    model = settings.llm_model_path or packaged_model(settings.model_cache_dir)
    flags = llm_runtime.cpu_flags()
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8"]
    print(f"machine: {machine()}")
    print(f"CPU flags: {', '.join(f for f in wanted if f in flags)}; lacks {', '.join(f for f in wanted if f not in flags) or 'none'}")
    print(f"model: {model.name}, {args.threads} threads")
    rows = []
    for contender in contenders(args, model, args.threads):
        if args.only and not contender.name.startswith(args.only):
            continue
        print(f"== {contender.name}", flush=True)
        process, base = serve(contender)
        try:
            figures = model_figures(base)
            print(figures, flush=True)
            if args.ask_limit:
                figures |= ask_figures(base, args.set, args.corpus, args.ask_limit)
                print(figures, flush=True)
        finally:
            process.terminate()
            process.wait(timeout=30)
        rows.append((contender.name, figures))

    print("\n| runtime | prompt tokens | prompt eval tok/s | generation tok/s | first token | "
          "first /v1/ask after ready | /v1/ask p50 | p95 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, f in rows:
        ask = (f"{f['first_s']:.1f} s | {f['p50_s']:.1f} s | {f['p95_s']:.1f} s (n={f['n']})"
               if "p50_s" in f else "– | – | –")
        print(f"| {name} | {f['prompt_tokens']} | {f['prompt_tok_s']:.0f} | {f['gen_tok_s']:.1f} | "
              f"{f['first_token_s']:.2f} s | {ask} |")


if __name__ == "__main__":
    sys.exit(main())
