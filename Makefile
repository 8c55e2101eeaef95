# Two entry points: `make demo` and `make test`. Both create (or reuse) .venv with Python 3.12.
VENV := .venv
BIN := $(VENV)/bin
# Python 3.12: on PATH, else pyenv's newest 3.12.
PYTHON312 ?= $(shell command -v python3.12 2>/dev/null || ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -1)

.PHONY: demo test venv clean

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found (install it, or set PYTHON312=/path/to/python3.12)"; exit 2; }
	@test -x $(BIN)/python || $(PYTHON312) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/runtap demo

test: venv
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache
