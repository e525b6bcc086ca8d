#!/usr/bin/env bash
# How wide DEN's selection is on permuted MNIST, and what it is worth (README.md here):
# strategy.head_l1 (the sparse head fit's own L1) in {l1 (null), 0.3, 1, 3, 10}, seeds 0 and 1,
# on the first 3 tasks of +experiment=pmnist (den_pmnist), 2 jobs at a time, one thread each.
# Records are copied to runs/; experiments/pmnist/choose_cheapest.py applies the rule (validation only).
#   bash experiments/pmnist/selection/run.sh [NAME]
# NAME (default runs) names the records folder, and choice_NAME.md / chosen_NAME.json for a
# name other than runs. runs/ ran before den_pmnist had k_layers [40, 0] (it added 40 units to
# both layers); runs_k_layers/ is the same grid on today's den_pmnist.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export DEN_DATA_ROOT="${DEN_DATA_ROOT:-../shared/data}"
PY=.venv/bin/python
NAME=${1:-runs}
SWEEP=${SWEEP:-outputs/pmnist_selection/$NAME}
HERE=experiments/pmnist/selection
SUFFIX=${NAME#runs}
$PY -m den.train -m +experiment=pmnist stream.num_tasks=3 threads=1 logger=none \
  trainer.progress=false resume=auto seed=0,1 strategy.head_l1=null,0.3,1.0,3.0,10.0 \
  hydra/launcher=joblib hydra.launcher.n_jobs="${N_JOBS:-2}" hydra.sweep.dir="$SWEEP" \
  'hydra.sweep.subdir=hl${strategy.head_l1}-s${seed}'
bash experiments/collect_runs.sh "$SWEEP" "$HERE/$NAME"
$PY experiments/pmnist/choose_cheapest.py "$HERE/$NAME" --prefer selection --keys head_l1 \
  --out "$HERE/choice$SUFFIX.md"
