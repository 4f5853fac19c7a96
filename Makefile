# The two commands of the quick start: `make run` (the pipeline on embedded defaults, against the
# local sandbox when no credentials are set) and `make test`. Each installs what it needs.
VENV ?= .venv
PYTHON ?= python3
CAMPAIGN ?= campaigns/peru_2022.toml
START ?= 2022-12-07
END ?= 2022-12-08

.PHONY: run test test-full chaos system-deps lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

# espeak-ng makes the sandbox's speech; nothing else outside Python is needed.
system-deps:
	@command -v espeak-ng >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q espeak-ng; }

run: system-deps $(VENV)/.installed
	$(VENV)/bin/gettok run --campaign $(CAMPAIGN) --start $(START) --end $(END)

test: system-deps $(VENV)/.installed
	$(VENV)/bin/pytest

# Everything, including the 20 extra crash-and-resume trials and Postgres lost mid-run (~25 min).
test-full: system-deps $(VENV)/.installed
	GETTOK_FULL_TESTS=1 $(VENV)/bin/pytest

# The reliability suite alone, in full.
chaos: system-deps $(VENV)/.installed
	GETTOK_FULL_TESTS=1 $(VENV)/bin/pytest tests/test_chaos*.py tests/test_bad_input*.py \
	  tests/test_secrets*.py tests/test_postgres_down*.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) data
