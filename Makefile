# Fidelio: `make run` and `make test` work on a fresh clone (Python 3.11 needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test install lint chat docs clean help

help:
	@echo "make run    - set up, migrate SQLite, load the demo organisation, start Fidelio (console)"
	@echo "make test   - set up and run the whole test suite"
	@echo "make lint   - ruff and mypy"
	@echo "make chat AS=email - chat in the terminal as one person"
	@echo "make docs   - write docs/configuration.md, command-line.md and chat-commands.md"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/fidelio db upgrade
	$(BIN)/fidelio demo load --if-empty
	$(BIN)/fidelio run

# make's own AS (the assembler, "as") must not pass for an email.
CHAT_AS := $(strip $(if $(filter default undefined,$(origin AS)),,$(AS)))
ifneq ($(filter chat,$(MAKECMDGOALS)),)
ifeq ($(CHAT_AS),)
$(error AS: say whose chat to open, e.g. make chat AS=hr@demo.fidelio.example (fidelio people list shows everyone))
endif
endif

chat: install
	$(BIN)/fidelio chat --as "$(CHAT_AS)"

# The references generated from the code; tests/test_reference_docs.py fails when they are stale.
docs: install
	$(BIN)/fidelio -c config.yaml docs reference

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check bot handlers scheduler tests $(wildcard bench)
	$(BIN)/mypy bot handlers scheduler

clean:
	rm -rf $(VENV) var .pytest_cache
