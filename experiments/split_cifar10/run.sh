#!/usr/bin/env bash
# split_cifar10: DEN (the experiment's den_cifar_sparse) and STL, seed 0, side by side
# with one torch thread each, then the table. CIFAR-10 from torchvision (downloaded when online), or
# CIFAR10_JPEG=<folder holding train/<class>/ and test/<class>/> for an image-folder copy.
#   bash experiments/split_cifar10/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
HERE=experiments/split_cifar10
SWEEP=${SWEEP:-outputs/experiments/split_cifar10/sweep}
OUT=outputs/experiments/split_cifar10
DATA=()
if [ -n "${CIFAR10_JPEG:-}" ]; then DATA=(stream.source=imagefolder "stream.root=$CIFAR10_JPEG"); fi
run() {  # run NAME OVERRIDES...: one run into $SWEEP/NAME, then its record copied to runs/NAME
  local name=$1
  shift
  $PYTHON -m den.train +experiment=split_cifar10 "$@" ${DATA[@]+"${DATA[@]}"} threads=1 logger=none \
    trainer.progress=false resume=auto hydra.run.dir="$SWEEP/$name"
  mkdir -p "$HERE/runs/$name/.hydra"
  cp "$SWEEP/$name/results.json" "$HERE/runs/$name/"
  cp "$SWEEP/$name/.hydra/config.yaml" "$SWEEP/$name/.hydra/overrides.yaml" "$HERE/runs/$name/.hydra/"
}
rm -rf "$HERE/runs"
run den &
den=$!
run stl strategy=stl &
stl=$!
wait "$den"
wait "$stl"
$PYTHON -m den.compare "$HERE/runs" --out "$OUT"
cp "$OUT/report.md" "$HERE/report.md"
