# The two commands of the README: `make serve` and `make test`. Both install on first use.
VENV ?= .venv
PYTHON ?= python3
# llama.cpp's default native build takes AMX paths that crash on some CPUs, so the SIMD level is
# named explicitly, AMX off: AVX2 everywhere, and AVX-512 with VNNI where the CPU has it (prompt
# evaluation ~1.5x faster on this project's machine).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
AVX512_FLAGS := avx512f avx512bw avx512vl avx512_vnni avx512vbmi avx512_bf16
ifeq ($(shell for f in $(AVX512_FLAGS); do grep -qw $$f /proc/cpuinfo || exit 1; done 2>/dev/null && echo yes),yes)
LLAMA_CMAKE_ARGS += -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_BF16=ON
endif

.PHONY: install serve test test-fast

# pip reuses a wheel it built before for the same version whatever CMAKE_ARGS were then, so
# llama-cpp-python (pinned in pyproject.toml) is built past the cache, with the flags above.
LLAMA_REQUIREMENT := $(shell grep -o 'llama-cpp-python\[server\]==[0-9.]*' pyproject.toml)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(VENV)/bin/pip install --quiet --no-cache-dir '$(LLAMA_REQUIREMENT)'
	$(VENV)/bin/pip install --quiet -e '.[local-llm,test]'
	touch $@

# The browser tests drive the system Chromium; on Debian/Ubuntu it is installed when missing.
install: $(VENV)/.installed
	@command -v chromium >/dev/null || ! command -v apt-get >/dev/null || \
		(SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update && \
		 $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

serve: install
	$(VENV)/bin/rag serve

test: install
	$(VENV)/bin/python -m pytest

test-fast: install
	$(VENV)/bin/python -m pytest -m "not embedded_llm"
