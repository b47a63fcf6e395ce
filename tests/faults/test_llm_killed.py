"""The embedded LLM process killed with SIGKILL while it writes an answer, under `rag serve`:
that request is a 503 with the reason, the service's supervisor starts the model again, the
next question is answered, and retrieval answers throughout."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx
import pytest

from rag.llm_server import packaged_model
from tests.conftest import wait_for
from tests.faults.conftest import Calls, rag_env
from tests.test_embedded_llm import _children

pytestmark = pytest.mark.embedded_llm

QUESTION = {"question": "How many Ukrainian soldiers surrendered, according to Gerasimov?"}


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def the_model_process(server_pid: int) -> int | None:
    children = _children(server_pid)
    return children[0] if len(children) == 1 else None


def test_the_llm_killed_mid_answer_is_a_503_then_restarted_while_retrieval_answers(
    tmp_path_factory, tmp_path, rag_server, figures,
):
    model = packaged_model(tmp_path_factory.mktemp("models"))
    env = rag_env(tmp_path / "data", llm_model_path=str(model))
    server = rag_server(env)
    calls = Calls(server.url, figures, timeout=600)
    wait_for(lambda: calls("GET", "/healthz").json()["llm_status"] == "ok", 300, "the model loaded", every_s=0.5)
    model_pid = wait_for(lambda: the_model_process(server.process.pid), 10, "the model's process")

    retrievals: list[int] = []
    done = threading.Event()

    def keep_retrieving() -> None:
        while not done.wait(0.05):
            retrievals.append(calls("POST", "/v1/retrieve", json={"query": "Gerasimov surrendered soldiers"}).status_code)

    killed_answer: list[httpx.Response] = []
    retriever = threading.Thread(target=keep_retrieving)
    asker = threading.Thread(target=lambda: killed_answer.append(calls("POST", "/v1/ask", json=QUESTION)))
    retriever.start()
    try:
        check_kill_and_restart(server, calls, model_pid, asker, killed_answer, figures)
    finally:
        done.set()
        retriever.join(timeout=60)
    assert len(retrievals) > 5 and set(retrievals) == {200}, retrievals
    assert [status for _, status, _ in calls.errors_5xx] == [503]  # the killed answer's, only
    calls.close()


def check_kill_and_restart(server, calls, model_pid, asker, killed_answer, figures) -> None:
    idle = cpu_seconds(model_pid)
    asker.start()
    # Killed once it is busy with this question (reading the prompt takes it seconds on a CPU).
    wait_for(lambda: cpu_seconds(model_pid) - idle > 1.0 or not asker.is_alive(), 120, "the model at work")
    assert asker.is_alive(), f"answered before the kill: {killed_answer[0].text[:300]}"
    os.kill(model_pid, signal.SIGKILL)
    figures["faults_injected"] += 1
    asker.join(timeout=300)

    response = killed_answer[0]
    assert response.status_code == 503, (response.text, server.log())
    assert "LLM" in response.json()["detail"], response.text

    restarted = wait_for(lambda: (pid := the_model_process(server.process.pid)) not in (None, model_pid) and pid,
                         30, "the model's process started again")
    wait_for(lambda: calls("GET", "/healthz").json()["llm_status"] == "ok", 300, "the model loaded again", every_s=0.5)
    answer = calls("POST", "/v1/ask", json=QUESTION)
    assert answer.status_code == 200, (answer.text, server.log())
    assert the_model_process(server.process.pid) == restarted
