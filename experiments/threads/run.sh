#!/usr/bin/env bash
# python -m den.bench mode=threads: the short DEN run on permuted MNIST (3 tasks of 5,000
# examples, 400 steps per phase) under every thread variant (today = PyTorch's count with
# libgomp's own wait; 1; 2; auto, den's default), alone and beside 1 and 2 busy single-thread
# processes the benchmark starts, then a 4-job sweep of the same run one job after another
# and with hydra/launcher=joblib; 3 rounds, medians; the record is copied here.
# Needs MNIST (DEN_DATA_ROOT) and a machine with nothing else running (about 40 minutes on
# 2 cores).
#   bash experiments/threads/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
OUT=outputs/experiments/threads
rm -rf "$OUT"  # the runs of an earlier benchmark would be refused as finished runs
$PYTHON -m den.bench mode=threads load.repeats=3 hydra.run.dir="$OUT"
cp "$OUT/threads.md" "$OUT/threads.json" experiments/threads/
