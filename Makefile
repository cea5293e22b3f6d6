# jobport: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test fuzz lint format bench bench-compare bench-stored bench-transfer bench-iteration bench-memory clean

$(BIN)/jobport: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/jobport
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The admin's password, made once (and set on the database, in case one exists already):
# the first start creates user admin with it, and every `make run` prints it. A later
# `jobport users passwd admin --local` in this folder writes the new one here too
# (src/jobport/cli/users.py), so what `make run` prints stays true.
ADMIN_PASSWORD := .jobport/admin-password

$(ADMIN_PASSWORD): | $(BIN)/jobport
	@mkdir -p $(@D)
	@umask 077 && $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(12))' > $@.new
	@JOBPORT_ADMIN_PASSWORD="$$(cat $@.new)" \
		$(BIN)/jobport users passwd --local admin --password-stdin < $@.new > /dev/null
	@mv $@.new $@

run: $(BIN)/jobport $(ADMIN_PASSWORD)
	@echo "console/API at http://$(HOST):$(PORT), user admin, password $$(cat $(ADMIN_PASSWORD))"
	@echo "an API key: $(BIN)/jobport keys create --local --role Administrator"
	JOBPORT_ADMIN_PASSWORD="$$(cat $(ADMIN_PASSWORD))" \
		$(BIN)/jobport serve --host $(HOST) --port $(PORT) --demo

# One pytest process per core (pytest-xdist); a test module stays on one of them, so the
# server a module shares starts once.
test: $(VENV)/.dev
	$(BIN)/python -m pytest -n auto --dist loadscope

# Schemathesis against a real server, as in `make test` (tests/api/test_fuzz.py) but longer:
# FUZZ_EXAMPLES cases per operation and phase (make test: 20), same checks; FUZZ_SEED=n for
# another seed. Reports (every request in HAR, a JSON summary) land in build/fuzz.
FUZZ_EXAMPLES ?= 500
fuzz: $(VENV)/.dev
	JOBPORT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) JOBPORT_FUZZ_TIMEOUT=7200 \
	JOBPORT_FUZZ_REPORT_DIR=build/fuzz $(if $(FUZZ_SEED),JOBPORT_FUZZ_SEED=$(FUZZ_SEED)) \
		$(BIN)/python -m pytest tests/api/test_fuzz.py -s

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# sqlite+local, postgres+local and postgres+celery side by side (~3 min); a setup whose
# PostgreSQL or Redis is absent is skipped. .dev: psycopg and celery come with it.
bench: $(VENV)/.dev
	$(BIN)/python bench/run.py

# jobport (sqlite+local, phases a-c) and a Celery + Redis no-op baseline, three alternating
# rounds, one table with the ratio (~4 min; bench/compare.py).
bench-compare: $(VENV)/.dev
	$(BIN)/python bench/compare.py

# The curve at 0, 100,000 and 1,000,000 stored runs (20 log lines each): phases a-d on
# sqlite+local, each size on a copy of a database filled once (~4 min; STORED=0,100000 for less).
STORED ?= 0,100000,1000000
bench-stored: $(VENV)/.dev
	$(BIN)/python bench/run.py --setups sqlite+local --stored $(STORED)

# The server's memory: phases a-c on sqlite+local, then SOAK more no-op runs in drained chunks,
# its RSS every 10,000 runs, against 150 MB (~15-30 min at 100,000; SOAK=20000 for a look).
SOAK ?= 100000
bench-memory: $(VENV)/.dev
	$(BIN)/python bench/run.py --setups sqlite+local --soak $(SOAK)

# The transfer step: 1,000,000 rows SQLite to SQLite and PostgreSQL to PostgreSQL (~1 min).
bench-transfer: $(VENV)/.dev
	$(BIN)/python bench/transfer.py

bench-iteration: $(BIN)/jobport
	$(BIN)/python bench/iteration.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
