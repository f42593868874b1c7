# Borderwatch: `make run` and `make test` do all set-up themselves (a local .venv from pyproject.toml).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATE ?= 2025-12-22

# Keep Prefect's state inside the project and never reach the internet.
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MPLBACKEND := Agg

.PHONY: run test venv lint clean sysdeps

# Debian packages the briefing uses: Noto fonts for the Thai and Khmer names, poppler-utils to check PDFs.
# Best effort: without them the PDF leaves the Thai/Khmer names out and says why; nothing else depends on them.
SYSPKGS := fonts-noto-core poppler-utils

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory sysdeps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/borderwatch run --date $(DATE)

test: $(STAMP)
	$(BIN)/ruff check monitoring flows tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check monitoring flows tests
	$(BIN)/mypy

sysdeps:
	@if [ -x /usr/bin/pdftotext ] && fc-list 2>/dev/null | grep -qi "Noto Sans Khmer"; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(SYSPKGS)"; \
		(apt-get install -y -qq $(SYSPKGS) >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $(SYSPKGS) >/dev/null 2>&1)) || \
		echo "warning: could not install $(SYSPKGS); the PDF will omit Thai/Khmer names"; \
	else echo "note: install $(SYSPKGS) (as root) for Thai/Khmer names in the PDF"; fi

clean:
	rm -rf $(VENV) .prefect out .pytest_cache
