# Needs only python3 and make. Everything else is installed into .venv from requirements.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PAYCORE := $(BIN)/paycore

.PHONY: install run test lint format bench fuzz lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

run: install
	$(PAYCORE) db migrate
	$(PAYCORE) demo setup
	$(PAYCORE) run

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -n auto

format: install
	$(BIN)/ruff check --fix src tests bench scripts
	$(BIN)/ruff format src tests bench scripts

# Thousands of generated hostile requests per database (SQLite and PostgreSQL); not part of `test`.
fuzz: install
	$(BIN)/python scripts/fuzz.py

# Every benchmark (PostgreSQL at 127.0.0.1:5432, or PAYCORE_BENCH_POSTGRES_URL), the checkout ones
# shortened so the whole target stays near ten minutes on a 2-core machine; the last one draws
# docs/performance-checkout.png. A missed target prints MISSED; only failed requests (>1%) stop it.
BENCH_NOT_RUN := bench/reference_checkout.py bench/reference_tables.py  # the reference app, not a benchmark
BENCH_CHECKOUT := bench/checkout.py bench/open_loop.py bench/checkout_curve.py
bench: install
	@for script in $(filter-out $(BENCH_NOT_RUN) $(BENCH_CHECKOUT),$(wildcard bench/[!_]*.py)); do \
		echo "== $$script"; $(BIN)/python $$script || exit 1; done
	@echo "== bench/checkout.py"; $(BIN)/python bench/checkout.py --duration 8 --low-clients 8
	@echo "== bench/open_loop.py"; $(BIN)/python bench/open_loop.py --duration 30
	@echo "== bench/checkout_curve.py"; $(BIN)/python bench/checkout_curve.py

# Re-resolve every dependency (needs uv, installed into the venv on demand) and pin with hashes.
lock: install
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes -o requirements.lock
	@touch requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
