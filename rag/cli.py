"""The `rag` command. Settings are built once here and handed down; every RagError becomes a
one-line message and a non-zero exit in `main`, never a traceback."""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from rag.chat_cli import source_line
from rag.config import Settings
from rag.errors import RagError


class Context:
    """What subcommands share: the settings, and a service built on first use."""

    def __init__(self, settings: Settings, service=None) -> None:
        """``service``: one already built (a caller that holds it closes it)."""
        self.settings = settings
        self._service = service

    @property
    def service(self):
        if self._service is None:
            from rag.service import RagService  # heavy imports only when a command needs them

            self._service = RagService.from_settings(self.settings)
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()


pass_context = click.make_pass_decorator(Context)


@click.group()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Overrides RAG_DATA_DIR.")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None) -> None:
    """Answer questions about news articles with citations you can check."""
    overrides = {"data_dir": data_dir} if data_dir else {}
    ctx.obj = Context(Settings(**overrides))
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--metadata", "metadata_pairs", multiple=True, metavar="KEY=VALUE",
              help="Metadata for every article ingested (repeatable), e.g. --metadata source=BBC.")
@click.option("--progress-every", type=click.IntRange(1), default=100, show_default=True,
              help="Without a terminal: a progress line every N files.")
@click.option("--verbose", "-v", is_flag=True, help="A line for every article, not only the changes.")
@pass_context
def ingest(app: Context, paths: tuple[Path, ...], metadata_pairs: tuple[str, ...], progress_every: int,
           verbose: bool) -> None:
    """Ingest .txt, .md and .html files and folders of them (nested folders too).

    Ids are the path below the folder given (business/001); the first folder level is kept as the
    article's section. A file that cannot be read is reported and the others are ingested; the exit
    status is then 1."""
    from rag.ingest_progress import IngestProgress
    from rag.loading import find_article_files

    metadata = _pairs(metadata_pairs, "--metadata")
    files = list(find_article_files(list(paths)))
    if metadata:
        files = [file.with_metadata(metadata) for file in files]
    with IngestProgress(len(files), sys.stderr, every=progress_every) as progress:
        report = app.service.ingest_files(files, on_each=progress.update)
    for result in report.results:
        if result.status == "duplicate":
            click.echo(f"duplicate {result.document_id} = {result.duplicate_of}  (kept as an alias)")
        elif verbose or result.status != "unchanged":
            click.echo(f"{result.status:9} {result.document_id}  ({result.chunk_count} chunks)  {result.title}")
    for failure in report.failures:
        click.echo(f"failed    {failure.file}: {failure.reason}", err=True)
    click.echo(progress.summary(report))
    if report.failures:
        sys.exit(1)


