#!/usr/bin/env bash
# DEN against STL on the whole permuted-MNIST stream (issue 17's measurement): one sweep from
# one commit, one thread per job, two jobs at a time: den_pmnist and STL, seeds 0-2.
# Records are copied to runs/, the report is built by den.compare, the phase accounting by
# full_run.py. (selective_budget/ holds an earlier sweep, README.md says which.)
#   bash experiments/bench/den_vs_stl/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export DEN_DATA_ROOT="${DEN_DATA_ROOT:-../shared/data}"
PY=.venv/bin/python
SWEEP=${SWEEP:-outputs/den_vs_stl_pmnist}
HERE=experiments/bench/den_vs_stl
common=(+experiment=pmnist threads=1 logger=none trainer.progress=false resume=auto
  hydra/launcher=joblib hydra.launcher.n_jobs=2 hydra.sweep.dir="$SWEEP")
$PY -m den.train -m "${common[@]}" strategy=den_pmnist,stl seed=0,1,2 \
  'hydra.sweep.subdir=${strategy.name}-s${seed}'
bash experiments/collect_runs.sh "$SWEEP" "$HERE/runs"
$PY -m den.compare "$HERE/runs" --out "$HERE/report"
$PY experiments/bench/full_run.py "$HERE/runs/den-s0" "$HERE/runs/stl-s0" --threads 1 \
  --out "$HERE/full_run_den_pmnist.md"
