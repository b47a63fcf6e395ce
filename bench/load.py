"""Load on the real server: wrk against `rag serve` on loopback, bounded in time. Requests/s and
errors for /v1/retrieve at 16 concurrent connections and /v1/ask at 4, with the peak resident
memory of the service and its embedded LLM server, idle and under load.

    python -m bench.load [--retrieve-seconds 20] [--ask-seconds 120]
Needs wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.common import REPO, free_port, machine

LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"%s": "%s"}'
"""


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, AttributeError, ProcessLookupError):
            continue
    return total / 1024


class PeakMemory:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self.peak = max(self.peak, tree_rss_mib(self.pid))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def wrk(url: str, body_key: str, text: str, connections: int, seconds: int, timeout_s: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % (body_key, text))
    out = subprocess.run(
        ["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds}s",
         "--timeout", f"{timeout_s}s", "--latency", "-s", script.name, url],
        capture_output=True, text=True, check=True,
    ).stdout
    os.unlink(script.name)
    number = lambda pattern: float(m.group(1)) if (m := re.search(pattern, out)) else 0.0  # noqa: E731
    errors = number(r"Non-2xx or 3xx responses: (\d+)")
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    return {"requests": number(r"(\d+) requests in"), "rps": number(r"Requests/sec:\s+([\d.]+)"),
            "errors": int(errors), "p50": re.search(r"50%\s+(\S+)", out).group(1), "raw": out}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--retrieve-seconds", type=int, default=20)
    parser.add_argument("--ask-seconds", type=int, default=120)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RAG_DATA_DIR": tmp, "RAG_SEED_DIR": str(REPO / "seeds"), "RAG_PORT": str(port)}
        cached = REPO / "data" / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
        if cached.exists():
            env["RAG_LLM_MODEL_PATH"] = str(cached)
        server = subprocess.Popen([sys.executable, "-c", "from rag.cli import main; main()", "serve"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).json().get("llm_status") == "ok":
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("the server did not become ready")
                time.sleep(0.5)
            httpx.post(f"{base}/v1/ask", json={"question": "Who is Peskov?"}, timeout=300)  # warm
            with PeakMemory(server.pid) as idle:
                time.sleep(3)
            with PeakMemory(server.pid) as retrieving:
                retrieve = wrk(f"{base}/v1/retrieve", "query", "Which town did Russia retake?", 16,
                               args.retrieve_seconds, 30)
            with PeakMemory(server.pid) as asking:
                ask = wrk(f"{base}/v1/ask", "question", "How many Ukrainian soldiers surrendered?", 4,
                          args.ask_seconds, 600)
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(f"machine: {machine()}\n")
    print("| load (wrk, loopback) | requests | requests/s | errors | p50 latency | peak RSS (service + LLM) |")
    print("|---|---|---|---|---|---|")
    print(f"| idle | | | | | {idle.peak:.0f} MiB |")
    print(f"| /v1/retrieve, 16 connections, {args.retrieve_seconds}s | {retrieve['requests']:.0f} | "
          f"{retrieve['rps']:.1f} | {retrieve['errors']} | {retrieve['p50']} | {retrieving.peak:.0f} MiB |")
    print(f"| /v1/ask, 4 connections, {args.ask_seconds}s | {ask['requests']:.0f} | {ask['rps']:.2f} | "
          f"{ask['errors']} | {ask['p50']} | {asking.peak:.0f} MiB |")


if __name__ == "__main__":
    main()
