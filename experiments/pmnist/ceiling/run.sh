#!/usr/bin/env bash
# How accurate can a new permutation get for the stored parameters DEN may add to learn it?
# (README.md here.) DEN with everything that saves capacity switched off: no L1 (dense new
# units), no group lasso (every new unit kept), an empty selection (head_l1 10 zeroes the sparse
# head fit), so each new task is learned by its expansion, then split training. Old units stay
# within sigma, as in every DEN run; new units are added to the first layer only
# (strategy.k_layers=[k,0]), where a new permutation needs them.
#   budget: 10 tasks, k 33 per task = the most first-layer units within stored capacity 2.0;
#           seeds 0, 1, 2
#   drift:  the budget's setting, seed 0, with no sigma bound (sigma 1000: nothing splits, and
#           old units keep what split training moved them by) under a weaker pull, lam 0.1
#           and 0.02: what trading forgetting (issue 16 allows BWT -0.005) buys
#   curve:  2 tasks, k in {33, 60, 100, 150, 250}, seed 0: task 2's accuracy against the
#           stored parameters it added
# 2 jobs at a time, one thread each; every run's results.json and .hydra/ are copied to runs/,
# then summarize.py writes results.md and ceiling.png.
#   bash experiments/pmnist/ceiling/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export DEN_DATA_ROOT="${DEN_DATA_ROOT:-../shared/data}"
PY=.venv/bin/python
SWEEP=${SWEEP:-outputs/pmnist_ceiling}
N_JOBS=${N_JOBS:-2}
HERE=experiments/pmnist/ceiling
DENSE=(strategy=den strategy.l1=0 strategy.gl=0 strategy.head_l1=10)
sweep() {  # name, then overrides
  local name=$1
  shift
  $PY -m den.train -m +experiment=pmnist threads=1 logger=none trainer.progress=false \
    resume=auto "${DENSE[@]}" "$@" \
    hydra/launcher=joblib hydra.launcher.n_jobs="$N_JOBS" hydra.sweep.dir="$SWEEP" \
    hydra.sweep.subdir="$name"'-s${seed}'
}
sweep budget-k33 'strategy.k_layers=[33,0]' seed=0,1,2
for lam in 0.1 0.02; do
  sweep "drift-k33-lam$lam" 'strategy.k_layers=[33,0]' strategy.sigma=1000 "strategy.lam=$lam" seed=0
done
for k in 33 60 100 150 250; do
  sweep "curve-k$k" "strategy.k_layers=[$k,0]" stream.num_tasks=2 seed=0
done
bash experiments/collect_runs.sh "$SWEEP" "$HERE/runs"
$PY "$HERE/summarize.py" "$HERE/runs" --out "$HERE"
