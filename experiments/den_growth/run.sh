#!/usr/bin/env bash
# Capacity that follows the task, on both MLP streams. MNIST-Variation: den_mlp with up to 4
# expansion rounds, a round kept only while it lowers the task's validation loss by 5 %
# (seed 0, one torch thread); permuted MNIST: den_pmnist_accurate, which grows that way, from
# the pmnist_stl_level study (seeds 0-2; run that study first). Then den.compare, beside each
# stream's single-expansion DEN (den_pmnist and den_mlp, seed 0): per task, the rounds and
# units each expansion kept and the validation loss before and after growing. Offline: export
# DEN_DATA_ROOT=<folder with MNIST and the CIFAR-10 JPEG copy>.
#   bash experiments/den_growth/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
HERE=experiments/den_growth
RUN=${RUN:-outputs/experiments/den_growth/sweep/mnist_variation}
OUT=outputs/experiments/den_growth
if ! grep -qs '"status": "complete"' "$RUN/results.json"; then
  mkdir -p "$(dirname "$RUN")"
  $PYTHON -m den.train +experiment=mnist_variation strategy.expansion_rounds=4 \
    strategy.expansion_min_drop=0.05 seed=0 threads=1 logger=none trainer.progress=false \
    resume=auto hydra.run.dir="$RUN" > "$RUN.log" 2>&1
fi
rm -rf "$HERE/runs"
mkdir -p "$HERE/runs/mnist_variation/.hydra"
cp "$RUN/results.json" "$HERE/runs/mnist_variation/"
cp "$RUN/.hydra/config.yaml" "$RUN/.hydra/overrides.yaml" "$HERE/runs/mnist_variation/.hydra/"
$PYTHON -m den.compare "$HERE/runs" experiments/pmnist_stl_level/runs/candidates/rounds_l1_0.04 \
  experiments/pmnist_stl_level/runs/seeds/rounds_l1_0.04_seed{1,2} \
  experiments/pmnist_baselines/runs/logger=none,seed=0,strategy=den_pmnist \
  "experiments/mnist_variation/runs/++seed=0,++trainer.progress=False,logger=none,strategy=den_mlp" \
  --out "$OUT"
cp "$OUT/report.md" "$HERE/report.md"
