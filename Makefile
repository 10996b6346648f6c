# Quick start: `make run` starts the app; `make test` runs every test. `make run PORT=8502` picks the port;
# Ctrl+C stops the server.
PYTHON ?= python3
PORT ?= 8501
# Requirements are installed once per Python environment, and again only when a requirements file changes:
# a stamp per environment (keyed on its sys.prefix) records the install. `make install` forces it.
STAMPS := .cache/make
ENV_ID := $(shell $(PYTHON) -c "import hashlib, sys; print(hashlib.sha1(sys.prefix.encode()).hexdigest()[:12])")
RUN_STAMP := $(STAMPS)/$(ENV_ID)-requirements.stamp
DEV_STAMP := $(STAMPS)/$(ENV_ID)-requirements-dev.stamp

.PHONY: run test install install-dev bench

run: $(RUN_STAMP)
	$(PYTHON) -m streamlit run app.py --server.port $(PORT)

test: $(DEV_STAMP)
	$(PYTHON) -m pytest

$(RUN_STAMP): requirements.txt
	@echo "Installing the app's packages into $$($(PYTHON) -c 'import sys; print(sys.prefix)') (once per environment;"
	@echo "about 1-2 minutes on a fresh machine, most of it PyTorch and transformers)..."
	$(PYTHON) -m pip install --disable-pip-version-check --progress-bar on -r requirements.txt
	@mkdir -p $(STAMPS) && touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt
	@echo "Installing the app's and the tests' packages (once per environment; about 2 minutes on a fresh machine)..."
	$(PYTHON) -m pip install --disable-pip-version-check --progress-bar on -r requirements-dev.txt
	@mkdir -p $(STAMPS) && touch $@ $(RUN_STAMP)

install:
	$(PYTHON) -m pip install -q -r requirements.txt
	@mkdir -p $(STAMPS) && touch $(RUN_STAMP)

install-dev:
	$(PYTHON) -m pip install -q -r requirements-dev.txt
	@mkdir -p $(STAMPS) && touch $(DEV_STAMP) $(RUN_STAMP)

bench: $(RUN_STAMP)
	$(PYTHON) bench/bench_trace.py
	$(PYTHON) bench/bench_train.py
	$(PYTHON) bench/bench_decode.py
	$(PYTHON) bench/bench_gpt2_trace.py
