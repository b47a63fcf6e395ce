"""Questions wait their turn here, so that the event loop never waits on the model.

A route that reaches the LLM takes a turn (one of the LLM's concurrent generations), and runs
the answer in a thread of its own while holding it. At most ``depth`` questions wait for a turn,
each at most ``wait_s`` seconds: a question that finds the queue full, or waits too long, is
refused at once with 503 and Retry-After, instead of piling up threads until /healthz stops
answering. A client that hangs up while its question waits gives its place back, and its
question is never run. The threads are daemons: a stopping server does not wait for the model."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import HTTPException, Request, status

T = TypeVar("T")


class QuestionQueue:
    def __init__(self, workers: int, depth: int, wait_s: float) -> None:
        self.workers = workers
        self.depth = depth
        self.wait_s = wait_s
        self.waiting = 0
        self._free = workers
        self._waiters: deque[asyncio.Future] = deque()
        self._mean_s = 5.0  # a guess at an answer's time until one is measured

    async def enter(self, request: Request) -> Turn:
        """A turn for this request's question: at once when one is free, else after waiting in the
        queue. 503 with Retry-After when the queue is full or the wait runs out."""
        while self._waiters and self._waiters[0].done():  # given up by questions that left
            self._waiters.popleft()
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return Turn(self)
        if self.waiting >= self.depth:
            raise self._busy(f"the server is answering {self.workers} question(s) with {self.waiting} waiting")
        granted = asyncio.get_running_loop().create_future()
        self._waiters.append(granted)
        gone = asyncio.ensure_future(_disconnected(request))
        self.waiting += 1
        try:
            await asyncio.wait({granted, gone}, timeout=self.wait_s, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self._abandon(granted)
            raise
        finally:
            self.waiting -= 1
            gone.cancel()
        if gone.done() and not gone.cancelled():  # the client hung up: its question is not run
            gone.exception()  # read, so that asyncio does not report it
            self._abandon(granted)
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the client disconnected")
        if not granted.done():
            self._abandon(granted)
            raise self._busy(f"no turn at the model within {self.wait_s:g} s (RAG_QUESTION_QUEUE_WAIT_S)")
        return Turn(self)

    def _abandon(self, granted: asyncio.Future) -> None:
        if granted.done() and not granted.cancelled():
            self._give_back()  # the turn came just as the question gave up: pass it on
        else:
            granted.cancel()  # _give_back skips it

    def _give_back(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    def _answered_in(self, seconds: float) -> None:
        self._mean_s = 0.8 * self._mean_s + 0.2 * seconds

    def _busy(self, why: str) -> HTTPException:
        retry = min(300, max(1, math.ceil(self._mean_s * (self.waiting + 1) / self.workers)))
        return HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"too busy: {why}; try again in {retry} s",
            headers={"Retry-After": str(retry)},
        )


class Turn:
    """A question's turn at the model, held until ``leave`` (or the end of a ``with`` block)."""

    def __init__(self, queue: QuestionQueue) -> None:
        self._queue = queue
        self._held = True
        self._started = time.monotonic()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a daemon thread, the loop free while it runs."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if future.done():
                return
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

        def work() -> None:
            try:
                outcome = (fn(*args), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
                outcome = (None, exc)
            try:
                loop.call_soon_threadsafe(settle, *outcome)
            except RuntimeError:  # the loop has closed: the server stopped meanwhile
                pass

        threading.Thread(target=work, name="rag-question", daemon=True).start()
        return await future

    def leave(self) -> None:
        if self._held:
            self._held = False
            self._queue._answered_in(time.monotonic() - self._started)
            self._queue._give_back()

    def __enter__(self) -> Turn:
        return self

    def __exit__(self, *exc_info) -> None:
        self.leave()


async def _disconnected(request: Request) -> None:
    """Returns once the client has gone (its body has been read: nothing else can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def question_queue(request: Request) -> QuestionQueue:
    return request.app.state.question_queue
