#!/usr/bin/env bash
# python -m den.bench: the framework's training loop (finetune, ewc, every DEN phase) and its
# evaluation against bare PyTorch loops doing the same tensor work, one torch thread,
# 300 steps per timing, 9 rounds after a warm-up round; the record is copied here.
#   bash experiments/bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
OUT=outputs/experiments/bench
$PYTHON -m den.bench threads=1 steps=300 repeats=9 hydra.run.dir="$OUT"
cp "$OUT/bench.md" "$OUT/bench.json" "$OUT/bench_extra.json" experiments/bench/
