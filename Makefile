# The two commands everyone uses: `make run` and `make test`. Both set up what they need first.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
# Re-install when the dependency list changes (pyproject.toml holds every pinned version).
STAMP   := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: setup run demo test test-slow test-all clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned (==2.13.0) in pyproject.toml: pip takes the CPU wheel on disk, never a CUDA build.
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

run: setup
	@bash deploy/local/system-packages.sh run
	# One machine, loopback only: the gateway answers without keys unless you set this to false (docs/gateway.md).
	TUMORSEARCH_LOG__FORMAT=$${TUMORSEARCH_LOG__FORMAT:-text} \
	TUMORSEARCH_GATEWAY__AUTH_DISABLED=$${TUMORSEARCH_GATEWAY__AUTH_DISABLED:-true} $(VENV)/bin/tumorsearch run

demo: setup
	@bash deploy/local/system-packages.sh run
	$(VENV)/bin/tumorsearch demo

test: setup
	@bash deploy/local/system-packages.sh test
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

test-slow: setup
	@bash deploy/local/system-packages.sh test
	$(VENV)/bin/pytest -m slow $(PYTEST_ARGS)

test-all: setup
	@bash deploy/local/system-packages.sh test
	$(VENV)/bin/pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
