# `make demo` and `make test` each create or update the virtual environment in .venv
# (nothing is installed by hand) and then do their job.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever the project's metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (nbcache)" >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py notebooks/01-getting-started.ipynb

typecheck: $(STAMP)
	$(BIN)/python -m mypy

test: $(STAMP) typecheck
	@# the browser test drives Debian's chromium (Playwright never downloads a browser here)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_dashboard.py

clean:
	rm -rf $(VENV) .nbcache .pytest_cache .mypy_cache
