"""`rag chat`: a terminal conversation, streamed, with citations after each answer.

Interactive on a terminal; with piped input it reads one question per line and prints plain
text, so it can be scripted. It talks to the service in-process or, with --url, to a running
server through the official `openai` client."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import click

from rag.chat import ChatMessage
from rag.errors import AccessDeniedError, LLMUnavailableError, RagError
from rag.models import Answer, ArticleSpan, Citation, PartAnswer, Passage, SearchFilter

HELP = """commands:
  /sources  the passages the last answer was drawn from
  /reset    forget the conversation
  /help     this text
  /quit     leave (Ctrl-D too); Ctrl-C cancels the answer being written"""


@dataclass
class Reply:
    """What a finished answer leaves behind for the next turn and for /sources."""

    text: str = ""
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    rewritten_question: str = ""
    parts: list[PartAnswer] = field(default_factory=list)


def source_line(citation: ArticleSpan) -> str:
    """Where a citation or passage comes from: its id and offsets, then title, date and source
    when the article has them."""
    about = [citation.title] if citation.title else []
    about += [str(citation.metadata[key]) for key in ("date", "source") if citation.metadata.get(key)]
    return f"{citation.document_id} [{citation.start}:{citation.end}]" + (f" {' · '.join(about)}" if about else "")


class InProcessChat:
    def __init__(self, service, search: SearchFilter | None = None) -> None:
        self.service = service
        self.search = search

    def stream(self, history: list[ChatMessage], reply: Reply) -> Iterator[str]:
        question, events = self.service.chat(history, search=self.search)
        reply.rewritten_question = question
        for event in events:
            if isinstance(event, Answer):
                reply.citations, reply.passages, reply.parts = event.citations, event.passages, event.parts
            else:
                yield event


class RemoteChat:
    """A running server's /v1/chat/completions, through the official openai client."""

    def __init__(self, url: str, search: SearchFilter | None = None, api_key: str | None = None) -> None:
        import openai

        self._openai = openai
        # The service's own request fields beside OpenAI's.
        self.extra_body = search.model_dump(mode="json", exclude_none=True, exclude_defaults=True) if search else {}
        self.client = openai.OpenAI(base_url=url.rstrip("/") + "/v1", api_key=api_key or "not-needed",
                                    max_retries=0)

    def stream(self, history: list[ChatMessage], reply: Reply) -> Iterator[str]:
        messages = [{"role": m.role, "content": m.content} for m in history]
        try:
            stream = self.client.chat.completions.create(
                model="rag-news", messages=messages, stream=True, extra_body=self.extra_body or None,
            )
            with stream:
                for chunk in stream:
                    extra = chunk.model_extra or {}
                    if "error" in extra:
                        raise LLMUnavailableError(extra["error"].get("message", "the server failed"))
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
                    if "citations" in extra:
                        reply.citations = [Citation.model_validate(c) for c in extra["citations"]]
                        reply.passages = [Passage.model_validate(p) for p in extra.get("passages", [])]
                        reply.rewritten_question = extra.get("rewritten_question", "")
                        reply.parts = [PartAnswer.model_validate(p) for p in extra.get("parts", [])]
        except self._openai.AuthenticationError:
            raise AccessDeniedError(
                f"{self.client.base_url} refused the API key (HTTP 401): pass the server's RAG_API_KEY "
                "with --api-key or RAG_CLIENT_API_KEY"
            ) from None
        except self._openai.APIStatusError as exc:
            detail = exc.body.get("detail") if isinstance(exc.body, dict) else None
            raise LLMUnavailableError(f"server answered HTTP {exc.status_code}: {detail or exc.message}") from None
        except self._openai.APIConnectionError as exc:
            raise LLMUnavailableError(f"cannot reach {self.client.base_url}: {exc}") from None


def run_chat(backend: InProcessChat | RemoteChat, read_line: Callable[[str], str], interactive: bool) -> None:
    history: list[ChatMessage] = []
    last = Reply()
    if interactive:
        click.echo("Ask about the articles. /help lists commands.")
    while True:
        try:
            line = read_line("you> " if interactive else "").strip()
        except EOFError:
            if interactive:
                click.echo()
            return
        except KeyboardInterrupt:
            click.echo()
            continue
        if not line:
            continue
        if line.startswith("/"):
            if not _command(line, history, last):
                return
            continue
        history.append(ChatMessage("user", line))
        reply = Reply()
        try:
            for piece in backend.stream(history, reply):
                reply.text += piece
                click.echo(piece, nl=False)
        except KeyboardInterrupt:
            click.echo("\n[answer cancelled]")
            history.pop()
            continue
        except RagError as exc:
            click.echo(f"error: {exc.message}", err=True)
            history.pop()
            continue
        click.echo()
        for part in reply.parts if any(not p.answered for p in reply.parts) and len(reply.parts) > 1 else []:
            click.echo(f"  {'answered' if part.answered else 'NOT in the articles'}: “{part.question}”")
        for citation in reply.citations:
            click.echo(f"  [{citation.ref}] {source_line(citation)}")
            click.echo(f"      “{citation.quote}”")
        history.append(ChatMessage("assistant", reply.text))
        last = reply


def _command(line: str, history: list[ChatMessage], last: Reply) -> bool:
    """Runs a /command; False means leave."""
    command = line.split()[0].lower()
    if command in ("/quit", "/exit"):
        return False
    if command == "/reset":
        history.clear()
        click.echo("(conversation cleared)")
    elif command == "/help":
        click.echo(HELP)
    elif command == "/sources":
        if not last.passages:
            click.echo("(no answer yet)")
        if last.rewritten_question:
            click.echo(f"question searched: {last.rewritten_question}")
        for rank, passage in enumerate(last.passages, 1):
            beside = " (beside a retrieved passage)" if passage.context_of else ""
            click.echo(f"{rank}. {passage.document_id} [{passage.start}:{passage.end}]{beside} {' '.join(passage.text.split())}")
    else:
        click.echo(f"unknown command {command}; /help lists them")
    return True


def read_line_from(stream) -> Callable[[str], str]:
    def read(prompt: str) -> str:
        if prompt:
            return input(prompt)
        line = stream.readline()
        if not line:
            raise EOFError
        return line

    return read


def is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()
