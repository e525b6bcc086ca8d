#!/usr/bin/env bash
# Permuted MNIST, 10 tasks: DEN (den_pmnist) and ten baselines, seeds 0, 1, 2 (33 runs, two at
# a time, one torch thread each), then the table. Offline: export DEN_DATA_ROOT=<data folder>.
# resume=auto: rerunning after an interruption continues every unfinished run.
#   bash experiments/pmnist_baselines/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
HERE=experiments/pmnist_baselines
SWEEP=${SWEEP:-outputs/experiments/pmnist_baselines/sweep}
OUT=outputs/experiments/pmnist_baselines
$PYTHON -m den.train -m +experiment=pmnist \
  strategy=den_pmnist,pnn,ewc,si,packnet,lwf,l2,joint,er,stl,finetune seed=0,1,2 \
  threads=1 logger=none resume=auto hydra/launcher=joblib hydra.launcher.n_jobs="${N_JOBS:-2}" \
  hydra.sweep.dir="$SWEEP" 'hydra.sweep.subdir=${hydra.job.override_dirname}'
# keep what the table needs: each run's results.json and composed config
rm -rf "$HERE/runs"
for run in "$SWEEP"/*/; do
  [ -f "$run/results.json" ] || continue
  dest="$HERE/runs/$(basename "$run")"
  mkdir -p "$dest/.hydra"
  cp "$run/results.json" "$dest/"
  cp "$run/.hydra/config.yaml" "$run/.hydra/overrides.yaml" "$dest/.hydra/"
done
$PYTHON -m den.compare "$HERE/runs" --out "$OUT"
cp "$OUT/report.md" "$HERE/report.md"
