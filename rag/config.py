"""Settings: one typed object, built once at the edge (CLI or app factory) and passed down."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class AnswerStep(str, Enum):
    """The answer pipeline's switchable steps (rag.answer.steps), each measured on and off on the
    validation part (docs/answer-steps.md)."""

    REANCHOR = "reanchor"
    READ_ON = "read_on"
    CONFIRM = "confirm"


class AnswerSettings(BaseModel):
    """How an answer is read, written and checked. Environment: ``RAG_ANSWER__<NAME>``."""

    top_k: int = Field(
        8, ge=1, le=50,
        description="Passages retrieved for each part of a question, whose sentences are "
        "candidates to show the model (an API request's top_k overrides it).",
    )
    context_sentences: int = Field(
        8, ge=0, le=200,
        description="Sentences shown to the LLM for each part, those that bear most on it; 0: all "
        "of them. Each prompt token costs the embedded model time before it writes.",
    )
    sentence_term_weight: float = Field(
        1.0, ge=0,
        description="Weight, beside the embedding closeness, of the share of the question's "
        "content words a sentence holds when choosing the sentences to show.",
    )
    sentence_rank_weight: float = Field(
        0.2, ge=0,
        description="Weight of the passage's retrieval rank (1/(1+rank)) when choosing sentences.",
    )
    sentence_kind_weight: float = Field(
        0.1, ge=0,
        description="Weight given to a sentence that holds the kind of thing the question asks for "
        "(a figure for \"how tall\", a name the question does not give for \"which judge\") when "
        "choosing sentences (0: none).",
    )
    min_question_share: float = Field(
        0.5, ge=0, le=1,
        description="An answer stands only if the cited articles' retrieved text and titles hold "
        "at least this share of the question's content words.",
    )
    min_sentence_share: float = Field(
        0.3, ge=0, le=1,
        description="An answer stands only if the cited sentences that give it, with their articles' "
        "titles, hold at least this share of the content words of the part it answers: a figure "
        "lifted from a sentence about something else is not given.",
    )
    question_figures: bool = Field(
        True,
        description="An answer stands only if the cited articles' retrieved text and titles give "
        "every figure of the question (a year, a sequel's number).",
    )
    type_check: bool = Field(
        True,
        description="An answer to a \"how many/how much\" part must hold a figure, to a \"when\" "
        "part a figure or a word of time, and to a \"where\" part more than a time.",
    )
    restated_words: bool = Field(
        True,
        description="An answer stands only if the words it repeats from the question are in its "
        "cited sentences too, or in the titles of the articles that give it.",
    )
    max_tokens: int = Field(
        96, ge=16, le=2048,
        description="Most tokens the model may write for an answer (sentence numbers and a short answer).",
    )
    read_on_sentences: int = Field(
        2, ge=1, le=10, description="Sentences after the cited one that read_on shows the model.",
    )
    steps: Annotated[frozenset[AnswerStep], NoDecode] = Field(
        frozenset({AnswerStep.REANCHOR, AnswerStep.READ_ON, AnswerStep.CONFIRM}),
        description="The switchable steps, comma-separated (empty: none): reanchor (cite the shown "
        "sentences that hold the answer's words when the cited ones do not), read_on (ask again, "
        "shown the cited sentence and the ones after it, when the answer only repeated the "
        "question), confirm (the model asked yes or no whether the cited sentence states the "
        "answer to the part asked). Measured: docs/answer-steps.md.",
    )

    @field_validator("steps", mode="before")
    @classmethod
    def _comma_separated_steps(cls, value):
        if isinstance(value, str):
            names = [step.strip() for step in value.split(",") if step.strip()]
            known = [step.value for step in AnswerStep]
            if unknown := [n for n in names if n not in known]:
                raise ValueError(f"unknown answer step {unknown[0]!r}; known: {', '.join(known)}")
            return frozenset(AnswerStep(n) for n in names)
        return value


class Settings(BaseSettings):
    """Every knob of the service. Environment variables use the ``RAG_`` prefix."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_nested_delimiter="__", env_file=None, extra="ignore"
    )

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Field(
        Path("data"),
        description="Directory for the embedded Chroma database and the model cache.",
    )
    collection: str = Field(
        "news",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,50}[A-Za-z0-9]$",
        description="Chroma collection holding the chunks (documents live in '<name>_documents').",
    )
    chroma_url: str = Field(
        "",
        description="Empty: an embedded PersistentClient in data_dir. Set (http://host:port): "
        "an HttpClient to a `chroma run` server.",
    )

    # --- ingest --------------------------------------------------------------------------
    chunk_size: int = Field(
        96, ge=16, le=256, description="Chunk size in embedding-model tokens (the model reads 256)."
    )
    chunk_overlap: int = Field(0, ge=0, le=128, description="Tokens shared by neighbouring chunks.")
    embed_batch_size: int = Field(32, ge=1, le=512, description="Texts per embedding-model call.")
    ingest_group_chunks: int = Field(
        256, ge=1, le=8192,
        description="Chunks embedded and written to Chroma together when ingesting many articles: "
        "the embedding model and Chroma pay per call, so fewer, larger groups are faster, and a run "
        "that is stopped keeps every group it finished.",
    )
    max_document_bytes: int = Field(
        2_000_000, ge=1, description="Largest accepted article (UTF-8 bytes); larger gets HTTP 413."
    )

    # --- retrieval -----------------------------------------------------------------------
    top_k: int = Field(5, ge=1, le=50, description="Passages returned by retrieval (an answer reads answer_top_k).")
    candidate_k: int = Field(
        20, ge=1, le=200, description="Candidates each retriever (dense, BM25) offers to fusion."
    )
    answer: AnswerSettings = Field(
        default_factory=lambda: AnswerSettings(),
        description="The answer pipeline's settings (RAG_ANSWER__<NAME>: docs/configuration.md).",
    )
    max_query_chars: int = Field(2000, ge=1, description="Longest accepted query or question.")
    store_recheck_s: float = Field(
        2.0, ge=0,
        description="How often retrieval reloads the keyword index in any case (it also reloads "
        "within about half a second of any process's commit, and at once after its own); 0: every query.",
    )
    keyword_dir: Path | None = Field(
        None,
        description="Folder of the keyword (BM25) index, one subfolder per collection; empty: "
        "data_dir/keywords. Replicas sharing a Chroma server share this folder too (one writes "
        "at a time, all read).",
    )
    keyword_lock_wait_s: float = Field(
        60.0, ge=0,
        description="How long a write waits for the keyword index's writer lock while another "
        "process holds it, before it fails.",
    )

    # --- serving -------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `rag serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `rag serve` listens on.")
    seed_dir: Path = Field(Path("seeds"), description="Articles ingested on first start.")
    seed_on_empty: bool = Field(
        True, description="Ingest seed_dir when the service starts over an empty store."
    )

    # --- trust boundary ------------------------------------------------------------------
    api_key: SecretStr = Field(
        SecretStr(""),
        description="Keys (comma-separated) a client must send as `Authorization: Bearer KEY` to "
        "use the API; empty (and no read-only key): no authentication. /healthz and the web page's "
        "files stay open.",
    )
    read_only_api_key: SecretStr = Field(
        SecretStr(""),
        description="Keys (comma-separated) that may read, search, ask and chat but not ingest or "
        "delete documents (HTTP 403).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (comma-separated) whose pages may call the API from a browser; "
        "empty: same origin only (the web page is served by the app itself).",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names (comma-separated) the server answers to besides its loopback names "
        "and RAG_HOST, when there is no API key; another Host header gets HTTP 403, so a web page "
        "cannot reach the server through a name it controls (DNS rebinding). `*`: any.",
    )
    max_request_bytes: int = Field(
        4_000_000, ge=1,
        description="Largest accepted request body, counted as it arrives (chunked uploads too) "
        "and refused with HTTP 413 once over, before it is parsed.",
    )
    questions_per_minute: int = Field(
        0, ge=0,
        description="Questions (/v1/ask, /v1/chat/completions) per minute for each key, or each "
        "client address when there is no key; more get HTTP 429. 0: no limit.",
    )

    question_queue_depth: int = Field(
        16, ge=0,
        description="Questions (/v1/ask, /v1/chat/completions) that may wait for a turn at the model "
        "while llm_concurrency others are answered; one more gets HTTP 503 with Retry-After at "
        "once. A client that disconnects while waiting gives its place back, unanswered.",
    )
    question_queue_wait_s: float = Field(
        30.0, gt=0,
        description="Longest a question waits for a turn at the model before HTTP 503 with Retry-After.",
    )
    shutdown_grace_s: float = Field(
        3.0, ge=0,
        description="On SIGTERM, how long `rag serve` lets requests in progress finish before it "
        "cancels them (questions still waiting, streams still open) and stops.",
    )

    # --- LLM -----------------------------------------------------------------------------
    llm_base_url: str = Field(
        "",
        description="OpenAI-compatible endpoint (https://api.openai.com/v1, vLLM, Ollama, "
        "llama.cpp). Empty: start the embedded llama.cpp server with the packaged model.",
    )
    llm_model: str = Field(
        "qwen2.5-coder-1.5b-instruct-q4_k_m",
        description="Model name sent to the endpoint (the embedded server's alias by default).",
    )
    llm_api_key: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("RAG_LLM_API_KEY", "OPENAI_API_KEY", "llm_api_key"),
        description="API key for the endpoint (OPENAI_API_KEY is honoured too).",
    )
    llm_timeout_s: float = Field(120.0, gt=0, description="Timeout of one LLM request.")
    llm_max_retries: int = Field(1, ge=0, le=5, description="Retries of a failed LLM request.")
    llm_max_tokens: int = Field(384, ge=16, le=4096, description="Most tokens the LLM may write.")
    llm_json_mode: str = Field(
        "auto",
        pattern=r"^(auto|json_schema|json_object|none)$",
        description="Structured-output style: json_schema (OpenAI, vLLM, llama.cpp's server), "
        "json_object with a schema (older llama.cpp servers), none (prompt only); auto: json_schema.",
    )
    llm_stream_usage: bool = Field(
        True,
        description="Ask the endpoint to report token usage at the end of a streamed reply "
        "(stream_options.include_usage; OpenAI, vLLM and llama.cpp's server do). Off for a server "
        "that refuses the field; usage is then estimated.",
    )
    llm_concurrency: int = Field(
        0, ge=0, le=64,
        description="Generations in flight at once; more wait their turn (0: 1 for the embedded "
        "server, which runs one at a time anyway, 8 for a remote endpoint).",
    )
    llm_model_path: Path | None = Field(
        None, description="A local GGUF for the embedded server instead of the packaged model."
    )
    llm_context_tokens: int = Field(4096, ge=512, description="Embedded server context window.")
    llm_threads: int = Field(0, ge=0, description="Embedded server threads (0: all cores).")
    llm_runtime: str = Field(
        "auto",
        pattern=r"^(auto|llama-server|xllamacpp)$",
        description="The prebuilt llama.cpp server the embedded model runs on: auto picks the "
        "fastest build this CPU can execute (llama-server's AVX-512 build where the CPU has "
        "AVX-512 with VNNI and BF16 and AVX-VNNI, else xllamacpp's AVX2 build), falling back to "
        "the next if it fails to start.",
    )
    llm_startup_timeout_s: float = Field(
        180.0, gt=0, description="How long to wait for the embedded server to become ready."
    )

    @field_validator("cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def api_keys(self) -> list[str]:
        """The keys that may do everything."""
        return _keys(self.api_key)

    @property
    def read_only_api_keys(self) -> list[str]:
        return _keys(self.read_only_api_key)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys or self.read_only_api_keys)

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def keyword_path(self) -> Path:
        return (self.keyword_dir or self.data_dir / "keywords") / self.collection

    @property
    def model_cache_dir(self) -> Path:
        return self.data_dir / "models"


def _keys(secret: SecretStr) -> list[str]:
    return [key.strip() for key in secret.get_secret_value().split(",") if key.strip()]


def settings_table() -> str:
    """docs/configuration.md's table: every setting's variable, default and description."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]

    def add(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                add(field.annotation, f"{prefix}{name.upper()}__")
                continue
            meaning = " ".join((field.description or "").split()).replace("|", "\\|")
            rows.append(f"| `{prefix}{name.upper()}` | {_shown_default(field)} | {meaning} |")

    add(Settings, "RAG_")
    return "\n".join(rows)


def _shown_default(field) -> str:
    default = field.get_default(call_default_factory=True)
    if isinstance(default, SecretStr):
        default = default.get_secret_value()
    if isinstance(default, frozenset):
        default = ",".join(sorted(step.value for step in default))
    if isinstance(default, bool):
        default = str(default).lower()
    return "(empty)" if default in ("", None, []) else f"`{default}`"


if __name__ == "__main__":  # python -m rag.config > the table in docs/configuration.md
    print(settings_table())