def _pairs(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        parsed[key.strip()] = value.strip()
    return parsed


def filter_options(command):
    """--where, --since, --until and --document: the articles a search or answer may draw on."""
    command = click.option("--document", "document_ids", multiple=True, metavar="ID",
                           help="Only this document (repeatable).")(command)
    command = click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Published on or before this day.")(command)
    command = click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Published on or after this day.")(command)
    return click.option("--where", "where_pairs", multiple=True, metavar="KEY=VALUE",
                        help="Metadata that must match (repeatable), e.g. --where section=business.")(command)


def search_filter(where_pairs, since, until, document_ids):
    from rag.models import SearchFilter

    try:
        search = SearchFilter(
            document_ids=list(document_ids) or None, where=_pairs(where_pairs, "--where"),
            date_from=since.date() if since else None, date_to=until.date() if until else None,
        )
    except ValidationError as exc:
        raise click.BadParameter(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
    return None if search.is_empty else search


# Options that several commands share, spelled once.
json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON shape.")


def top_k_option(help: str):
    return click.option("--top-k", type=click.IntRange(1, 50), help=help)


@cli.command()
@click.argument("query")
@top_k_option("Passages to return.")
@filter_options
@json_option
@pass_context
def search(app: Context, query: str, top_k: int | None, as_json: bool, **filters) -> None:
    """Retrieve the passages that best match QUERY."""
    passages = app.service.retrieve(query, top_k, search_filter(**filters))
    if as_json:
        click.echo(json.dumps({"query": query, "passages": [p.model_dump() for p in passages]}, indent=2))
        return
    if not passages:
        click.echo("no passages found (is anything ingested?)")
    for rank, passage in enumerate(passages, 1):
        click.echo(f"{rank}. {source_line(passage)}  score={passage.score:.4f}")
        click.echo(f"   {passage.text}")


@cli.command()
@click.argument("question")
@top_k_option("Passages to give the model.")
@click.option("--trace", is_flag=True, help="Also print (to stderr) what the model was shown, what it wrote and each check's verdict.")
@filter_options
@json_option
@pass_context
def ask(app: Context, question: str, top_k: int | None, as_json: bool, trace: bool, **filters) -> None:
    """Answer QUESTION from the articles, with citations."""
    answer = app.service.ask(question, top_k, search_filter(**filters), debug=trace)
    if as_json:
        click.echo(answer.model_dump_json(indent=2))
        return
    if trace:
        for step in answer.trace or []:
            where = f" (part {step.part + 1})" if step.part is not None else ""
            click.echo(f"-- {step.step}{where}", err=True)
            for key, value in step.data.items():
                shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                click.echo(f"   {key}: " + shown.replace("\n", "\n      "), err=True)
    click.echo(answer.answer)
    if answer.abstained and answer.abstain_reason:
        click.echo(f"({answer.abstain_reason})")
    for part in answer.parts if len(answer.parts) > 1 else []:
        status = "answered" if part.answered else f"not answered: {part.reason}"
        click.echo(f"  part “{part.question}”: {status}")
    for citation in answer.citations:
        click.echo(f"[{citation.ref}] {source_line(citation)}")
        click.echo(f"    “{citation.quote}”")


@cli.command()
@click.option("--delete", "delete_id", metavar="ID", help="Delete this document.")
@json_option
@pass_context
def documents(app: Context, delete_id: str | None, as_json: bool) -> None:
    """List ingested documents, or delete one."""
    if delete_id:
        app.service.delete_document(delete_id)
        click.echo(f"deleted {delete_id}")
        return
    docs = app.service.list_documents()
    if as_json:
        click.echo(json.dumps([d.model_dump(mode="json") for d in docs], indent=2))
        return
    if not docs:
        click.echo("no documents")
    for doc in docs:
        click.echo(f"{doc.id}  {doc.chunk_count:3} chunks  {doc.ingested_at:%Y-%m-%d %H:%M}  {doc.title}")


@cli.command()
@click.option("--url", help="Talk to a running server (e.g. http://127.0.0.1:8000) instead of in-process.")
@click.option("--api-key", envvar="RAG_CLIENT_API_KEY", help="The server's API key, with --url (RAG_CLIENT_API_KEY).")
@filter_options
@pass_context
def chat(app: Context, url: str | None, api_key: str | None, **filters) -> None:
    """Chat about the articles: streamed answers, citations, follow-up questions."""
    from rag.chat_cli import InProcessChat, RemoteChat, is_interactive, read_line_from, run_chat

    search = search_filter(**filters)
    backend = RemoteChat(url, search, api_key) if url else InProcessChat(app.service, search)
    run_chat(backend, read_line_from(click.get_text_stream("stdin")), is_interactive())


@cli.command("eval")
@click.option("--set", "--questions", "question_set", type=click.Path(path_type=Path),
              default=Path("eval/questions.jsonl"), show_default=True,
              help="The question set (JSON lines with key facts and gold evidence).")
@click.option("--corpus", type=click.Path(path_type=Path, file_okay=False),
              help="A folder of articles to answer over, ingested once into the data dir and reused "
                   "(default: the seed articles, in a fresh store).")
@click.option("--url", help="Evaluate a running server instead of the service in-process.")
@click.option("--baseline", type=click.Choice(["citation-qe"]), help="Also run a stock system, side by side.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=Path("eval/config.toml"), show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("eval/results"), show_default=True)
@click.option("--retrieval-only", is_flag=True, help="Only retrieval figures (no LLM).")
@click.option("--limit", type=click.IntRange(1), help="Only the first N questions.")
@pass_context
def eval_command(app: Context, question_set: Path, corpus: Path | None, url: str | None, baseline: str | None,
                 config_path: Path, out: Path, retrieval_only: bool, limit: int | None) -> None:
    """Score answers, citations (against gold evidence), abstention and retrieval on a question set."""
    from rag.evaluation.session import run_eval

    results, missed = run_eval(
        app.settings, question_set, config_path, out, url=url, baseline=baseline, corpus=corpus,
        retrieval_only=retrieval_only, limit=limit, progress=lambda line: click.echo(line, err=True),
    )
    click.echo(results)
    if missed:
        click.echo("below threshold: " + "; ".join(missed), err=True)
        sys.exit(3)


@cli.command()
@click.option("--host", help="Bind address (RAG_HOST).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (RAG_PORT).")
@pass_context
def serve(app: Context, host: str | None, port: int | None) -> None:
    """Serve the HTTP API (ingests the seed articles into an empty store first)."""
    import uvicorn

    from api.app import create_app, server_options

    settings = app.settings.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v})
    if warning := exposure_warning(settings):
        click.echo(warning, err=True)
    uvicorn.run(create_app(settings=settings), **server_options(settings))


@cli.command()
@pass_context
def mcp(app: Context) -> None:
    """Serve the archive's MCP tools (search, ask, get_document, list_documents) over stdio, for
    Claude Desktop, IDE agents and other MCP clients (ingests the seed articles into an empty
    store first, as `rag serve` does). Nothing but the protocol is written to stdout."""
    from api.mcp_server import build_mcp_server

    service = app.service

    def start() -> None:
        service.seed_if_empty()
        service.start_llm()  # the embedded model loads in the background

    build_mcp_server(lambda: service, on_start=start).run("stdio")


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


def exposure_warning(settings: Settings) -> str | None:
    """A loud line when the server would be reachable from other machines with no key asked."""
    if settings.auth_enabled or is_loopback(settings.host):
        return None
    return (
        f"WARNING: serving on {settings.host} without RAG_API_KEY: anyone who can reach port "
        f"{settings.port} can read, ingest and delete every article. Set RAG_API_KEY. (Without "
        f"one, only requests naming localhost or a host in RAG_ALLOWED_HOSTS are answered.)"
    )


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RagError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    except ValidationError as exc:  # bad RAG_* settings
        first = exc.errors()[0]
        click.echo(f"error: invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
