"""An oversized request against `rag serve`: a chunked body (no Content-Length) far over
RAG_MAX_REQUEST_BYTES, sent to /v1/retrieve (JSON) and /v1/documents (multipart), once without
keys and once with keys configured and none sent. While each is sent, /healthz is asked every
50 ms and the server's RSS is sampled from /proc. Reports the status the big request got, the
bytes the client managed to write, the server's RSS growth and /healthz p50/p99/max.

    python -m bench.oversize_body                   # 300 MB bodies
    python -m bench.oversize_body --mib 50
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.common import free_port, machine, p50, percentile

KEY = "bench-key"
PIECE = 256 * 1024


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def start(data_dir: Path, keyed: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "RAG_DATA_DIR": str(data_dir), "RAG_PORT": str(port), "RAG_SEED_ON_EMPTY": "false",
           "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1", "RAG_API_KEY": KEY if keyed else ""}
    server = subprocess.Popen([sys.executable, "-c", "from rag.cli import main; main()", "serve"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            sys.exit("the server did not start")
        time.sleep(0.05)


def body(total: int, start: bytes, written: list[int]):
    written[0] += len(start)
    yield start
    filler = b"x" * PIECE
    while written[0] < total:
        written[0] += PIECE
        yield filler


def one(base: str, pid: int, path: str, total: int, headers: dict[str, str]) -> dict:
    if path == "/v1/documents":
        start_bytes = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
                       b"Content-Type: text/plain\r\n\r\n")
        headers = {**headers, "Content-Type": "multipart/form-data; boundary=b"}
    else:
        start_bytes, headers = b'{"query": "', {**headers, "Content-Type": "application/json"}
    before = rss_mib(pid)
    peak = [before]
    latencies: list[float] = []
    done = threading.Event()

    def watch() -> None:
        with httpx.Client(timeout=30) as client:
            while not done.is_set():
                started = time.perf_counter()
                client.get(f"{base}/healthz")
                latencies.append(time.perf_counter() - started)
                peak[0] = max(peak[0], rss_mib(pid))
                done.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    written = [0]
    started = time.perf_counter()
    try:
        status = httpx.post(f"{base}{path}", content=body(total, start_bytes, written), headers=headers,
                            timeout=120).status_code
    except httpx.TransportError as exc:
        status = f"connection closed ({type(exc).__name__})"
    elapsed = time.perf_counter() - started
    time.sleep(0.5)  # a few more /healthz samples after the refusal
    done.set()
    watcher.join()
    return {"status": status, "written_mib": written[0] / 2**20, "seconds": elapsed,
            "rss_growth_mib": peak[0] - before, "healthz_ms": [s * 1000 for s in latencies]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=300, help="size of each oversized body (MiB)")
    args = parser.parse_args()
    total = args.mib * 2**20
    print(machine())
    print(f"{args.mib} MiB chunked bodies; RAG_MAX_REQUEST_BYTES at its default (4,000,000)")
    print("| keys | request | status | client wrote | RSS growth | /healthz p50 / p99 / max (n) |")
    print("|---|---|---|---|---|---|")
    for keyed in (False, True):
        with tempfile.TemporaryDirectory() as data_dir:
            server, base = start(Path(data_dir), keyed)
            try:
                for path in ("/v1/retrieve", "/v1/documents"):
                    r = one(base, server.pid, path, total, {})
                    ms = r["healthz_ms"]
                    print(f"| {'configured, none sent' if keyed else 'none'} | POST {path} | {r['status']} | "
                          f"{r['written_mib']:.1f} MiB in {r['seconds']:.2f} s | {r['rss_growth_mib']:.1f} MiB | "
                          f"{p50(ms):.1f} / {percentile(ms, 0.99):.1f} / {max(ms):.1f} ms ({len(ms)}) |", flush=True)
            finally:
                server.terminate()
                server.wait(timeout=60)


if __name__ == "__main__":
    main()
