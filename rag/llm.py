"""The one seam to an LLM: any OpenAI-compatible endpoint through the `openai` client. With no
endpoint configured, the embedded llama.cpp server (rag.llm_server) is started and used."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import Context, ContextVar, copy_context
from dataclasses import dataclass
from typing import Literal

import httpx
import openai

from rag.config import Settings
from rag.errors import LLMUnavailableError, ModelFileError
from rag import llm_runtime
from rag.llm_server import EmbeddedLlamaServer, packaged_model

log = logging.getLogger(__name__)

JsonMode = Literal["json_schema", "json_object", "none"]

# A chat template's control tokens written out as text (ChatML's <|im_start|>, Llama 3's
# <|eot_id|>). llama.cpp's server tokenizes the prompt it formats with special tokens parsed, so
# such text inside an article would open a turn of its own: a "system" message the model obeys.
_CONTROL_TOKEN = re.compile(r"<\|([A-Za-z0-9_.\-]{1,40})\|>")


def defuse_control_tokens(text: str) -> str:
    """``text`` with each control token written as plain words (``<|im_start|>`` -> ``<im_start>``):
    what a message says can never become the template's structure."""
    return _CONTROL_TOKEN.sub(r"<\1>", text)


@dataclass(frozen=True)
class GenerationOptions:
    """Per-request sampling overrides (the chat API's temperature and max_tokens)."""

    temperature: float | None = None
    max_tokens: int | None = None


@dataclass
class TokenUsage:
    """The tokens an LLM read and wrote for one request, summed over its calls (a follow-up's
    rewrite, the answer, a repair). A call whose endpoint reports no usage is estimated at four
    characters a token (``estimated_calls`` counts those)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    estimated_calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, reported, messages: list[dict], reply: str) -> None:
        self.calls += 1
        if reported is not None and getattr(reported, "prompt_tokens", None) is not None:
            self.prompt_tokens += reported.prompt_tokens
            self.completion_tokens += reported.completion_tokens or 0
            return
        self.estimated_calls += 1
        self.prompt_tokens += estimate_tokens("".join(m["content"] for m in messages))
        self.completion_tokens += estimate_tokens(reply)


def estimate_tokens(text: str) -> int:
    """OpenAI's rule of thumb for English: about four characters a token."""
    return (len(text) + 3) // 4


# The usage of the request being served; every LLM call made in a context counted by
# count_usage() adds its tokens there.
_usage: ContextVar[TokenUsage | None] = ContextVar("rag_llm_usage", default=None)


def count_usage(usage: TokenUsage) -> Context:
    """A context in which every LLM call adds its tokens to ``usage``: run a request's steps
    with ``context.run(...)`` (also across threads, one step at a time)."""
    context = copy_context()
    context.run(_usage.set, usage)
    return context


def _record(reported, messages: list[dict], reply: str) -> None:
    usage = _usage.get()
    if usage is not None:
        usage.add(reported, messages, reply)


