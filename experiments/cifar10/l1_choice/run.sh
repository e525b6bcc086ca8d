#!/usr/bin/env bash
# den_cifar_sparse's fully connected L1 (l1 0.1, inherited from the permuted-MNIST sparse DEN,
# never chosen for LeNet) against a weaker one, l1 0.05 and 0.03, on both CIFAR-10 streams,
# with STL on both in the same sweep: one commit, one torch thread per job, two lanes of jobs
# side by side on the 2-core machine (issue 17's protocol). Every run's record is collected
# as soon as it ends. Why: at l1 0.1 split CIFAR-10 used 0.45 non-zero networks of its 1.0
# budget and cifar10_binary learned each task only at STL's AUROC, where the dense
# den_cifar_lite learned 1.6 points above it (experiments/cifar10/README.md).
#   bash experiments/cifar10/l1_choice/run.sh
# The l1 0.1 rows are the committed lam-1 runs of ../sparse_choice (same settings; these
# runs are deterministic: ../sparse_vs_stl reproduced their accuracies to the last digit).
#
# The rule, fixed before the runs: a setting qualifies when on both streams its non-zero
# capacity projected to 10 tasks stays within 1.0 and its stored capacity within 2.0 base
# networks (select_on_validation.py's budgets); among those, the one with the largest sum of
# validation gains over l1 0.1 (split CIFAR-10 validation average accuracy + cifar10_binary
# validation average AUROC). Test metrics are read only after the choice.
set -euo pipefail
cd "$(dirname "$0")/../../.."
SWEEP=outputs/cifar10/l1_choice
RECORDS=experiments/cifar10/l1_choice/runs
source experiments/cifar10/l1_choice/lanes.sh
source experiments/cifar10/den_cifar_sparse_before.sh

# the longest jobs first, so the lanes end close together
(run cifar10_binary-l1-0.05 cifar10_binary "${SPARSE_BEFORE[@]}" strategy.l1=0.05
  run split_cifar10-l1-0.05 split_cifar10 "${SPARSE_BEFORE[@]}" strategy.l1=0.05
  run split_cifar10-stl split_cifar10 strategy=stl) &
(run cifar10_binary-l1-0.03 cifar10_binary "${SPARSE_BEFORE[@]}" strategy.l1=0.03
  run split_cifar10-l1-0.03 split_cifar10 "${SPARSE_BEFORE[@]}" strategy.l1=0.03
  run cifar10_binary-stl cifar10_binary strategy=stl) &
wait
# the choice (validation only), then the accountings of l1 0.05 against STL
S=experiments/cifar10/sparse_choice
R=$HERE/runs
$PY $HERE/choose.py --setting 0.1 $S/runs/lam-1 $S/cifar10_binary/lam-1 \
  --setting 0.05 $R/split_cifar10-l1-0.05 $R/cifar10_binary-l1-0.05 \
  --setting 0.03 $R/split_cifar10-l1-0.03 $R/cifar10_binary-l1-0.03 \
  --reference 0.1 --out $HERE/choice.md
for stream in split_cifar10 cifar10_binary; do
  $PY experiments/bench/full_run.py --no-twins "$R/$stream-l1-0.05" "$R/$stream-stl" \
    --out "$HERE/full_run_${stream}_l1-0.05.md"
done
