"""Several clients ingest, ask, retrieve and delete at once against `rag serve` (a real process,
its LLM a loopback server) for a fixed time: no response is 5xx but the 503s the design names,
and at the end every document written and not deleted is there whole, every deleted one is gone
from listing, lookup and search, and the counts agree."""

from __future__ import annotations

import queue
import random
import threading
import time

from tests.faults.conftest import Calls, rag_env

RUN_S = 20.0  # how long the clients run
WRITERS, ASKERS, READERS = 2, 2, 1


def article(writer: int, n: int, version: int) -> dict:
    marker = f"quillon{writer}x{n}"  # one word only this article has, for the keyword side
    return {
        "id": f"w{writer}/{n:03d}",
        "title": f"Harbour report {writer}-{n}",
        "text": (
            f"The harbour board of Tarnow met on day {n} and approved plan {marker}, version {version}. "
            f"Board members said {n % 7 + 2} new cranes would be bought this year for the container quay. "
            f"Dock workers said they had waited {n % 5 + 1} years for the cranes and welcomed the vote."
        ),
        "metadata": {"source": f"writer-{writer}"},
    }


def test_clients_ingesting_asking_and_deleting_at_once_lose_nothing(
    tmp_path, rag_server, loopback_llm, figures,
):
    server = rag_server(rag_env(tmp_path / "data", llm_base_url=loopback_llm.base_url,
                                llm_model="fake-model", llm_max_retries="0"))
    calls = Calls(server.url, figures)
    stop_at = time.monotonic() + RUN_S
    written: dict[str, str] = {}  # id -> the text last written and acknowledged
    to_delete: queue.Queue = queue.Queue()
    deleted: set[str] = set()
    unexpected: list[str] = []
    lock = threading.Lock()

    def expect(response, *statuses: int) -> None:
        # A 503 names what is down; nothing is down here, so none is expected either.
        if response.status_code not in statuses:
            with lock:
                unexpected.append(f"{response.request.method} {response.request.url.path}: "
                                  f"{response.status_code} {response.text[:200]}")

    def writer(w: int) -> None:
        rng, n = random.Random(w), 0
        while time.monotonic() < stop_at:
            body = article(w, n, 1)
            response = calls("POST", "/v1/documents", json=body)
            expect(response, 201)
            if response.status_code == 201 and rng.random() < 0.3:  # rewritten once: an update
                body = article(w, n, 2)
                expect(response := calls("POST", "/v1/documents", json=body), 200)
            if response.status_code in (200, 201):
                with lock:
                    written[body["id"]] = body["text"]
                if rng.random() < 0.5:  # handed to the deleter; its writer never touches it again
                    to_delete.put(body["id"])
            n += 1

    def deleter() -> None:
        while time.monotonic() < stop_at:
            try:
                document_id = to_delete.get(timeout=0.2)
            except queue.Empty:
                continue
            response = calls("DELETE", f"/v1/documents/{document_id}")
            expect(response, 200)
            if response.status_code == 200:
                with lock:
                    deleted.add(document_id)

    def asker(a: int) -> None:
        while time.monotonic() < stop_at:
            expect(calls("POST", "/v1/ask", json={"question": f"How many cranes did the Tarnow board approve on day {a}?"}), 200)

    def reader() -> None:
        while time.monotonic() < stop_at:
            expect(calls("POST", "/v1/retrieve", json={"query": "Tarnow harbour cranes", "top_k": 5}), 200)
            expect(calls("GET", "/v1/documents"), 200)
            expect(calls("GET", "/healthz"), 200)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    threads += [threading.Thread(target=asker, args=(a,)) for a in range(ASKERS)]
    threads += [threading.Thread(target=reader) for _ in range(READERS)] + [threading.Thread(target=deleter)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=RUN_S + 120)
    assert not any(thread.is_alive() for thread in threads), "a client hung"

    assert calls.errors_5xx == [] and unexpected == [], (calls.errors_5xx[:3], unexpected[:3])
    assert len(written) > 10 and len(deleted) > 3 and calls.statuses[200] > 20, (len(written), len(deleted), calls.statuses)

    # The end state, through the API: what was written and not deleted, whole; the rest gone.
    alive = {d: t for d, t in written.items() if d not in deleted}
    listed = {info["id"]: info for info in calls("GET", "/v1/documents").json()["documents"]}
    seeds = {d for d in listed if not d.startswith("w")}
    lost = [d for d in alive if d not in listed]
    figures["documents_lost"] += len(lost)
    assert lost == [] and set(listed) - seeds == set(alive)
    for document_id, text in alive.items():
        document = calls("GET", f"/v1/documents/{document_id}").json()
        assert document["text"] == text  # the last version acknowledged, not a mix
        assert document["chunk_count"] == len(document["chunks"]) > 0
        assert all(text[c["start"] : c["end"]] == c["text"] for c in document["chunks"])
    for document_id in deleted:
        assert calls("GET", f"/v1/documents/{document_id}").status_code == 404
    health = calls("GET", "/healthz").json()
    assert health["documents"] == len(listed)
    assert health["chunks"] == sum(info["chunk_count"] for info in listed.values())
    # The keyword side forgot the deleted articles too: each one's own word finds nothing of it.
    for document_id in sorted(deleted)[:10]:
        w, n = document_id[1:].split("/")
        passages = calls("POST", "/v1/retrieve", json={"query": f"quillon{w}x{int(n)}", "top_k": 50}).json()["passages"]
        assert document_id not in {p["document_id"] for p in passages}
    calls.close()
