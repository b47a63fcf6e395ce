"""The `rag` CLI through click's runner, and once as the installed console script."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from rag.cli import cli
from tests.conftest import DOC_A, DOC_B, SEEDS


@pytest.fixture
def run(tmp_path):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["--data-dir", str(tmp_path / "data"), *args], catch_exceptions=False)

    return invoke


def test_ingest_search_documents_delete(run):
    ingested = run("ingest", str(SEEDS))
    assert ingested.exit_code == 0, ingested.output
    assert ingested.output.count("created   ") == 2 and "2 files in" in ingested.output
    assert "0 created, 0 updated, 2 unchanged" in run("ingest", str(SEEDS)).output

    found = run("search", "Which town did the Russian Defense Ministry say it retook?", "--json")
    passages = json.loads(found.output)["passages"]
    assert len(passages) == 5 and any("retaking of Sudzha" in p["text"] for p in passages)

    listing = run("documents")
    assert DOC_A in listing.output and DOC_B in listing.output
    assert run("documents", "--delete", DOC_B).output.strip() == f"deleted {DOC_B}"
    assert [d["id"] for d in json.loads(run("documents", "--json").output)] == [DOC_A]


def rag_script(tmp_path, *args):
    """The installed console script, so error handling is seen as a user sees it."""
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "data")}
    code = "from rag.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["ingest", "does-not-exist"], "error: does-not-exist: no such file or folder"),
        (["search", "   "], "error: query is empty"),
        (["documents", "--delete", "nope"], "error: no document with id 'nope'"),
        (["eval", "--set", "none.jsonl"], "error: none.jsonl: no such question file"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, args, message):
    result = rag_script(tmp_path, *args)
    assert result.returncode == 1
    assert result.stderr.strip() == message
    assert "Traceback" not in result.stderr + result.stdout


def test_empty_folder_and_binary_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = rag_script(tmp_path, "ingest", str(empty))
    assert result.returncode == 1 and "no .txt, .md or .html files" in result.stderr
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\x89PNG\x00\x00")
    result = rag_script(tmp_path, "ingest", str(binary))
    assert result.returncode == 1 and "binary" in result.stderr and "Traceback" not in result.stderr


def test_bad_setting_is_one_line(tmp_path):
    env = {**os.environ, "RAG_TOP_K": "many"}
    result = subprocess.run(
        [sys.executable, "-c", "from rag.cli import main; main()", "documents"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 2 and result.stderr.startswith("error: invalid setting top_k")


def test_llm_down_is_a_one_line_message(tmp_path):
    assert rag_script(tmp_path, "ingest", str(SEEDS)).returncode == 0
    env_url = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "data"), "RAG_LLM_BASE_URL": env_url,
           "RAG_LLM_MAX_RETRIES": "0"}
    result = subprocess.run(
        [sys.executable, "-c", "from rag.cli import main; main()", "ask", "How many soldiers surrendered?"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot reach the LLM at {env_url}")
    assert len(result.stderr.strip().splitlines()) == 1


def test_ingest_an_archive_with_a_bad_file_duplicates_and_filters(tmp_path):
    archive = tmp_path / "archive"
    files = {
        "business/001.txt": "Ferry profits rise\n\nProfits at the Baltic ferry operator rose 12% in the spring.",
        "sport/001.txt": "Gdansk win cup\n\nLechia Gdansk won the cup final 2-1 after extra time.",
        "sport/002.txt": "Gdansk win cup\n\nLechia Gdansk won the cup final 2-1 after extra time.",
        "sport/003.txt": "Club fined\n\nThe club was fined £25,000 for ticket prices.".encode("latin-1"),
        "sport/broken.txt": b"\x89PNG\r\n\x1a\n\x00\x00",
    }
    for name, content in files.items():
        (archive / name).parent.mkdir(parents=True, exist_ok=True)
        (archive / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    result = rag_script(tmp_path, "ingest", str(archive), "--progress-every", "2", "--metadata", "source=Wire")
    assert result.returncode == 1, result.stderr
    assert "failed    sport/broken.txt: broken.txt is a binary file" in result.stderr
    assert "ingested 2/5 files" in result.stderr and "Traceback" not in result.stderr
    assert "duplicate sport/002 = sport/001  (kept as an alias)" in result.stdout
    assert "5 files in" in result.stdout and "3 created" in result.stdout and "1 duplicates, 1 failed" in result.stdout

    found = rag_script(tmp_path, "search", "Gdansk cup fined", "--where", "section=sport", "--json")
    passages = json.loads(found.stdout)["passages"]
    assert {p["document_id"] for p in passages} == {"sport/001", "sport/003"}
    assert all(p["metadata"] == {"section": "sport", "source": "Wire"} for p in passages)
    listing = rag_script(tmp_path, "documents", "--json")
    assert {d["id"]: d["alias_of"] for d in json.loads(listing.stdout)}["sport/002"] == "sport/001"
    assert rag_script(tmp_path, "documents", "--delete", "sport/001").stdout.strip() == "deleted sport/001"
    again = rag_script(tmp_path, "search", "Gdansk cup", "--json", "--document", "sport/002")
    assert {p["document_id"] for p in json.loads(again.stdout)["passages"]} == {"sport/002"}


@pytest.mark.parametrize("args, message", [
    (["search", "x", "--since", "2005-13-01"], "Invalid value for '--since'"),
    (["search", "x", "--where", "section"], "'section' is not KEY=VALUE"),
    (["search", "x", "--since", "2005-02-01", "--until", "2005-01-01"], "date_from is after date_to"),
])
def test_bad_filters_are_one_line(tmp_path, args, message):
    result = rag_script(tmp_path, *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
