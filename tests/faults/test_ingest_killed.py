"""`rag ingest` killed with SIGKILL midway through a large folder, twice, then run again: after
each kill every document is whole or absent (its registry record, its chunks and the keyword
index agree), and the last run completes the folder."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

from chromadb.api.client import SharedSystemClient

from rag.config import Settings
from rag.documents import clean_text
from rag.retrieval import HybridRetriever
from rag.store import open_store
from tests.faults.conftest import rag_command, rag_env

ARTICLES = 96  # two chunks each
GROUP_CHUNKS = 24  # written in groups of 12 articles: eight writes a run could be killed between
KILL_AT = (30, 60)  # files reported done when each run is killed
SECTIONS = ("business", "sport", "politics", "tech")
PLACES = ("Arden", "Belmoor", "Corran", "Dunvale", "Elsby", "Farrow", "Glenmar", "Hollin")


def write_archive(root: Path) -> dict[str, str]:
    """A folder of distinct articles, as an archive keeps them; their ids and canonical texts."""
    expected = {}
    for i in range(ARTICLES):
        section, place = SECTIONS[i % len(SECTIONS)], PLACES[i % len(PLACES)]
        text = (
            f"Report {i} from {place}\n\n"
            f"The {place} district council met on day {i} of the session to discuss the budget for the "
            f"coming year, and item {i} on its agenda was marker{i:04d}. Councillors said spending on roads "
            f"would rise by {i % 17 + 2} percent while the library would keep its opening hours. "
            f"A spokesperson for the council said the plan had been shared with residents of {place} in "
            f"{i % 9 + 3} public meetings over the summer.\n\n"
            f"Local businesses in {place} welcomed the decision. The chamber of commerce said {i % 40 + 10} "
            f"firms had asked for better roads, and that delivery times had grown by {i % 5 + 1} hours a week. "
            f"Opposition members said the council should have spent more on schools and on the {i % 3 + 2} "
            f"bus routes that the county had cut. The budget will be voted on next month, officials said."
        )
        path = root / section / f"{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        expected[f"{section}/{i:04d}"] = clean_text(text).text
    return expected


def inspect_store(data_dir: Path, embedder, expected: dict[str, str]) -> dict[str, list[str]]:
    """Every stored document sorted into whole or not, with the reasons for those that are not:
    the registry's record, the chunks and the keyword index must agree."""
    settings = Settings(data_dir=data_dir)
    store = open_store(settings)
    try:
        records = {info.id: info for info in store.list_documents()}
        chunks = store.all_chunks()
        by_document: dict[str, list] = {}
        for stored in chunks:
            by_document.setdefault(stored.chunk.document_id, []).append(stored.chunk)
        broken = []
        for document_id, info in records.items():
            text, mine = store.document_text(document_id), by_document.get(document_id, [])
            if text != expected.get(document_id):
                broken.append(f"{document_id}: stored text differs from the article")
            elif info.chunk_count != len(mine) or not mine:
                broken.append(f"{document_id}: record says {info.chunk_count} chunks, store holds {len(mine)}")
            elif any(text[c.start : c.end] != c.text for c in mine):
                broken.append(f"{document_id}: a chunk is not the text at its offsets")
        broken += [f"{d}: {len(c)} chunks without a record" for d, c in by_document.items() if d not in records]
        # The keyword index is what a restarted service would search, repaired at open if a write was cut short.
        index = HybridRetriever(store, embedder, settings.candidate_k, settings.store_recheck_s).keyword_index()
        if len(index) != len(chunks):
            broken.append(f"keyword index holds {len(index)} chunks, the store {len(chunks)}")
        whole = [d for d in records if not any(b.startswith(f"{d}:") for b in broken)]
        return {"whole": whole, "broken": broken}
    finally:
        SharedSystemClient.clear_system_cache()  # the next `rag ingest` owns the store alone


def run_until_killed(archive: Path, env: dict[str, str], files_done: int) -> int:
    """Run `rag ingest` and SIGKILL it once it reports ``files_done`` files: the files it reported."""
    process = subprocess.Popen(
        rag_command("ingest", str(archive), "--progress-every", "6"),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        for line in process.stderr:  # a line every 6 files, as each group is written
            if (done := re.match(r"ingested (\d+)/", line)) and int(done.group(1)) >= files_done:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                return int(done.group(1))
        raise AssertionError(f"ingest ended with {process.wait()} before {files_done} files were done")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ingest_killed_midway_leaves_every_document_whole_or_absent_and_a_rerun_completes(
    tmp_path, embedder, figures,
):
    expected = write_archive(tmp_path / "archive")
    env = rag_env(tmp_path / "data", ingest_group_chunks=str(GROUP_CHUNKS))
    for files_done in KILL_AT:
        reported = run_until_killed(tmp_path / "archive", env, files_done)
        figures["faults_injected"] += 1
        assert reported < ARTICLES  # killed midway, not after the end
        state = inspect_store(tmp_path / "data", embedder, expected)
        assert state["broken"] == [], state["broken"][:5]
        # What the killed run reported done is stored; the rest may or may not be.
        assert len(state["whole"]) >= reported

    finished = subprocess.run(rag_command("ingest", str(tmp_path / "archive")), env=env,
                              capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"{ARTICLES} files" in finished.stdout and " 0 failed" in finished.stdout
    state = inspect_store(tmp_path / "data", embedder, expected)
    assert state["broken"] == []
    lost = len(expected) - len(state["whole"])
    figures["documents_lost"] += lost
    assert lost == 0

    again = subprocess.run(rag_command("ingest", str(tmp_path / "archive")), env=env,
                           capture_output=True, text=True, timeout=600)
    assert f"{ARTICLES} unchanged" in again.stdout, again.stdout[-500:]
