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

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python benchmarks/bench.py

typecheck: $(STAMP)
	$(BIN)/python -m mypy

test: $(STAMP) typecheck
	$(BIN)/python -m pytest -q tests
	$(BIN)/python -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
		--nbval-sanitize-with notebooks/sanitize.cfg notebooks

clean:
	rm -rf $(VENV) .nbcache .pytest_cache .mypy_cache
