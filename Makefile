# Tally: the two commands of the README, and their parts.
#   make demo   install everything, then run the custody demo
#   make test   install everything, then run the whole test suite
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
# Two Rust extensions: the Ed25519 verifier (decision 0013) and the canonical-CBOR
# fast path (decision 0016); rustup puts cargo here.
export PATH := $(HOME)/.cargo/bin:$(PATH)
NATIVE := native/ed25519 native/cbor
NATIVE_FILES := $(foreach n,$(NATIVE),$(n)/Cargo.toml $(n)/Cargo.lock $(n)/pyproject.toml $(n)/src/lib.rs)

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml verifier/pyproject.toml scripts/install_cometbft.sh $(NATIVE_FILES)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet $(addprefix ./,$(NATIVE))
	# The standalone evidence verifier (decision 0024), which Tally's CLI and node use.
	$(VENV)/bin/python -m pip install --quiet -e ./verifier
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	bash scripts/install_cometbft.sh
	touch $(STAMP)

demo: setup
	$(VENV)/bin/tally demo

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pyright --pythonpath $(VENV)/bin/python
	TALLY_REQUIRE_COMETBFT=1 TALLY_REQUIRE_NETNS=1 TALLY_REQUIRE_OPENSSL=1 $(VENV)/bin/python -m pytest -q -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pyright --pythonpath $(VENV)/bin/python

bench: setup
	$(VENV)/bin/python bench/bench_custody.py --http

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache demo-output $(addsuffix /target,$(NATIVE))
