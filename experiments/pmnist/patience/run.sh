#!/usr/bin/env bash
# DEN's early-stopping patience for the phases after task 1 (strategy.patience), chosen on
# validation (README.md here): patience in {trainer.patience = 5 (null), 3, 2}, seeds 0 and 1,
# on the first 3 tasks of +experiment=pmnist (den_pmnist), one thread per job. Records are
# copied to runs/; experiments/pmnist/choose_cheapest.py applies the rule (validation only).
#   bash experiments/pmnist/patience/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export DEN_DATA_ROOT="${DEN_DATA_ROOT:-../shared/data}"
PY=.venv/bin/python
SWEEP=${SWEEP:-outputs/pmnist_patience}
HERE=experiments/pmnist/patience
$PY -m den.train -m +experiment=pmnist stream.num_tasks=3 threads=1 logger=none \
  trainer.progress=false resume=auto seed=0,1 strategy.patience=null,3,2 \
  hydra/launcher=joblib hydra.launcher.n_jobs="${N_JOBS:-2}" hydra.sweep.dir="$SWEEP" \
  'hydra.sweep.subdir=patience${strategy.patience}-s${seed}'
bash experiments/collect_runs.sh "$SWEEP" "$HERE/runs"
$PY experiments/pmnist/choose_cheapest.py "$HERE/runs" --prefer steps_taken --keys patience \
  --out "$HERE/choice.md"
