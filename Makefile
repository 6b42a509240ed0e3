# `make demo` and `make test` each create or update the virtual environment in .venv
# (nothing is installed by hand) and then do their job.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench typecheck labext-test browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The JupyterLab extension's sources: the editable install builds them (npm install + build:prod
# through the hatch-jupyter-builder hook) into nbcache/labextension and installs them as shared data.
LABEXT_SRC := labextension/package.json labextension/tsconfig.json $(wildcard labextension/src/*.ts labextension/style/* labextension/schema/*.json)

# The C extension (the encoder of runs of strings), compiled by hatch_build.py at install.
NATIVE_SRC := hatch_build.py nbcache/key/fingerprint/_strings.c

# Re-install whenever the project's metadata or the extension's sources change.
$(STAMP): pyproject.toml $(LABEXT_SRC) $(NATIVE_SRC) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (nbcache)" >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py notebooks/01-getting-started.ipynb

typecheck: $(STAMP)
	$(BIN)/python -m mypy

# Unit tests of the extension's pure TypeScript helpers (node's own test runner).
labext-test: $(STAMP)
	cd labextension && npm test --silent

# The browser tests drive Debian's Chromium (installed here when missing; the demo does not need it).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# The pytest suite runs on up to 4 workers (2 on the 2-core CI machine), each taking whole test
# files: a file's module fixtures (notebooks run in kernels) run once. nbval stays on one process.
test: $(STAMP) typecheck labext-test browser
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile tests
	$(BIN)/python -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
		--nbval-sanitize-with notebooks/sanitize.cfg notebooks

# Benchmarks print figures and ratios against the alternatives measured in the same run; they are
# not part of `make test`. bench.py writes benchmarks/results.{md,json,png}.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/bench_objects.py
	$(BIN)/python benchmarks/bench_store.py --gb 1
	$(BIN)/python benchmarks/bench_dashboard.py
	$(BIN)/python benchmarks/bench_auto.py
	$(BIN)/python benchmarks/bench_types.py
	$(BIN)/python benchmarks/bench_files.py

clean:
	rm -rf $(VENV) .nbcache .pytest_cache .mypy_cache nbcache/labextension labextension/lib labextension/build-test labextension/node_modules
