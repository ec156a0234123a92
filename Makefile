# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config.example.toml

.PHONY: run once test check lint clean

# The install builds monitor/rules/_layout.c (in place: the install is editable), so a change
# to it installs again
$(VENV)/.run-installed: pyproject.toml monitor/rules/_layout.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml monitor/rules/_layout.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/monitor run --config $(CONFIG)

once: $(VENV)/.run-installed
	$(BIN)/monitor once --config $(CONFIG)

check: $(VENV)/.run-installed
	$(BIN)/monitor check --config $(CONFIG)

# The package's bytecode is written first: an editable install compiles nothing, and where
# PYTHONDONTWRITEBYTECODE is set (CI's machine) every `monitor` the tests start would compile
# the package from source again (~0.3 s of CPU a start; the suite starts it hundreds of times).
test: $(VENV)/.test-installed
	$(BIN)/python -m compileall -q monitor
	$(BIN)/python -m pytest -q -n 2

lint: $(VENV)/.test-installed
	$(BIN)/python -m pip install -q -e '.[dev]' && $(BIN)/ruff check monitor tests bench && $(BIN)/mypy monitor

clean:
	rm -rf $(VENV) build monitor/rules/*.so var/*.db var/*.db-wal var/*.db-shm

# Polling benchmark (bench/polling/README.md): daemon vs a minimal floor vs rss2email on a
# local feed farm, each contender's work checked at the farm and in what it recorded.
# ARGS="--quick" for a one-minute smoke run; see `run.py --help`. Exits 1 when a contender
# did not do the work (the figures prove nothing), 3 when a goal is missed.
.PHONY: bench-polling
bench-polling: $(VENV)/.run-installed
	$(BIN)/python -c "import rss2email, psutil" 2>/dev/null || \
		$(BIN)/python -m pip install -q --disable-pip-version-check rss2email psutil
	$(BIN)/python bench/polling/run.py $(ARGS)

# Rule-matching benchmark (bench/matching.py): the rule engine vs the per-rule regex loop of
# Miniflux/rss2email/Huginn, 10 to 10,000 generated rules on the corpus' news texts, with the
# goals as PASS/FAIL lines. ARGS="--quick" for a one-minute smoke run; see `matching.py --help`.
.PHONY: bench-matching
bench-matching: $(VENV)/.run-installed
	$(BIN)/python bench/matching.py $(ARGS)

# Cluster scale benchmark (issue 19, bench/cluster_scale.py): whole daemons on a local feed farm,
# SQLite's single node beside 1, 2 and 4 nodes on one throwaway PostgreSQL (pg_stat_statements
# counts the queries); ~4-5 minutes. Exits 1 when a configuration did no work or the farm's and
# the database's counts of polls disagree.
.PHONY: bench-cluster-scale
bench-cluster-scale: $(VENV)/.test-installed
	$(BIN)/python -c "import psutil" 2>/dev/null || \
		$(BIN)/python -m pip install -q --disable-pip-version-check psutil
	$(BIN)/python bench/cluster_scale.py $(ARGS)
