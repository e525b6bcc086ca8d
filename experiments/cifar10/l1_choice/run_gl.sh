#!/usr/bin/env bash
# Follow-up of run.sh: l1 0.05 with a stronger group lasso (gl 1 against 0.3), on both CIFAR-10
# streams, STL on both in the same sweep (one commit, two lanes, one thread per job). Why:
# l1 0.05 broke the capacity budgets mostly through units (cifar10_binary stored 2.07 against
# 1.78 at l1 0.1: the weaker L1 empties fewer new units, so fewer are deleted); the group
# lasso is the setting that deletes new units. The choice: run.sh's rule, unchanged, over
# every setting (choose.py with this run's pair added).
#   bash experiments/cifar10/l1_choice/run_gl.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
SWEEP=outputs/cifar10/l1_choice_gl
RECORDS=experiments/cifar10/l1_choice/runs_gl
source experiments/cifar10/l1_choice/lanes.sh
source experiments/cifar10/den_cifar_sparse_before.sh

GL=("${SPARSE_BEFORE[@]}" strategy.l1=0.05 strategy.gl=1)
(run cifar10_binary-l1-0.05-gl-1 cifar10_binary "${GL[@]}") &
(run split_cifar10-l1-0.05-gl-1 split_cifar10 "${GL[@]}"
  run split_cifar10-stl split_cifar10 strategy=stl
  run cifar10_binary-stl cifar10_binary strategy=stl) &
wait
S=experiments/cifar10/sparse_choice
R=$HERE/runs
G=$HERE/runs_gl
$PY $HERE/choose.py --setting 0.1 $S/runs/lam-1 $S/cifar10_binary/lam-1 \
  --setting 0.05 $R/split_cifar10-l1-0.05 $R/cifar10_binary-l1-0.05 \
  --setting 0.03 $R/split_cifar10-l1-0.03 $R/cifar10_binary-l1-0.03 \
  --setting "0.05, gl 1" $G/split_cifar10-l1-0.05-gl-1 $G/cifar10_binary-l1-0.05-gl-1 \
  --reference 0.1 --out $HERE/choice_gl.md
for stream in split_cifar10 cifar10_binary; do
  $PY experiments/bench/full_run.py --no-twins "$G/$stream-l1-0.05-gl-1" "$G/$stream-stl" \
    --out "$HERE/full_run_${stream}_l1-0.05-gl-1.md"
done
