#!/usr/bin/env bash
# DEN's phase budgets on permuted MNIST, chosen on validation data (README.md here):
# stage 1, strategy.selective_iters x strategy.expansion_iters in {1000, 2000, the trainer's
# 4300}; stage 2, strategy.split_iters in {500, 1000} at stage 1's choice; seeds 0 and 1, on the first 3 tasks of +experiment=pmnist (den_pmnist), 2 jobs at a time,
# one thread each. Every run's results.json and .hydra/overrides.yaml are copied here, then
# experiments/pmnist/choose_cheapest.py applies the choice rule (validation accuracy only) and writes choice.md.
#   bash experiments/pmnist/budgets/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export DEN_DATA_ROOT="${DEN_DATA_ROOT:-../shared/data}"
PY=.venv/bin/python
SWEEP=${SWEEP:-outputs/pmnist_budgets}
N_JOBS=${N_JOBS:-2}
HERE=experiments/pmnist/budgets
sweep() {
  $PY -m den.train -m +experiment=pmnist stream.num_tasks=3 threads=1 logger=none \
    trainer.progress=false resume=auto seed=0,1 "$@" \
    hydra/launcher=joblib hydra.launcher.n_jobs="$N_JOBS" hydra.sweep.dir="$SWEEP" \
    hydra.sweep.subdir='sel${strategy.selective_iters}-exp${strategy.expansion_iters}-split${strategy.split_iters}-s${seed}'
}
# stage 1: selective retraining x expansion
sweep strategy.selective_iters=1000,2000,null strategy.expansion_iters=1000,2000,null
# stage 2: split training, at stage 1's choice (selective 1000, full expansion budget)
sweep strategy.selective_iters=1000 strategy.split_iters=500,1000
bash experiments/collect_runs.sh "$SWEEP" "$HERE/runs"
$PY experiments/pmnist/choose_cheapest.py "$HERE/runs" --prefer steps \
  --keys selective_iters expansion_iters split_iters --out "$HERE/choice.md"
