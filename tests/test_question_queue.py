"""The loop never waits on the model: questions wait in a bounded queue, a full one is 503 with
Retry-After at once, a client that hangs up gives its place back unanswered, /healthz stays
fast throughout, and a stopping server does not wait for answers. A real uvicorn on loopback,
the fake LLM at the HTTP edge made slow."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn
from chromadb.api.client import SharedSystemClient

from api.app import create_app, server_options
from bench.common import percentile
from tests.conftest import build_answering, free_port, serving, wait_for
from tests.fake_llm import NOT_FOUND_REPLY


def slow(seconds: float):
    def respond(request: dict) -> str:
        time.sleep(seconds)
        return NOT_FOUND_REPLY

    return respond


def asked(fake_llm, word: str) -> bool:
    """Whether a question holding ``word`` reached the model."""
    return any(word in message["content"] for request in fake_llm.requests for message in request["messages"])


@pytest.fixture
def build(tmp_path, embedder, fake_llm):
    built = []

    def make(**overrides):
        built.append(build_answering(tmp_path / f"data{len(built)}", embedder, fake_llm, llm_concurrency=1, **overrides))
        return built[-1]

    yield make
    for svc in built:
        svc.close()
    SharedSystemClient.clear_system_cache()


def test_healthz_stays_fast_while_answers_run_and_the_queue_is_full(build, fake_llm):
    svc = build(question_queue_depth=2, question_queue_wait_s=30)
    fake_llm.script(*[slow(2.0)] * 20)  # long enough for every client to arrive while one is answered
    results: dict[str, httpx.Response] = {}

    def ask(name: str, path: str, body: dict) -> None:
        results[name] = httpx.post(f"{url}{path}", json=body, timeout=60)

    with serving(create_app(svc)) as url:
        chat = {"model": "rag-news", "messages": [{"role": "user", "content": "Who won the cup, chat?"}]}
        clients = [threading.Thread(target=ask, args=("chat", "/v1/chat/completions", chat))]
        clients += [threading.Thread(target=ask, args=(f"ask{n}", "/v1/ask", {"question": f"Who won cup number {n}?"}))
                    for n in range(5)]
        clients[0].start()
        wait_for(lambda: fake_llm.requests, 30, "the chat's question at the model")
        started = time.monotonic()
        for client in clients[1:]:
            client.start()
        latencies = []
        with httpx.Client(base_url=url, timeout=10) as probe:
            while any(c.is_alive() for c in clients) or len(latencies) < 100:
                before = time.perf_counter()
                assert probe.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - before)
                time.sleep(0.02)
        refused_in = time.monotonic() - started
        for client in clients:
            client.join()
    statuses = sorted(r.status_code for r in results.values())
    assert statuses == [200, 200, 200, 503, 503, 503], statuses  # one answered, two waited, three refused
    for response in results.values():
        if response.status_code == 503:
            assert 1 <= int(response.headers["retry-after"]) <= 300 and "busy" in response.json()["detail"]
    assert results["chat"].status_code == 200
    assert percentile(latencies, 0.99) < 0.2, f"/healthz p99 {percentile(latencies, 0.99):.3f} s over {len(latencies)}"
    assert refused_in > 4  # the waiting questions were answered one after another


def test_a_client_that_hangs_up_while_waiting_gives_its_place_back(build, fake_llm):
    svc = build(question_queue_depth=1, question_queue_wait_s=30)
    fake_llm.script(*[slow(1.5)] * 10)
    results: dict[str, int] = {}

    def ask(name: str, **options) -> None:
        try:
            results[name] = httpx.post(f"{url}/v1/ask", json={"question": f"Who won the {name} final?"}, **options).status_code
        except httpx.ReadTimeout:
            results[name] = 0

    with serving(create_app(svc)) as url:
        first = threading.Thread(target=ask, args=("first",), kwargs={"timeout": 60})
        first.start()
        wait_for(lambda: asked(fake_llm, "first"), 30, "the first question at the model")
        ask("quitter", timeout=0.4)  # waits behind the first, then hangs up
        last = threading.Thread(target=ask, args=("last",), kwargs={"timeout": 60})
        last.start()  # takes the place the quitter left: the queue holds one
        first.join()
        last.join()
    assert results == {"quitter": 0, "first": 200, "last": 200}
    assert asked(fake_llm, "last") and not asked(fake_llm, "quitter")


def test_a_stopping_server_does_not_wait_for_queued_answers(build, fake_llm):
    svc = build(question_queue_depth=8, question_queue_wait_s=60, shutdown_grace_s=1)
    fake_llm.script(*[slow(10)] * 10)
    settings = svc.settings.model_copy(update={"port": free_port()})
    server = uvicorn.Server(uvicorn.Config(create_app(svc), **server_options(settings)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, "uvicorn started")
    url = f"http://127.0.0.1:{settings.port}"

    def ask(n: int) -> None:
        try:
            httpx.post(f"{url}/v1/ask", json={"question": f"Who won cup {n}?"}, timeout=30)
        except httpx.TransportError:
            pass

    askers = [threading.Thread(target=ask, args=(n,), daemon=True) for n in range(4)]
    for asker in askers:
        asker.start()
    wait_for(lambda: fake_llm.requests, 30, "a question at the model")
    stopping = time.monotonic()
    server.should_exit = True
    thread.join(timeout=15)
    assert not thread.is_alive() and time.monotonic() - stopping < 5
