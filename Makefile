# The two commands of the README: `make serve` and `make test`. Both install on first use.
VENV ?= .venv
PYTHON ?= python3
# llama.cpp's default native build uses AMX paths that crash on some CPUs: build for AVX2.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: install serve test test-fast

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(VENV)/bin/pip install --quiet -e '.[local-llm,test]'
	touch $@

install: $(VENV)/.installed

serve: install
	$(VENV)/bin/rag serve

test: install
	$(VENV)/bin/python -m pytest

test-fast: install
	$(VENV)/bin/python -m pytest -m "not embedded_llm"
