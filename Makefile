# Development shortcuts. `make check` is what CI runs before the test suite.
.PHONY: check lint format layers unit test slow

check: lint layers unit

lint:
	ruff check .
	ruff format --check .

format:
	ruff check --fix .
	ruff format .

layers:
	lint-imports

unit:
	python -m pytest tests/unit -q

test:
	python -m pytest -m "not gpu and not slow"

slow:
	python -m pytest -m slow
