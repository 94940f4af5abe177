# Two commands on a fresh machine: `make demo` and `make test`. Each bootstraps what it needs:
# the Python virtual environment, the npm packages of the contracts, the compiled contracts.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NPM_STAMP := contracts/node_modules/.installed
PEER_STAMP := tests/opcua_peer/node_modules/.installed
CONTRACTS := contracts/build/.fingerprint

PG_STAMP := $(wildcard /usr/lib/postgresql/*/bin/initdb)
CHROMIUM_STAMP := $(wildcard /usr/bin/chromium)

.PHONY: demo test lint contracts opcua-peer bench clean postgres chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NPM_STAMP): contracts/package.json contracts/package-lock.json
	cd contracts && npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

$(CONTRACTS): $(NPM_STAMP) contracts/build.mjs $(wildcard contracts/src/*.sol)
	cd contracts && node build.mjs

contracts: $(CONTRACTS)

# node-opcua, an OPC UA stack independent of asyncua, drives feederdao's servers in the tests.
$(PEER_STAMP): tests/opcua_peer/package.json tests/opcua_peer/package-lock.json
	cd tests/opcua_peer && npm install --no-audit --no-fund --loglevel=error
	touch $(PEER_STAMP)

opcua-peer: $(PEER_STAMP)

# The test run starts its own PostgreSQL cluster on loopback from Debian's package.
postgres:
ifeq ($(PG_STAMP),)
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
endif

# The console's browser tests drive headless Chromium from Debian's package (Playwright for
# Python is pointed at it: no browser download).
chromium:
ifeq ($(CHROMIUM_STAMP),)
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
endif

demo: $(STAMP) $(CONTRACTS)
	$(BIN)/feederdao demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint $(CONTRACTS) $(PEER_STAMP) postgres chromium
	$(BIN)/pytest -q

bench: $(STAMP) $(CONTRACTS)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/clearing.py
	$(BIN)/python bench/governance.py
	$(BIN)/python bench/service.py
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/settlement.py
	$(BIN)/python bench/studies.py
	$(BIN)/python bench/console.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache contracts/node_modules contracts/build \
		tests/opcua_peer/node_modules test-artifacts
