#!/usr/bin/env bash
# Variants of den_cifar_sparse on split CIFAR-10 (seed 0), against the forgetting the
# default (l1_conv 0, lam 0.5, at most 2 copies per layer) showed in
# experiments/cifar10/sparse_dense_conv: a stronger pull to the old weights, or no split cap.
# One job at a time, one torch thread (the machine's other core runs another job).
# Chosen on validation accuracy (val_final) by choose.py; records in runs/.
#   bash experiments/cifar10/sparse_choice/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=.venv/bin/python
DATA=${CIFAR10_JPEG:-../shared/data/cifar10-jpeg}
SWEEP=outputs/cifar10/sparse_choice
for variant in "strategy.lam=2" "strategy.max_split_per_layer=null"; do
  name=${variant#strategy.}
  # shellcheck disable=SC2086  # one override per variant
  $PY -m den.train +experiment=split_cifar10 strategy=den_cifar_sparse $variant \
    stream.source=imagefolder stream.root="$DATA" threads=1 logger=none resume=auto \
    hydra.run.dir="$SWEEP/${name//=/-}"
done
bash experiments/collect_runs.sh $SWEEP experiments/cifar10/sparse_choice/runs
