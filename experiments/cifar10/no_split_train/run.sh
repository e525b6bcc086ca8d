#!/usr/bin/env bash
# den_cifar_sparse without the split-training phase (strategy.split_train=false), issue 17:
# since unsplit_drift restore, every conv filter that split training moves past sigma_conv
# (47-60 conv-2 filters per task) goes back to W^{t-1} anyway, so the phase may buy little for
# its 500 steps per task (a quarter of DEN's steps). Drift is then measured right after
# selective retraining, as the authors' code does. Both CIFAR-10 streams, STL on both in the
# same sweep (one commit, two lanes, one torch thread per job). The reference is today's
# den_cifar_sparse as committed in ../default_vs_stl/runs_avx512 (same code path, same CPU);
# the rule (choose.py --prefer steps, validation only): a setting qualifies when on both
# streams its capacities, projected to 10 tasks, stay within 1.0 non-zero and 2.0 stored
# networks and its validation metric is at most 0.001 below the reference's; the one with
# the fewest training steps is chosen. Then the phase-by-phase accountings against STL.
#   bash experiments/cifar10/no_split_train/run.sh   # about 30 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/../../.."
SWEEP=outputs/cifar10/no_split_train
RECORDS=experiments/cifar10/no_split_train/runs
source experiments/cifar10/l1_choice/lanes.sh
OUT=experiments/cifar10/no_split_train
N=(strategy.split_train=false)

# the longest job alone in one lane, the other three in the other
(run cifar10_binary-den cifar10_binary "${N[@]}") &
(run split_cifar10-den split_cifar10 "${N[@]}"
  run split_cifar10-stl split_cifar10 strategy=stl
  run cifar10_binary-stl cifar10_binary strategy=stl) &
wait
REF=experiments/cifar10/default_vs_stl/runs_avx512
$PY $HERE/choose.py --setting split_train $REF/split_cifar10-den $REF/cifar10_binary-den \
  --setting no_split_train $RECORDS/split_cifar10-den $RECORDS/cifar10_binary-den \
  --reference split_train --prefer steps --tolerance 0.001 --out $OUT/choice.md
for stream in split_cifar10 cifar10_binary; do
  $PY experiments/bench/full_run.py --no-twins "$RECORDS/$stream-den" "$RECORDS/$stream-stl" \
    --out "$OUT/full_run_$stream.md"
done
