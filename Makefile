# Two commands do all set-up on a fresh machine:
#   make serve   run Orosflow on its embedded defaults (Prefect server, flows, SMTP capture)
#   make test    run the test suite (SQLite and PostgreSQL, real Prefect server and SMTP)
SHELL := /bin/bash
UV := python3 -m uv
PG_URL ?= postgresql+psycopg://root@127.0.0.1:5432/test

.PHONY: serve test install uv postgres browser lint clean bench screenshots

uv:
	@$(UV) --version >/dev/null 2>&1 || (echo "Installerar uv …" && python3 -m pip install --quiet uv)

install: uv
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

serve: install
	@$(UV) run orosflow serve

test: install postgres browser
	@$(UV) run ruff check .
	@OROSFLOW_TEST_PG_URL="$(PG_URL)" $(UV) run pytest -q -ra $(PYTEST_ARGS)

bench: install postgres
	@$(UV) run python -m benchmarks.run

# Rerun the Chromium end-to-end test and keep its screenshots under docs/screenshots.
screenshots: install browser
	@OROSFLOW_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(UV) run pytest -q tests/e2e

lint: install
	@$(UV) run ruff check . && $(UV) run ruff format --check .

clean:
	rm -rf var/ .pytest_cache
