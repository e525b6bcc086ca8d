#!/usr/bin/env bash
# The accuracy/capacity search behind den_pmnist: hparams_search=den_pareto over l1, k, gl and
# lam of den_sparse on the first 3 permuted-MNIST tasks (full training sets and phase budget),
# TRIALS trials two at a time with one torch thread each; then the choice on validation
# (den.choose) and the front with the chosen trial's test figures (den.pareto).
# Rerunning continues the same study (the optuna journal in the sweep folder).
#   bash experiments/pmnist_pareto/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
HERE=experiments/pmnist_pareto
SWEEP=${SWEEP:-outputs/experiments/pmnist_pareto/sweep}
OUT=outputs/experiments/pmnist_pareto
$PYTHON -m den.train -m +experiment=pmnist strategy=den_sparse hparams_search=den_pareto \
  stream.num_tasks=3 threads=1 logger=none trainer.progress=false \
  hydra/launcher=joblib hydra.launcher.n_jobs="${N_JOBS:-2}" \
  hydra.sweeper.n_trials="${TRIALS:-20}" hydra.sweep.dir="$SWEEP"
# keep what the tables need: the journal and each trial's results.json and overrides
rm -rf "$HERE/sweep"
mkdir -p "$HERE/sweep"
cp "$SWEEP/optuna.journal" "$HERE/sweep/"
for trial in "$SWEEP"/trial_*/; do
  [ -f "$trial/results.json" ] || continue
  dest="$HERE/sweep/$(basename "$trial")"
  mkdir -p "$dest/.hydra"
  cp "$trial/results.json" "$dest/"
  cp "$trial/.hydra/overrides.yaml" "$dest/.hydra/"
done
$PYTHON -m den.choose "$HERE/sweep" --budget-nonzero 1.0 --budget-stored 2.0 --project-to 10 \
  --out "$OUT/choice.md"
# the chosen trial's number, from its folder (trial_<number>_<hash>) in the chosen row
chosen=$(grep -m1 '(chosen)' "$OUT/choice.md" | grep -o 'trial_[0-9]*' | head -1)
$PYTHON -m den.pareto "$HERE/sweep" --choose "$((10#${chosen#trial_}))" --budget-nonzero 1.0 \
  --budget-stored 2.0 --project-to 10 --out "$OUT"
cp "$OUT/choice.md" "$OUT/pareto.md" "$OUT/pareto_front.png" "$HERE/"
