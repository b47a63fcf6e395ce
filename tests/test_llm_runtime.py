"""The embedded model's runtime: chosen by the CPU's flags before anything starts, the next one
taken when a build fails to start, ready only once warm, and never outliving the service.
The child processes here are tests/fake_llama_server.py, a stand-in at the HTTP edge."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rag import llm_runtime
from rag.answer.prompt import SYSTEM_PROMPT, warmup_messages
from rag.config import Settings
from rag.llm_runtime import RUNTIMES, Runtime, choose, cpu_flags, why_none
from rag.llm_server import EmbeddedLlamaServer
from tests.conftest import wait_for

FAKE_SERVER = [sys.executable, str(Path(__file__).with_name("fake_llama_server.py"))]
AVX2_ONLY = frozenset({"sse4_2", "avx", "avx2", "fma", "f16c"})
ZEN4 = AVX2_ONLY | {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512vbmi"}
SAPPHIRE_RAPIDS = ZEN4 | {"avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "avx512_fp16"}


def installed_names() -> set[str]:
    return {runtime.name for runtime in RUNTIMES if runtime.installed}


@pytest.mark.skipif(not installed_names() >= {"llama-server", "xllamacpp"}, reason="both runtimes not installed")
def test_the_fastest_build_the_cpu_can_execute_comes_first():
    assert [r.name for r in choose("auto", SAPPHIRE_RAPIDS)] == ["llama-server", "xllamacpp"]
    # AVX-512 without the 256-bit AVX-VNNI encoding the fast build executes: the portable one.
    assert [r.name for r in choose("auto", ZEN4)] == ["xllamacpp"]
    assert [r.name for r in choose("auto", AVX2_ONLY)] == ["xllamacpp"]
    assert choose("auto", frozenset({"sse4_2"})) == []
    assert "avx2" in why_none("auto", frozenset({"sse4_2"}))


@pytest.mark.skipif("llama-server" not in installed_names(), reason="llama-server not installed")
def test_a_named_runtime_the_cpu_cannot_execute_is_refused_with_the_flags_it_lacks():
    assert choose("llama-server", ZEN4) == []
    assert why_none("llama-server", ZEN4) == "llama-server: this CPU lacks avx_vnni"
    assert [r.name for r in choose("xllamacpp", SAPPHIRE_RAPIDS)] == ["xllamacpp"]


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx avx2 fma\n\nprocessor\t: 1\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx", "avx2", "fma"}
    assert llm_runtime.cpu_model(cpuinfo) == "Some CPU"
    assert cpu_flags(tmp_path / "missing") == frozenset()


def fake_runtime(name: str, program: list[str], log: Path) -> Runtime:
    env = {**os.environ, "FAKE_LLAMA_LOG": str(log)}
    return Runtime(name, "xllamacpp", "a stand-in", frozenset(), lambda: (program, env))


def settings_for(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", llm_startup_timeout_s=60)


def test_a_build_that_fails_to_start_gives_way_to_the_next(tmp_path):
    log = tmp_path / "requests.jsonl"
    crashing = fake_runtime("crashing", [sys.executable, "-c", "import sys; sys.exit(132)"], log)
    server = EmbeddedLlamaServer(tmp_path / "model.gguf", "m", settings_for(tmp_path),
                                 [crashing, fake_runtime("portable", FAKE_SERVER, log)])
    try:
        server.wait_ready(60)
        assert server.runtime.name == "portable"
        assert server.failures and "crashing" in server.failures[0] and "132" in server.failures[0]
    finally:
        server.stop()


def test_ready_only_after_the_fixed_prompt_was_read(tmp_path):
    log = tmp_path / "requests.jsonl"
    server = EmbeddedLlamaServer(tmp_path / "model.gguf", "m", settings_for(tmp_path),
                                 [fake_runtime("portable", FAKE_SERVER, log)], [warmup_messages()])
    try:
        server.wait_ready(60)
        warmup = [json.loads(line) for line in log.read_text().splitlines()]
        assert len(warmup) == 1
        assert warmup[0]["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
        assert warmup[0]["max_tokens"] == 1
    finally:
        server.stop()


def test_a_stale_server_left_by_a_killed_service_is_ended_at_start(tmp_path):
    settings = settings_for(tmp_path)
    stale = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    try:
        started = Path(f"/proc/{stale.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        settings.model_cache_dir.mkdir(parents=True)
        (settings.model_cache_dir / "embedded-llm.pid").write_text(f"{stale.pid}\n{started}\n")
        server = EmbeddedLlamaServer(tmp_path / "model.gguf", "m", settings,
                                     [fake_runtime("portable", FAKE_SERVER, tmp_path / "log")])
        try:
            server.wait_ready(60)
            assert stale.wait(timeout=10) == -signal.SIGKILL
        finally:
            server.stop()
        assert not (settings.model_cache_dir / "embedded-llm.pid").exists()
    finally:
        stale.kill()


def test_a_pid_file_naming_another_program_is_left_alone(tmp_path):
    """A pid is reused by unrelated programs: only the one with the recorded start time is ended."""
    settings = settings_for(tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    try:
        settings.model_cache_dir.mkdir(parents=True)
        (settings.model_cache_dir / "embedded-llm.pid").write_text(f"{other.pid}\n1\n")
        server = EmbeddedLlamaServer(tmp_path / "model.gguf", "m", settings,
                                     [fake_runtime("portable", FAKE_SERVER, tmp_path / "log")])
        try:
            server.wait_ready(60)
            assert other.poll() is None
        finally:
            server.stop()
    finally:
        other.kill()


def test_the_model_server_dies_with_a_service_killed_outright(tmp_path):
    """kill -9 of the service leaves no model server behind (parent-death signal)."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from tests.test_llm_runtime import fake_runtime, settings_for, FAKE_SERVER
        from rag.llm_server import EmbeddedLlamaServer
        from pathlib import Path
        tmp = Path({str(tmp_path)!r})
        server = EmbeddedLlamaServer(tmp / "model.gguf", "m", settings_for(tmp),
                                     [fake_runtime("portable", FAKE_SERVER, tmp / "log")])
        server.wait_ready(60)
        print(server._process.pid, flush=True)
        signal.pause()
    """)
    service = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(service.stdout.readline())
        assert Path(f"/proc/{child}").exists()
        service.send_signal(signal.SIGKILL)
        service.wait(timeout=10)
        wait_for(lambda: not _alive(child), 10, "the model server ended with its parent")
    finally:
        service.kill()


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False
