# Two commands do all set-up on a fresh machine:
#   make serve   run Orosflow on its embedded defaults (Prefect server, flows, SMTP capture)
#   make test    run the test suite (SQLite and PostgreSQL, real Prefect server and SMTP)
SHELL := /bin/bash
PYTHON ?= python3
# uv lives in a private venv of its own (.tools/): Debian's and Ubuntu's own Python refuse
# `pip install` into the system (PEP 668, "externally-managed-environment").
TOOLS := .tools
UV := $(TOOLS)/bin/uv
PG_URL ?= postgresql+psycopg://root@127.0.0.1:5432/test

.PHONY: serve test install postgres browser pdflibs lint clean bench bench-overhead bench-serve bench-sustained screenshots reliability check-deploy a11y

$(UV):
	@echo "Installerar uv i $(TOOLS)/ …"
	@if ! $(PYTHON) -m venv $(TOOLS) >/dev/null 2>&1; then \
	  rm -rf $(TOOLS); \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "Installerar python3-venv …"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null; }; \
	    $(PYTHON) -m venv $(TOOLS); \
	  else \
	    echo "Python saknar venv: installera paketet python3-venv (sudo apt install python3-venv) och kör igen."; \
	    exit 1; \
	  fi; \
	fi
	@$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv

install: $(UV)
	@$(UV) sync --frozen --all-groups

# PostgreSQL for the tests: start the local cluster if it is installed but not running.
postgres:
	@if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q; then \
	  echo "Startar PostgreSQL …"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start || true; \
	  for i in $$(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done; \
	fi

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; no download).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "Installerar Chromium …"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	  else \
	    echo "Chromium saknas: installera Debian-paketen chromium och chromium-driver för webbläsartesterna."; \
	  fi; \
	fi

# Debian's libraries for WeasyPrint's PDFs (Pango, HarfBuzz subsetting) and poppler-utils'
# pdftotext, with which the tests read the PDFs back; installed when root and missing.
PDF_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 poppler-utils
pdflibs:
	@missing=$$(for p in $(PDF_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "Installerar $$(echo $$missing) …"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; }; \
	  else \
	    echo "PDF-bibliotek saknas: installera Debian-paketen $$(echo $$missing) (PDF för diariet och testerna)."; \
	  fi; \
	fi

serve: install pdflibs
	@$(UV) run orosflow serve

# The suite waits on real servers far more than it computes: TEST_WORKERS pytest-xdist workers
# (one file each at a time; each worker has its own Prefect server, temp dir and PostgreSQL
# schema) run all but the `serial` tests, which assert wall-clock limits and run afterwards alone.
TEST_WORKERS ?= 3
test: install postgres browser pdflibs
	@$(UV) run ruff check .
	@export OROSFLOW_TEST_PG_URL="$(PG_URL)"; \
	$(UV) run pytest -q -ra -n $(TEST_WORKERS) --dist loadfile -m "not serial" $(PYTEST_ARGS); a=$$?; \
	$(UV) run pytest -q -ra -m serial $(PYTEST_ARGS); b=$$?; \
	if [ $$a = 5 ] && [ $$b = 5 ]; then echo "Inga tester hittades."; exit 5; fi; \
	if [ $$a != 0 ] && [ $$a != 5 ]; then exit $$a; fi; \
	if [ $$b != 0 ] && [ $$b != 5 ]; then exit $$b; fi

# Before each release: docs/deploy.md against the code (tests/test_deploy_doc.py, seconds; also
# part of `make test`), then docs/check_deploy.py runs every sh block of the guide on scratch
# databases, ports and a STARTTLS+AUTH relay, and the worker-kill step (about 4 min; root,
# PostgreSQL at 127.0.0.1:5432 trusting root, runuser, curl; not part of `make test` or CI).
check-deploy: install postgres
	@$(UV) run pytest -q -p no:cacheprovider tests/test_deploy_doc.py
	@.venv/bin/python docs/check_deploy.py

# docs/benchmarks.md: the in-process figures (benchmarks/run.py), each next to its value before
# issue 13 (from git), then serve's section (now, before issue 13, a burst of 200; ~8 min more).
# BENCH_SUSTAINED=1 adds the sustained-load section (bench-sustained, ~15 min more; its options
# in BENCH_SUSTAINED_ARGS); without it the page keeps the sustained runs it has.
bench: install postgres
	@$(UV) run python -m benchmarks.run
	@$(UV) run python -m benchmarks.before_after
	@$(UV) run python -m benchmarks.serve_burst --doc

# Sustained load (issue 13, item 5): reports through the portal's API at a fixed rate for minutes,
# PostgreSQL for app and Prefect, `orosflow runner` (or `--worker process`); lost, duplicates,
# receipts, time-to-notify, memory, CPU per report and what bounds the rate. Default 5/s for
# 600 s; e.g. SUSTAINED_ARGS="--rate 1 2 3 --duration 120 --doc" (--doc: into docs/benchmarks.md).
SUSTAINED_ARGS ?=
bench-sustained: install postgres
	@$(UV) run python -m benchmarks.sustained $(SUSTAINED_ARGS)

# Prefect's overhead alone: plain and Prefect runs in turn on PostgreSQL, step by step
# (about 40 s; benchmarks/overhead.py, what the figures mean: benchmarks/PROFILE.md).
bench-overhead: install postgres
	@$(UV) run python -m benchmarks.run --section overhead

# The embedded default under a burst: `orosflow serve`, 20 reports at once through the API and
# one at a time (time-to-notify, receipts, 503s, peak RSS, flow-run processes at once).
bench-serve: install
	@$(UV) run python -m benchmarks.serve_burst

# The fault tests of docs/reliability.md in one run, with the figures they print.
RELIABILITY_TESTS := tests/test_fault_matrix.py tests/test_reconcile.py tests/test_serve_recovery.py \
	tests/test_worker_recovery.py tests/test_serve_lifetime.py tests/lifecycle/test_fail_closed.py
reliability: install postgres
	@mkdir -p var; echo "Felprov (cirka 9 min), full logg i var/reliability.log …"; \
	OROSFLOW_TEST_PG_URL="$(PG_URL)" $(UV) run pytest -v -s -p no:cacheprovider $(RELIABILITY_TESTS) \
	  >var/reliability.log 2>&1; rc=$$?; \
	grep -E "::| after | mailed | wall time|[0-9]+ (passed|failed)" var/reliability.log; exit $$rc

# Rerun the Chromium end-to-end test and keep its screenshots under docs/screenshots.
screenshots: install browser
	@OROSFLOW_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(UV) run pytest -q tests/e2e

lint: install
	@$(UV) run ruff check . && $(UV) run ruff format --check .

clean:
	rm -rf var/ .pytest_cache $(TOOLS)

# axe-core in Chromium on every page state of the three roles at 1280 and 390 px, under the
# production CSP; prints the states covered and the violations per state (a few minutes).
a11y: install browser
	@$(UV) run pytest -q -s -p no:cacheprovider tests/e2e/test_axe.py
