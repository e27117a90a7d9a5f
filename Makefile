# Two commands a newcomer needs: `make run` and `make test`. Both set themselves up.
SHELL := /bin/bash
.DEFAULT_GOAL := run
# Use the machine's own Python; never download an interpreter.
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3

UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
VENV_STAMP := .venv/.synced-$(shell cat uv.lock pyproject.toml */pyproject.toml services/*/pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test test-faults audit setup assets browser lint typecheck unit integration e2e demo train bench clean

setup: $(VENV_STAMP) assets

# GOV.UK Frontend's CSS, JavaScript, fonts and images for the officer and residents' pages,
# and axe-core for the browser tests' accessibility checks, from the npm registry (not
# committed). Without npm the pages still work, unstyled, and those checks are skipped.
assets:
	@if command -v npm >/dev/null 2>&1; then services/outreach/scripts/fetch_govuk_frontend.sh \
		&& services/outreach/scripts/fetch_axe_core.sh; \
	else echo "npm not found: the officer pages will be unstyled (GOV.UK Frontend not fetched)" \
		"and the accessibility checks skipped (axe-core not fetched)"; fi

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads one).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "Installing Debian's chromium for the browser tests…"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "No /usr/bin/chromium and no root apt-get: the browser tests will be skipped"; fi; \
	fi

$(VENV_STAMP):
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv \
		|| python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --locked
	@rm -f .venv/.synced-* && touch $@

run: setup  ## start the broker and the four services, with a simulator
	.venv/bin/proactive up

test: setup browser lint typecheck  ## everything CI runs
	.venv/bin/pytest -q -p no:cacheprovider --timeout=600

# Known vulnerabilities in the locked dependencies (pip-audit from PyPI, asking PyPI's
# vulnerability data); fails on any that has a fixed version, and when packages went unchecked.
AUDIT_REPORT := .proactive/pip-audit.json
audit:
	@mkdir -p .proactive
	$(UV) export --format requirements-txt --no-hashes --all-packages --all-groups \
		--no-emit-workspace --frozen --quiet -o .proactive/requirements-audit.txt
	-$(UV) tool run pip-audit==2.10.1 -r .proactive/requirements-audit.txt --no-deps \
		--disable-pip --progress-spinner off --format json -o $(AUDIT_REPORT)
	python3 .ci/fixable_vulnerabilities.py $(AUDIT_REPORT)

# The whole-stack fault-injection run, quick variant (a few minutes): part of `make test`
# too, since it lives under tests/. `proactive faults --out RELIABILITY.md` is the full run.
test-faults: setup
	.venv/bin/pytest -q -p no:cacheprovider --timeout=600 tests/faults

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: setup
	.venv/bin/mypy shared/src/shared services/ingest/src/ingest services/scoring/src/scoring \
		services/outreach/src/outreach services/notify/src/notify tools/src/proactive

unit: setup
	.venv/bin/pytest -q -m unit

integration: setup
	.venv/bin/pytest -q -m integration

e2e: setup
	.venv/bin/pytest -q -m e2e

demo: setup
	.venv/bin/proactive demo --events 1000 --json

train: setup
	.venv/bin/proactive train

bench: setup
	.venv/bin/proactive bench

clean:
	rm -rf .proactive .pytest_cache .mypy_cache .ruff_cache
