# One entry point for learners, instructors and CI. `make help` lists the targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; on a machine with a GPU, `make setup TORCH_SPEC=torch` takes the CUDA build.
TORCH_SPEC ?= torch==2.13.0
JOBS ?= 2
STAMP := $(VENV)/.installed

.PHONY: help setup lab test test-unit test-notebooks course notebooks check-notebooks toy-model lint clean browser-deps

help:
	@echo "make lab        set everything up and open the course in JupyterLab"
	@echo "make test       set everything up and run the whole test suite (unit tests + every notebook)"
	@echo "make course     execute every solution notebook headless; executed copies land in build/"
	@echo "make notebooks  regenerate the student notebooks from solutions/"
	@echo "make toy-model  rebuild the toy world's tokenizer and weights from code"
	@echo "make lint       ruff check and ruff format --check over the tree (make test runs them first)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab notebooks/

# tests/course/test_browser.py drives Debian's chromium with Playwright (never a downloaded browser). As root (CI)
# install it when missing; otherwise say why the test will skip (with CI=true it fails instead).
browser-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium for tests/course/test_browser.py"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "could not install chromium: tests/course/test_browser.py will skip (CI=true: fail)"; \
	else echo "no /usr/bin/chromium and not root: tests/course/test_browser.py will skip (CI=true: fail)"; fi

# Lint first (ruff check, including C901 <= 12 on dpo_course/, and ruff format --check): a style slip fails in
# seconds, before the notebooks run for minutes.
test: setup browser-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m dpo_course.course.authoring --check
	OMP_NUM_THREADS=1 DPO_COURSE_STRICT=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 MPLBACKEND=Agg \
	  $(BIN)/python -m pytest -n $(JOBS) --dist loadfile --durations=15 \
	  tests notebooks solutions --nbval-lax --nbval-current-env --nbval-cell-timeout=600

test-unit: setup
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile tests

test-notebooks: setup
	DPO_COURSE_STRICT=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(BIN)/python -m pytest -n $(JOBS) --dist loadfile \
	  notebooks solutions --nbval-lax --nbval-current-env --nbval-cell-timeout=600

course: setup
	mkdir -p build
	HF_HUB_OFFLINE=1 DPO_COURSE_STRICT=1 MPLBACKEND=Agg $(BIN)/python -m dpo_course.course.cli course --out build

notebooks: setup
	$(BIN)/python -m dpo_course.course.authoring

check-notebooks: setup
	$(BIN)/python -m dpo_course.course.authoring --check

toy-model: setup
	$(BIN)/python -m dpo_course.toyworld.build

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf build .pytest_cache
