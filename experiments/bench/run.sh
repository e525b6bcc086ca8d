#!/usr/bin/env bash
# Regenerate experiments/bench/ on an otherwise idle machine (about 40 minutes here):
#   1. python -m den.bench: framework vs bare PyTorch steps (finetune, ewc, every DEN phase),
#      evaluation throughput, peak memory, and the growth check over 10 and 50 tiny tasks;
#   2. the same bench with one thread;
#   3. the full +experiment=pmnist DEN run (10 tasks, real MNIST), its wall time accounted
#      against bare twins of every phase it ran (experiments/bench/full_run.py).
# Extra arguments (e.g. device=cuda) go to the first den.bench and to den.train.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
export DEN_DATA_ROOT="${DEN_DATA_ROOT:-../shared/data}"
$PY -m den.bench scaling.enabled=true steps=500 repeats=7 "$@" hydra.run.dir=experiments/bench/steps
$PY -m den.bench threads=1 steps=300 repeats=9 hydra.run.dir=experiments/bench/steps_1thread
$PY -m den.train +experiment=pmnist logger=none "$@" hydra.run.dir=outputs/bench/pmnist_den
$PY experiments/bench/full_run.py outputs/bench/pmnist_den --out experiments/bench/full_run.md
cp outputs/bench/pmnist_den/results.json experiments/bench/pmnist_den_results.json
