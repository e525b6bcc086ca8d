#!/usr/bin/env bash
# The accuracy/capacity front that chose +experiment=pmnist's DEN settings
# (experiments/pmnist/pareto/README.md): hparams_search=den_pareto on the first 3 tasks of
# the permuted-MNIST stream (full training sets and phase budget), from strategy=den_sparse
# (the code's sigma, no split cap), TRIALS trials, N_JOBS at a time (joblib), one thread
# each. Rerunning continues the same study (optuna journal in the sweep folder). Then every
# trial's results.json and .hydra/overrides.yaml, the journal and multirun.yaml are copied
# here and the front report is built from the copy:
#   bash experiments/pmnist/pareto/run.sh              # 20 trials, 2 at a time
#   TRIALS=8 bash experiments/pmnist/pareto/run.sh     # 8 more trials in the same study
set -euo pipefail
cd "$(dirname "$0")/../../.."
export DEN_DATA_ROOT="${DEN_DATA_ROOT:-../shared/data}"
PY=.venv/bin/python
SWEEP=${SWEEP:-outputs/pmnist_pareto}
N_JOBS=${N_JOBS:-2}
TRIALS=${TRIALS:-20}
HERE=experiments/pmnist/pareto
$PY -m den.train -m +experiment=pmnist strategy=den_sparse hparams_search=den_pareto \
  stream.num_tasks=3 threads=1 logger=none trainer.progress=false \
  hydra/launcher=joblib hydra.launcher.n_jobs="$N_JOBS" hydra.sweeper.n_trials="$TRIALS" \
  hydra.sweep.dir="$SWEEP"
rm -rf "$HERE"/trial_*
cp "$SWEEP/optuna.journal" "$SWEEP/multirun.yaml" "$HERE/"
for trial in "$SWEEP"/trial_*/; do
  [ -f "$trial/results.json" ] || continue
  dest="$HERE/$(basename "$trial")"
  mkdir -p "$dest/.hydra"
  cp "$trial/results.json" "$dest/" && cp "$trial/.hydra/overrides.yaml" "$dest/.hydra/"
done
$PY -m den.pareto "$HERE"   # the front; the committed report adds the chosen trial: --choose
# the choice: the most accurate trial within the projected capacity budgets (search.md, chosen.json)
$PY experiments/pmnist/select_on_validation.py "$HERE" \
  --keys strategy.l1 strategy.k strategy.gl strategy.lam --out "$HERE"
