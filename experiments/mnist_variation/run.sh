#!/usr/bin/env bash
# MNIST-Variation, 10 one-vs-rest tasks: DEN (den_mlp) and the paper's baselines (STL, DNN =
# finetune, DNN-L2 = l2, EWC, progressive networks = pnn) plus PackNet, seeds 0, 1, 2 (21 runs,
# two at a time, one torch thread each), then the table in AUROC. Offline: export
# DEN_DATA_ROOT=<folder with MNIST and the CIFAR-10 JPEG copy>. resume=auto: rerunning after an
# interruption continues every unfinished run.
#   bash experiments/mnist_variation/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
HERE=experiments/mnist_variation
SWEEP=${SWEEP:-outputs/experiments/mnist_variation/sweep}
OUT=outputs/experiments/mnist_variation
$PYTHON -m den.train -m +experiment=mnist_variation \
  strategy=den_mlp,stl,finetune,l2,ewc,pnn,packnet seed=0,1,2 \
  threads=1 logger=none trainer.progress=false resume=auto hydra/launcher=joblib \
  hydra.launcher.n_jobs="${N_JOBS:-2}" hydra.sweep.dir="$SWEEP" \
  'hydra.sweep.subdir=${hydra.job.override_dirname}'
# keep what the table needs: each run's results.json and composed config
rm -rf "$HERE/runs"
for run in "$SWEEP"/*/; do
  [ -f "$run/results.json" ] || continue
  dest="$HERE/runs/$(basename "$run")"
  mkdir -p "$dest/.hydra"
  cp "$run/results.json" "$dest/"
  cp "$run/.hydra/config.yaml" "$run/.hydra/overrides.yaml" "$dest/.hydra/"
done
$PYTHON -m den.compare "$HERE/runs" --metric auroc --out "$OUT"
cp "$OUT/report.md" "$HERE/report.md"
