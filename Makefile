# Two entry points: `make demo` and `make test`. Both create (or reuse) .venv with Python 3.12
# and install exactly the versions in requirements.lock (hash-checked), then runtap itself.
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
# Python 3.12: on PATH, else pyenv's newest 3.12.
PYTHON312 ?= $(shell command -v python3.12 2>/dev/null || ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -1)

.PHONY: demo test check smoke-newest lock venv clean phoenix-e2e phoenix-lock

$(BIN)/.installed: pyproject.toml $(LOCK)
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found (install it, or set PYTHON312=/path/to/python3.12)"; exit 2; }
	@test -x $(BIN)/python || $(PYTHON312) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/runtap demo

test: venv
	$(BIN)/python -m pytest

# Lint, format and dependency declarations (CI runs it before the tests).
check: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/deptry .
	$(BIN)/deptry . --exclude '(^|/)(\.venv|\.venv-phoenix|\.git|build|dist)(/|$$)' --ignore DEP002,DEP004

# The newest versions pyproject.toml allows, in a throwaway venv: import everything, run the demo
# and the capture end-to-end test. Tells loudly what broke, with the versions that differ.
smoke-newest:
	PYTHON312="$(PYTHON312)" .ci/smoke-newest

# Refresh the lock: newest versions for Python 3.12 first, then the same pins for every platform
# and Python version (universal, hash-checked). The first pass keeps uv's universal resolver from
# trading a newer mitmproxy for a newer backport.
lock: venv
	$(BIN)/uv pip compile pyproject.toml --extra test --extra dev --python-version 3.12 --upgrade --quiet -o $(LOCK)
	$(BIN)/uv pip compile pyproject.toml --extra test --extra dev --python-version 3.12 --universal --generate-hashes -o $(LOCK)

# The OpenTelemetry export end to end into a real Arize Phoenix, started by the test on 127.0.0.1.
# Phoenix lives in its own venv from its own hash-checked pins (tests/phoenix/requirements.txt):
# its dependencies conflict with runtap's lock, and runtap only talks to it over HTTP.
PHOENIX_VENV := .venv-phoenix
PHOENIX_REQ := tests/phoenix/requirements.txt

$(PHOENIX_VENV)/.installed: $(PHOENIX_REQ)
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found (install it, or set PYTHON312=/path/to/python3.12)"; exit 2; }
	@test -x $(PHOENIX_VENV)/bin/python || $(PYTHON312) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(PHOENIX_REQ)
	@touch $@

phoenix-e2e: venv $(PHOENIX_VENV)/.installed
	$(BIN)/python -m pytest -m phoenix -v -s -p no:cacheprovider tests/phoenix

# Refresh Phoenix's pins from tests/phoenix/requirements.in.
phoenix-lock: venv
	$(BIN)/uv pip compile tests/phoenix/requirements.in --python-version 3.12 --generate-hashes -o $(PHOENIX_REQ)

clean:
	rm -rf $(VENV) $(PHOENIX_VENV) .pytest_cache
