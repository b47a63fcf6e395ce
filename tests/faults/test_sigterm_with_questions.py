"""SIGTERM to `rag serve` while one question is at a slow LLM and more wait in the queue: the
process ends within seconds (RAG_SHUTDOWN_GRACE_S), not after every answer (it waited more than
20 s before the queue), and /healthz answered quickly until then."""

from __future__ import annotations

import signal
import threading
import time

import httpx

from tests.conftest import wait_for
from tests.faults.conftest import LoopbackLLM, first_sentence_reply, rag_env


def test_sigterm_ends_the_server_within_seconds_with_questions_queued(tmp_path, rag_server):
    def slow_reply(request: dict) -> str:
        time.sleep(30)
        return first_sentence_reply(request)

    llm = LoopbackLLM(slow_reply)
    try:
        server = rag_server(rag_env(tmp_path / "data", llm_base_url=llm.base_url, llm_model="fake-model",
                                    llm_max_retries="0", llm_concurrency="1", question_queue_depth="8",
                                    shutdown_grace_s="2"))

        def ask(n: int) -> None:
            try:
                httpx.post(f"{server.url}/v1/ask", json={"question": f"How many soldiers surrendered, {n}?"}, timeout=60)
            except httpx.TransportError:
                pass

        askers = [threading.Thread(target=ask, args=(n,), daemon=True) for n in range(6)]
        for asker in askers:
            asker.start()
        wait_for(lambda: llm.requests, 60, "a question at the LLM")
        started = time.perf_counter()
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        assert time.perf_counter() - started < 1
        stopping = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=20)
        took = time.monotonic() - stopping
        assert took < 8, f"rag serve took {took:.1f} s to stop\n{server.log()}"
        assert llm.requests == 1  # the queued questions never reached the model
    finally:
        llm.close()
