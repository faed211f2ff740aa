# The two fresh-machine commands (see README): `make demo` and `make test`.
.PHONY: demo test setup setup-dev lint bench fixtures

demo: setup
	.venv/bin/voicebot demo

test: setup-dev
	.venv/bin/python -m pytest -q

setup:
	scripts/setup

setup-dev:
	scripts/setup --dev

lint: setup-dev
	.venv/bin/ruff check voicebot tests scripts rasa_project/actions

bench:
	scripts/bench

fixtures: setup-dev
	.venv/bin/python scripts/make_fixtures.py
