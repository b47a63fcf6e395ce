"""A data directory that cannot be written: read-only when `rag ingest` starts, or a disk that
fills under a running `rag serve`. The ingest fails with one clear line or a 503 naming the
cause, nothing half-written is left, and the store stays readable.

Both faults are made in a private mount namespace (`unshare -rm`, a user namespace too, so it
needs no root): a read-only bind mount, a small tmpfs filled up. Root alone could not be refused
by file modes, and nothing is mounted on the machine itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.faults.conftest import Calls, rag_command, rag_env

UNSHARE = shutil.which("unshare")


def namespaces_work() -> bool:
    if UNSHARE is None:
        return False
    return subprocess.run([UNSHARE, "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not namespaces_work(), reason="needs unshare and user mount namespaces")


def read_only(folder: Path) -> list[str]:
    """A command prefix that runs its command with ``folder`` mounted read-only."""
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return [UNSHARE, "-rm", "sh", "-c", script, str(folder)]


def on_a_small_disk(folder: Path, size_mb: int) -> list[str]:
    """A command prefix that runs its command with a ``size_mb`` tmpfs mounted on ``folder``."""
    script = f'mount -t tmpfs -o size={size_mb}m tmpfs "$0" && exec "$@"'
    return [UNSHARE, "-rm", "sh", "-c", script, str(folder)]


def test_ingest_into_a_read_only_data_dir_is_one_clear_line_and_the_store_is_untouched(tmp_path, figures):
    data = tmp_path / "data"
    env = rag_env(data)
    seeded = subprocess.run(rag_command("ingest", str(Path(env["RAG_SEED_DIR"]))), env=env,
                            capture_output=True, text=True, timeout=300)
    assert seeded.returncode == 0, seeded.stderr
    article = tmp_path / "bridge.txt"
    article.write_text("A new bridge over the river Alde opened on Monday, the county said.", encoding="utf-8")
    listed_before = subprocess.run(rag_command("documents"), env=env, capture_output=True, text=True, timeout=120).stdout

    refused = subprocess.run([*read_only(data), *rag_command("ingest", str(article))], env=env,
                             capture_output=True, text=True, timeout=120)
    figures["faults_injected"] += 1
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), refused.stderr[-2000:]
    assert "read-only data directory" in lines[0]

    # Writable again: the store holds what it held, and takes the article.
    listed = subprocess.run(rag_command("documents"), env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and listed.stdout == listed_before
    figures["documents_lost"] += listed_before.count("\n") - listed.stdout.count("\n")
    again = subprocess.run(rag_command("ingest", str(article)), env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "created" in again.stdout


def test_a_full_disk_under_rag_serve_refuses_writes_with_the_reason_and_keeps_reading(
    tmp_path, rag_server, figures,
):
    data = tmp_path / "data"
    data.mkdir()
    server = rag_server(rag_env(data, llm_base_url="http://127.0.0.1:9/v1"), prefix=on_a_small_disk(data, 48))
    calls = Calls(server.url, figures)
    before = calls("GET", "/v1/documents").json()["documents"]
    assert len(before) == 2  # the seeds, on the small disk
    # The server's tmpfs, seen through its own root: fill it to the last byte.
    filler = Path(f"/proc/{server.process.pid}/root") / str(data).lstrip("/") / "filler"
    with pytest.raises(OSError), filler.open("wb") as out:
        while True:
            out.write(b"\0" * (1 << 20))
    figures["faults_injected"] += 1

    long_article = {"id": "bridge", "text": "A new bridge over the river Alde opened on Monday. " * 400}
    for method, path, kwargs in [("POST", "/v1/documents", {"json": long_article}),
                                 ("DELETE", f"/v1/documents/{before[0]['id']}", {})]:
        response = calls(method, path, **kwargs)
        assert response.status_code == 503, (method, response.text)
        assert "full disk" in response.json()["detail"], response.text
    # Still readable: the list, each document whole, search.
    assert calls("GET", "/v1/documents").json()["documents"] == before
    for info in before:
        document = calls("GET", f"/v1/documents/{info['id']}").json()
        assert len(document["chunks"]) == info["chunk_count"]
    assert calls("POST", "/v1/retrieve", json={"query": "North Korean troops"}).status_code == 200
    assert calls("GET", "/v1/documents/bridge").status_code == 404  # the refused write left nothing

    filler.unlink()  # space again: the same process writes
    assert calls("POST", "/v1/documents", json=long_article).status_code == 201
    assert calls("GET", "/healthz").json()["documents"] == 3
    assert all(status == 503 for _, status, _ in calls.errors_5xx)
    calls.close()
