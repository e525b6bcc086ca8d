#!/usr/bin/env bash
# den_pmnist's expansion per layer, chosen on validation data (README.md here):
# strategy.k_layers in {null (= k 40 in both layers, den_pmnist), [30,0], [40,0], [50,0]}: new
# units in the first layer only, where a new permutation needs them (experiments/pmnist/ceiling).
# Seeds 0 and 1, the first 3 tasks of +experiment=pmnist, 2 jobs at a time, one thread each.
# Every run's results.json and .hydra/ are copied to runs/, then choose_cheapest.py applies
# the rule (validation accuracy only): the setting that stores least, projected to 10 tasks,
# within 0.001 of den_pmnist's validation accuracy and within the capacity budgets.
#   bash experiments/pmnist/k_layers/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export DEN_DATA_ROOT="${DEN_DATA_ROOT:-../shared/data}"
PY=.venv/bin/python
SWEEP=${SWEEP:-outputs/pmnist_k_layers}
HERE=experiments/pmnist/k_layers
$PY -m den.train -m +experiment=pmnist stream.num_tasks=3 threads=1 logger=none \
  trainer.progress=false resume=auto seed=0,1 'strategy.k_layers=null,[30,0],[40,0],[50,0]' \
  hydra/launcher=joblib hydra.launcher.n_jobs="${N_JOBS:-2}" hydra.sweep.dir="$SWEEP" \
  'hydra.sweep.subdir=${hydra.job.override_dirname}'
bash experiments/collect_runs.sh "$SWEEP" "$HERE/runs"
$PY experiments/pmnist/choose_cheapest.py "$HERE/runs" --prefer stored --keys k_layers \
  --out "$HERE/choice.md"
