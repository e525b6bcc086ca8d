#!/usr/bin/env bash
# Follow-up of run.sh and run_gl.sh: the weaker fully connected L1 (0.05 and 0.03, both with
# group lasso 1) with cheaper conv growth: 1 new filter per conv expansion (k_conv 1, against
# 2) and at most 1 copy per conv layer per task (max_split_conv 1, against 2; the fully
# connected layers keep max_split_per_layer 2). Both CIFAR-10 streams, STL on both in the same
# sweep (one commit, two lanes, one thread per job). Why: experiments/bench/growth.py found
# that new conv-2 filters own 72-77 % of the stored growth of den_cifar_sparse (each adds 64
# columns to every fc-1 unit), and every weaker-L1 setting so far broke the budgets by a few
# hundredths (choice_gl.md). The choice: run.sh's rule, unchanged, over every setting.
#   bash experiments/cifar10/l1_choice/run_conv.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
SWEEP=outputs/cifar10/l1_choice_conv
RECORDS=experiments/cifar10/l1_choice/runs_conv
source experiments/cifar10/l1_choice/lanes.sh

# unsplit_drift keep, sigma_conv 0.02: what den_cifar_sparse did when these runs were made
# (before ../unsplit_drift chose restore with sigma_conv 0.01)
CONV=(strategy=den_cifar_sparse strategy.gl=1 strategy.k_conv=1 strategy.max_split_conv=1
  strategy.unsplit_drift=keep strategy.sigma_conv=0.02)
(run cifar10_binary-l1-0.05-gl-1-conv-1 cifar10_binary "${CONV[@]}" strategy.l1=0.05
  run split_cifar10-l1-0.05-gl-1-conv-1 split_cifar10 "${CONV[@]}" strategy.l1=0.05
  run split_cifar10-stl split_cifar10 strategy=stl) &
(run cifar10_binary-l1-0.03-gl-1-conv-1 cifar10_binary "${CONV[@]}" strategy.l1=0.03
  run split_cifar10-l1-0.03-gl-1-conv-1 split_cifar10 "${CONV[@]}" strategy.l1=0.03
  run cifar10_binary-stl cifar10_binary strategy=stl) &
wait
S=experiments/cifar10/sparse_choice
R=$HERE/runs
G=$HERE/runs_gl
C=$RECORDS
$PY $HERE/choose.py --setting 0.1 $S/runs/lam-1 $S/cifar10_binary/lam-1 \
  --setting 0.05 $R/split_cifar10-l1-0.05 $R/cifar10_binary-l1-0.05 \
  --setting 0.03 $R/split_cifar10-l1-0.03 $R/cifar10_binary-l1-0.03 \
  --setting "0.05, gl 1" $G/split_cifar10-l1-0.05-gl-1 $G/cifar10_binary-l1-0.05-gl-1 \
  --setting "0.05, gl 1, conv 1" $C/split_cifar10-l1-0.05-gl-1-conv-1 \
  $C/cifar10_binary-l1-0.05-gl-1-conv-1 \
  --setting "0.03, gl 1, conv 1" $C/split_cifar10-l1-0.03-gl-1-conv-1 \
  $C/cifar10_binary-l1-0.03-gl-1-conv-1 \
  --reference 0.1 --out $HERE/choice_conv.md
for setting in l1-0.05-gl-1-conv-1 l1-0.03-gl-1-conv-1; do
  for stream in split_cifar10 cifar10_binary; do
    $PY experiments/bench/full_run.py --no-twins "$C/$stream-$setting" "$C/$stream-stl" \
      --out "$HERE/full_run_${stream}_$setting.md"
  done
done
