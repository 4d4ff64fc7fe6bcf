# rnn-bench: two commands on a fresh machine with Python 3.11 and pip.
#   make run    sets up .venv, runs the quick suite, writes reports/quick/index.html
#   make test   sets up .venv, runs the tests
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Set CONSTRAINTS= (empty) to keep a torch you installed yourself (e.g. a CUDA build).
CONSTRAINTS ?= -c constraints.txt
PYTEST_ARGS ?= -q

.PHONY: run test venv lint smoke scaling gpu-bench error-rates fuzz faults report clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) -e '.[torch,tf,dask,test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/rnn-bench run quick
	$(BIN)/rnn-bench report --suite quick

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

smoke: $(STAMP)
	$(BIN)/rnn-bench run smoke && $(BIN)/rnn-bench report --suite smoke

scaling: $(STAMP)
	$(BIN)/python benchmarks/scaling.py

gpu-bench: $(STAMP)
	$(BIN)/python benchmarks/gpu_bench.py

error-rates: $(STAMP)
	$(BIN)/python -m harness.analysis.simulated_studies

# the fault campaign (benchmarks/faults.py): an hour of small runs with faults at random moments, resumed
# until complete, and the count of what was lost, duplicated or stale; first 2,000 fuzzed inputs of each kind
faults: $(STAMP)
	$(BIN)/python -m benchmarks.faults --minutes $${MINUTES:-60} --seed $${SEED:-1} --fuzz 2000

# the fuzzed-input tests with thousands of examples each (make test runs a fast profile); prints the counts
fuzz: $(STAMP)
	RNN_BENCH_FUZZ=long $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_fuzzed_input.py \
		--hypothesis-show-statistics > .fuzz.log; status=$$?; \
		grep -a -E "^tests/|passing|passed|failed|Falsifying|Error" .fuzz.log; rm -f .fuzz.log; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
