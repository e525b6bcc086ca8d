#!/usr/bin/env bash
# Variants of den_cifar_sparse (as it was at 7bbf398: l1_conv 0, lam 0.5, at most 2 copies per
# layer, keep_zeros true) on split CIFAR-10 (seed 0), against the forgetting that setting
# showed in experiments/cifar10/sparse_dense_conv (its run is the "default" row of the
# choice): a stronger pull to the old weights (lam 1, 2), no split cap, pruned connections
# trainable again. One thread per job, two jobs at a time. Then the choice on validation, and
# the chosen setting on cifar10_binary.
#   bash experiments/cifar10/sparse_choice/run.sh
# The committed runs: lam 2 and no cap ran from this loop; lam 1, keep_zeros false and the
# binary run as separate invocations of the same commands two at a time (commit 7bbf398 for
# all; den/ and conf/ as at a543987 except den_cifar_sparse's lam, which each run sets).
# The accountings against STL (sparse_dense_conv's STL runs, same machine and threads):
#   python experiments/bench/full_run.py --no-twins $OUT/runs/lam-1 <STL run> \
#       --out $OUT/full_run_split_cifar10.md   (and cifar10_binary the same way)
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=.venv/bin/python
DATA=${CIFAR10_JPEG:-../shared/data/cifar10-jpeg}
SWEEP=outputs/cifar10/sparse_choice
OUT=experiments/cifar10/sparse_choice
source experiments/cifar10/den_cifar_sparse_before.sh
for variant in strategy.lam=2 strategy.max_split_per_layer=null strategy.lam=1 \
  strategy.keep_zeros=false; do
  name=${variant#strategy.}
  # The sweep's lam is pinned to the value the variants departed from (den_cifar_sparse now
  # sets the chosen lam 1).
  lam=strategy.lam=0.5
  [[ $variant == strategy.lam=* ]] && lam=$variant
  # shellcheck disable=SC2086  # one override per variant
  $PY -m den.train +experiment=split_cifar10 "${SPARSE_BEFORE[@]}" $lam \
    $variant stream.source=imagefolder stream.root="$DATA" threads=1 logger=none resume=auto \
    hydra.run.dir="$SWEEP/${name//=/-}"
done
# the starting point's run (lam 0.5, from experiments/cifar10/sparse_dense_conv)
rm -rf $SWEEP/default
cp -r "experiments/cifar10/sparse_dense_conv/runs/split_cifar10_logger=none,strategy=den_cifar_sparse,stream.source=imagefolder" $SWEEP/default
# the most accurate on validation within 1.0 non-zero / 2.0 stored networks projected to 10
# tasks (the rule of experiments/pmnist: the setting also serves the 10-task streams)
$PY experiments/pmnist/select_on_validation.py $SWEEP \
  --keys strategy.lam strategy.max_split_per_layer strategy.keep_zeros --tasks 10 --out $OUT
# the chosen setting (lam 1) on the 10-task one-vs-rest stream
$PY -m den.train +experiment=cifar10_binary "${SPARSE_BEFORE[@]}" \
  strategy.lam=1 stream.source=imagefolder stream.root="$DATA" threads=1 logger=none resume=auto \
  hydra.run.dir="${SWEEP}_binary/lam-1"
bash experiments/collect_runs.sh $SWEEP $OUT/runs
bash experiments/collect_runs.sh ${SWEEP}_binary $OUT/cifar10_binary
