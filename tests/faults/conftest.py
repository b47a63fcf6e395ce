"""The fault suite's parts: `rag` as a real process, a tiny OpenAI-compatible LLM server on
loopback, the figures every test adds to (faults injected, requests made, 5xx seen, documents
lost), printed at the end of the run and written to $RAG_FAULT_FIGURES when it is set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, SEEDS, free_port, stop, wait_until_ok
from tests.fake_llm import CONFIRMED, cited_reply, is_confirm_check, sentences_in

HERE = Path(__file__).parent
# The whole run's, over every fault test.
FIGURES: Counter = Counter(dict.fromkeys(["faults_injected", "requests", "responses_5xx", "documents_lost"], 0))


def pytest_collection_modifyitems(items) -> None:
    # Every test in this folder is a fault test: `pytest -m faults` runs them alone, `pytest` with them.
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def figures() -> Counter:
    return FIGURES


def pytest_terminal_summary(terminalreporter) -> None:
    if not any(FIGURES.values()):
        return
    line = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in sorted(FIGURES.items()))
    terminalreporter.write_line(f"fault suite figures: {line}")
    if target := os.environ.get("RAG_FAULT_FIGURES"):
        Path(target).write_text(json.dumps(dict(FIGURES), indent=2, sort_keys=True) + "\n", encoding="utf-8")




# --- `rag` as a process --------------------------------------------------------------------
def rag_env(data_dir: Path, **variables: str) -> dict[str, str]:
    """The environment of a `rag` process: this checkout's code first (a worktree beside an
    editable install must test its own), telemetry off, the given RAG_ variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAG_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update({"RAG_DATA_DIR": str(data_dir), "RAG_SEED_DIR": str(SEEDS), "ANONYMIZED_TELEMETRY": "False"})
    env.update({f"RAG_{key.upper()}": value for key, value in variables.items()})
    return env


def rag_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from rag.cli import main; main()", *args]


class RagServer:
    """`rag serve` as a child process on a free loopback port."""

    def __init__(self, env: dict[str, str], prefix: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(env["RAG_DATA_DIR"]).parent / f"rag-serve-{self.port}.log"
        with self.log_path.open("wb") as log:  # a file, not a pipe nobody reads that could fill
            self.process = subprocess.Popen(
                [*(prefix or []), *rag_command("serve", "--port", str(self.port))],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        """The end of what the server wrote, for a failing assertion to show."""
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self, deadline_s: float = 120) -> RagServer:
        try:
            wait_until_ok(f"{self.url}/healthz", self.process, deadline_s)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log()}") from None
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # its lifespan stops the children it started
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stop(self.process)


@pytest.fixture
def rag_server():
    started: list[RagServer] = []

    def start(env: dict[str, str], prefix: list[str] | None = None, deadline_s: float = 120) -> RagServer:
        server = RagServer(env, prefix)
        started.append(server)
        return server.wait_ready(deadline_s)

    yield start
    for server in started:
        server.stop()


class Calls:
    """HTTP calls made through one httpx client, each status counted into the figures."""

    def __init__(self, base_url: str, figures: Counter, timeout: float = 60) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout)
        self.figures = figures
        self.statuses: Counter = Counter()
        self.errors_5xx: list[tuple[str, int, str]] = []
        self._lock = threading.Lock()

    def __call__(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        with self._lock:
            self.statuses[response.status_code] += 1
            self.figures["requests"] += 1
            if response.status_code >= 500:
                self.figures["responses_5xx"] += 1
                self.errors_5xx.append((f"{method} {path}", response.status_code, response.text[:300]))
        return response

    def close(self) -> None:
        self.http.close()


# --- a tiny OpenAI-compatible LLM on loopback ------------------------------------------------
def first_sentence_reply(request: dict) -> str:
    """A reply in the prompt's shape citing the first sentence shown, in its own words: it
    verifies, so an answer shows up."""
    if is_confirm_check(request):
        return CONFIRMED
    shown = sentences_in(request)
    if not shown:
        return "NOT FOUND"
    number, text = next(iter(shown.items()))
    return cited_reply((text, number))


class LoopbackLLM:
    """OpenAI's chat completions (plain and streamed) served over real HTTP, answering every
    request with ``reply(request)``; `rag serve` in another process reaches it by URL."""

    def __init__(self, reply: Callable[[dict], str] = first_sentence_reply) -> None:
        self.reply = reply
        self.requests = 0
        handler = self._handler()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self._send(200, "application/json", json.dumps({"object": "list", "data": [{"id": "fake"}]}))

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests += 1
                content = fake.reply(body)
                if body.get("stream"):
                    events = [{"role": "assistant", "content": ""}, {"content": content}, {}]
                    text = "".join(
                        "data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 0,
                                               "model": body["model"], "choices": [{
                                                   "index": 0, "delta": delta,
                                                   "finish_reason": None if delta else "stop"}]}) + "\n\n"
                        for delta in events
                    ) + "data: [DONE]\n\n"
                    self._send(200, "text/event-stream", text)
                else:
                    self._send(200, "application/json", json.dumps({
                        "id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": content}}],
                    }))

            def _send(self, status: int, content_type: str, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


@pytest.fixture
def loopback_llm():
    llm = LoopbackLLM()
    yield llm
    llm.close()
