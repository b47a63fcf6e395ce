"""Progress of a long ingest: a bar with rate and ETA on a terminal, a plain line every N files
otherwise (a log, CI), and the closing summary."""

from __future__ import annotations

import time
from typing import TextIO

from tqdm import tqdm

from rag.models import IngestFailure, IngestReport, IngestResult


class IngestProgress:
    def __init__(self, total: int, stream: TextIO, every: int = 100) -> None:
        self.total = total
        self._stream = stream
        self._every = every
        self._done = 0
        self._chunks = 0
        self._started = time.perf_counter()
        interactive = stream.isatty() and total > 1
        self._bar = tqdm(total=total, file=stream, unit="file", desc="ingesting") if interactive else None

    def __enter__(self) -> IngestProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()

    def update(self, event: IngestResult | IngestFailure) -> None:
        self._done += 1
        if isinstance(event, IngestResult) and event.status in ("created", "updated"):
            self._chunks += event.chunk_count
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(chunks=self._chunks, refresh=False)
        elif self._done % self._every == 0 and self._done < self.total:
            elapsed = time.perf_counter() - self._started
            rate = self._done / elapsed if elapsed else 0.0
            left = (self.total - self._done) / rate if rate else 0.0
            print(f"ingested {self._done}/{self.total} files, {self._chunks} chunks "
                  f"({rate:.1f} files/s, {self._chunks / elapsed:.1f} chunks/s, about {left:.0f} s left)",
                  file=self._stream, flush=True)

    def summary(self, report: IngestReport) -> str:
        elapsed = time.perf_counter() - self._started
        counts = ", ".join(f"{report.count(status)} {status}" for status in ("created", "updated", "unchanged"))
        return (f"{self.total} files in {elapsed:.1f} s: {counts}, {report.count('duplicate')} duplicates, "
                f"{len(report.failures)} failed; {self._chunks} chunks written")
