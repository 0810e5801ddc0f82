# certflow — two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PYTHON  ?= python3
PYTEST_ARGS ?=
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test unit fuzz bench bench-deps bench-scale install system-deps docs clean lint-certs

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

install: $(VENV)/.installed

# System tools the integration tests start: Pebble (ACME CA), nginx, faketime, openssl, sshd,
# PostgreSQL (a private cluster per test session, made with initdb), chromium (driven by
# Playwright; no browser download) with a Japanese font for its pages;
# promtool (Debian package prometheus) checks the documented alert rules.
system-deps:
	@missing=""; \
	command -v pebble >/dev/null 2>&1 && command -v pebble-challtestsrv >/dev/null 2>&1 || missing="$$missing pebble"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v faketime >/dev/null 2>&1 || missing="$$missing faketime"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	[ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	fc-list 2>/dev/null | grep -qi gothic || missing="$$missing fonts-ipafont-gothic"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y $$missing; \
	fi

demo: $(VENV)/.installed
	$(VENV)/bin/certflow demo

test: $(VENV)/.installed system-deps
	$(PY) -m pytest -n 2 -q -p no:cacheprovider $(PYTEST_ARGS)

unit: $(VENV)/.installed
	$(PY) -m pytest -q -m "not integration" $(PYTEST_ARGS)

# Property tests at 10,000 cases each (FUZZ_EXAMPLES=N to change); `make test` runs a few.
# FUZZ_FINDINGS=FILE records every distinct crash to FILE instead of stopping at the first.
FUZZ_EXAMPLES ?= 10000
fuzz: $(VENV)/.installed
	HYPOTHESIS_PROFILE=fuzz FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -n 2 -q -p no:cacheprovider \
	  --timeout=0 --hypothesis-show-statistics tests/unit/test_properties_*.py $(PYTEST_ARGS)

# bench/issuance.py's peer: lego (certbot comes from PyPI into a bench-only virtualenv)
bench-deps:
	@command -v lego >/dev/null 2>&1 || { $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y lego; } || \
	  echo "lego could not be installed: bench/issuance.py will say so"

bench: $(VENV)/.installed bench-deps
	$(PY) bench/engine.py
	$(PY) bench/daemon.py
	$(PY) bench/replay.py
	$(PY) bench/keys.py
	$(PY) bench/contracts.py
	@if command -v pebble >/dev/null 2>&1; then $(PY) bench/issuance.py; \
	  else echo "bench/issuance.py skipped: pebble is not installed (make system-deps)"; fi

# the issue-19 figures: every operator command at a million orders (about half an hour)
bench-scale: $(VENV)/.installed
	$(PY) bench/scale.py --orders 1000000

# pkilint (CA/B Forum TLS BRs) over the demo's leaf certificates: exit 1 on any finding
# about validity period or key usage; lists those due to the local CA's missing CRL/AIA/policies
lint-certs: $(VENV)/.installed
	PYTHONPATH=.:tests $(PY) -m support.pkilint_certs

docs: $(VENV)/.installed
	$(PY) -m workflow.ops.docs_gen --write

clean:
	rm -rf $(VENV) demo-workspace var .pytest_cache
