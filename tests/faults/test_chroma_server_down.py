"""Chroma in server mode stopped under a running `rag serve`, then started again: while it is
down every request that needs the store is a 503 naming it (and /healthz says so), and once it is
back the same service process answers again, with everything it held."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port, stop, wait_for, wait_until_ok
from tests.faults.conftest import Calls, rag_env

pytestmark = pytest.mark.chroma_server


class ChromaServer:
    """`chroma run` over one folder on one loopback port, which can be stopped and started again."""

    def __init__(self, path: Path) -> None:
        self.command = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
        assert self.command, "the `chroma` command (installed with chromadb) is missing"
        self.path, self.port = path, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.command, "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until_ok(f"{self.url}/api/v2/heartbeat", self.process, 60)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop(self.process)


@pytest.fixture
def chroma(tmp_path):
    server = ChromaServer(tmp_path / "chroma-server")
    server.start()
    yield server
    server.stop()


def test_a_stopped_chroma_server_is_a_503_with_the_reason_and_its_return_needs_no_restart(
    tmp_path, chroma, rag_server, loopback_llm, figures,
):
    server = rag_server(rag_env(tmp_path / "data", chroma_url=chroma.url, llm_base_url=loopback_llm.base_url,
                                llm_model="fake-model"))
    calls = Calls(server.url, figures)
    question = {"question": "Which town did the Russian Defense Ministry say it retook?"}
    assert calls("POST", "/v1/retrieve", json={"query": "Sudzha"}).status_code == 200
    before = calls("GET", "/v1/documents").json()["documents"]
    assert len(before) == 2  # the seeds, through the server

    chroma.stop()
    figures["faults_injected"] += 1
    needs_the_store = [
        ("POST", "/v1/retrieve", {"json": {"query": "Sudzha"}}),
        ("POST", "/v1/ask", {"json": question}),
        ("GET", "/v1/documents", {}),
        ("GET", f"/v1/documents/{before[0]['id']}", {}),
        ("POST", "/v1/documents", {"json": {"id": "while-down", "text": "Written while the store was down."}}),
        ("DELETE", f"/v1/documents/{before[0]['id']}", {}),
    ]
    for method, path, kwargs in needs_the_store:
        response = calls(method, path, **kwargs)
        assert response.status_code == 503, (method, path, response.status_code, response.text)
        assert "Chroma" in response.json()["detail"], response.text
    health = calls("GET", "/healthz").json()
    assert health["status"] == "degraded" and health["store"] == "unreachable" and health["detail"]

    chroma.start()  # the same folder and port; `rag serve` keeps running
    wait_for(lambda: calls("POST", "/v1/retrieve", json={"query": "Sudzha"}).status_code == 200, 60,
             "retrieval after Chroma came back")
    assert calls("GET", "/v1/documents").json()["documents"] == before
    assert calls("POST", "/v1/ask", json=question).status_code == 200
    created = calls("POST", "/v1/documents", json={"id": "after", "text": "Written once the store was back."})
    assert created.status_code == 201, created.text
    assert calls("GET", "/healthz").json()["documents"] == 3
    assert calls("GET", "/v1/documents/while-down").status_code == 404  # the refused write left nothing
    # Only the designed 503s, naming the store: while it was down, or in the poll for its return.
    assert all(status == 503 and "Chroma" in body for _, status, body in calls.errors_5xx), calls.errors_5xx
    calls.close()
