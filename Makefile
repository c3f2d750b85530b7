VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the Ray launcher extra (~420 MB): only the tests need it, so `make run` does not install it
SCALE := $(VENV)/.installed-scale

CHROMIUM := /usr/bin/chromium

.PHONY: install run test bench lint clean chromium

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(SCALE): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,scale]'
	touch $(SCALE)

install: $(STAMP)

## Replays the bundled Binance data through both agents (futures on perps, hybrid on spot).
run: $(STAMP)
	$(VENV)/bin/ratchet -m experiment=futures,hybrid

## Debian's chromium, for the tests that open reports and the dashboard in a real browser
## (Playwright drives it by path: `playwright install` needs the internet).
chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; \
	  else echo "chromium is missing: sudo apt-get install -y chromium (the browser tests need it)" >&2; fi; }

## Runs the whole test suite offline (with the Ray extra: a local Ray instance runs a sweep).
test: $(STAMP) $(SCALE) chromium
	$(PY) -m pytest -q -n 2 --dist loadfile tests

## Issue 11's speed targets, each with its measured value and ratio (a quiet machine: minutes).
## backtesting.py runs from a throwaway venv of its own (.venv-bt), never a dependency of Ratchet.
BT := .venv-bt/bin/python
$(BT):
	python3 -m venv .venv-bt
	$(BT) -m pip install -q backtesting pyarrow 'ta-lib==0.8.*'

bench: $(STAMP) $(BT)
	$(PY) benchmarks/targets.py --backtesting-python $(BT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .venv-bt runs/*/ multirun