class LLM:
    """Chat completions with structured output against the configured endpoint."""

    def __init__(self, settings: Settings, http_client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.model = settings.llm_model
        self._http_client = http_client
        self._embedded: EmbeddedLlamaServer | None = None
        self._client: openai.OpenAI | None = None
        self._warmup_prompts: list[list[dict]] = []
        self._lock = threading.Lock()
        # Requests wait here, not in the server's queue, so waiting never eats into the timeout.
        self.concurrency = settings.llm_concurrency or (1 if self.embedded else 8)
        self._slots = threading.BoundedSemaphore(self.concurrency)

    @property
    def embedded(self) -> bool:
        return not self.settings.llm_base_url

    @property
    def json_mode(self) -> JsonMode:
        if self.settings.llm_json_mode != "auto":
            return self.settings.llm_json_mode  # type: ignore[return-value]
        # llama.cpp's server, OpenAI and vLLM all take the standard json_schema form.
        return "json_schema"

    def warm_with(self, warmup_prompts: list[list[dict]]) -> None:
        """The fixed prompts every answer begins with: the embedded server, whenever it starts,
        reads each once before it reports ready, each in a slot of its own so that none evicts
        another's cached prefix."""
        self._warmup_prompts = warmup_prompts

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

    def runtime(self) -> str:
        """What serves the model: the embedded runtime and its build, or the remote endpoint."""
        if not self.embedded:
            return f"remote: {self.settings.llm_base_url}"
        if self._embedded is None:
            return "embedded: not started"
        return f"embedded: {self._embedded.runtime.describe()}"

    def _embedded_server(self) -> EmbeddedLlamaServer:
        with self._lock:
            if self._embedded is None:
                runtimes = llm_runtime.choose(self.settings.llm_runtime)
                if not runtimes:
                    raise LLMUnavailableError(
                        "no llama.cpp runtime can serve the embedded model here ("
                        + llm_runtime.why_none(self.settings.llm_runtime)
                        + "): pip install '.[local-llm]', or set RAG_LLM_BASE_URL"
                    )
                path = self.settings.llm_model_path or packaged_model(self.settings.model_cache_dir)
                if not path.is_file():
                    raise ModelFileError(f"RAG_LLM_MODEL_PATH {path} is not a file")
                self._embedded = EmbeddedLlamaServer(path, self.model, self.settings, runtimes, self._warmup_prompts)
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

    def _request(
        self, messages: list[dict], schema: dict | None, schema_name: str, options: GenerationOptions | None
    ) -> dict:
        options = options or GenerationOptions()
        request: dict = {
            "model": self.model,
            "messages": [{**m, "content": defuse_control_tokens(m["content"])} for m in messages],
            "temperature": options.temperature if options.temperature is not None else 0.0,
            "max_tokens": min(options.max_tokens or self.settings.llm_max_tokens, self.settings.llm_max_tokens),
        }
        # No schema: plain text, with no grammar slowing llama.cpp's generation.
        if schema is not None and self.json_mode == "json_schema":
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": False},
            }
        elif schema is not None and self.json_mode == "json_object":
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
        except httpx.TransportError as exc:
            # openai wraps what fails before the reply; a connection lost while the reply streams
            # in (the server killed mid-answer) reaches the reader as httpx's own error.
            raise LLMUnavailableError(f"the LLM at {self._where()} stopped answering mid-reply: {exc}") from None

    def turn(self) -> threading.BoundedSemaphore:
        """A turn at the LLM (one of llm_concurrency), for a caller to hold across its request's
        own preparation too, so that CPU work such as embedding never runs beside another
        generation of a local model on the same cores; it then passes ``in_turn=True``."""
        return self._slots

    def chat_json(
        self, messages: list[dict], schema: dict, schema_name: str, options: GenerationOptions | None = None,
        in_turn: bool = False,
    ) -> str:
        """The model's reply to ``messages``, asked to follow ``schema``. Raises
        LLMUnavailableError when the endpoint cannot be reached or refuses. ``in_turn``: the
        caller holds a turn() already."""
        request = self._request(messages, schema, schema_name, options)
        with (nullcontext() if in_turn else self.turn()), self._errors():
            response = self._openai().chat.completions.create(**request)
        choice = response.choices[0] if response.choices else None
        content = (choice.message.content or "") if choice else ""
        _record(response.usage, request["messages"], content)
        return content

    def stream_text(
        self, messages: list[dict], options: GenerationOptions | None = None, in_turn: bool = False,
        schema: dict | None = None,
    ) -> Iterator[str]:
        """The model's reply to ``messages`` as it is generated, piece by piece: free text, or
        JSON following ``schema``. ``in_turn``: the caller holds a turn() already."""
        request = self._request(messages, schema, "reply", options)
        if self.settings.llm_stream_usage:
            request["stream_options"] = {"include_usage": True}
        pieces: list[str] = []
        reported = None
        with (nullcontext() if in_turn else self.turn()), self._errors():
            stream = self._openai().chat.completions.create(**request, stream=True)
            try:
                for chunk in stream:
                    reported = getattr(chunk, "usage", None) or reported
                    if chunk.choices and chunk.choices[0].delta.content:
                        pieces.append(chunk.choices[0].delta.content)
                        yield chunk.choices[0].delta.content
            finally:
                stream.close()  # a reader that stops early stops the generation too
                _record(reported, request["messages"], "".join(pieces))

    def _where(self) -> str:
        return "the embedded server" if self.embedded else self.settings.llm_base_url

    def close(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
