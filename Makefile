# Quick start: `make run` starts the app; `make test` runs every test.
PYTHON ?= python3
PORT ?= 8501

.PHONY: run test install install-dev bench

run: install
	$(PYTHON) -m streamlit run app.py --server.port $(PORT)

test: install-dev
	$(PYTHON) -m pytest

install:
	$(PYTHON) -m pip install -q -r requirements.txt

install-dev:
	$(PYTHON) -m pip install -q -r requirements-dev.txt

bench: install
	$(PYTHON) bench/bench_trace.py
	$(PYTHON) bench/bench_train.py
