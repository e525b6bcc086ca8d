#!/usr/bin/env bash
# The CIFAR experiments' DEN as a user runs it (+experiment=split_cifar10 / cifar10_binary with
# no strategy override: den_cifar_sparse, chosen by ../l1_choice/run_conv.sh) against STL on
# both streams: one sweep from one commit, two lanes of jobs side by side, one torch thread
# each (issue 17's protocol), every record copied as its run ends; then the phase-by-phase
# accountings against STL. A repeat of run_conv.sh's chosen runs, for their wall times.
#   bash experiments/cifar10/default_vs_stl/run.sh [NAME]   # about 47 min on 2 cores
# NAME (default runs) names the records folder and the accountings' suffix. runs/ ran at
# 7704d30, when den_cifar_sparse left the units a split cap left past sigma drifted
# (unsplit_drift keep, sigma_conv 0.02); rerun at that commit to reproduce it.
# runs_restore/ is today's default (restore with sigma_conv 0.01, ../unsplit_drift).
set -euo pipefail
cd "$(dirname "$0")/../../.."
NAME=${1:-runs}
SWEEP=outputs/cifar10/default_vs_stl/$NAME
RECORDS=experiments/cifar10/default_vs_stl/$NAME
source experiments/cifar10/l1_choice/lanes.sh

# the longest job alone in one lane, the other three in the other
(run cifar10_binary-den cifar10_binary) &
(run split_cifar10-den split_cifar10
  run split_cifar10-stl split_cifar10 strategy=stl
  run cifar10_binary-stl cifar10_binary strategy=stl) &
wait
for stream in split_cifar10 cifar10_binary; do
  $PY experiments/bench/full_run.py --no-twins "$RECORDS/$stream-den" "$RECORDS/$stream-stl" \
    --out "experiments/cifar10/default_vs_stl/full_run_$stream${NAME#runs}.md"
done
