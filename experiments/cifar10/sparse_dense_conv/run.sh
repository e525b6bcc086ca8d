#!/usr/bin/env bash
# The sparse DEN with dense conv filters (strategy=den_cifar_sparse, l1_conv 0) on both CIFAR-10
# streams, with STL beside it from the same commit: one sweep, two jobs at a time (joblib), one
# torch thread each. Records go to experiments/cifar10/sparse_dense_conv/runs/.
#   bash experiments/cifar10/sparse_dense_conv/run.sh
# den_cifar_sparse changed at 8c13886 (l1 0.03, gl 1, k_conv 1, max_split_conv 1: the choice of
# ../l1_choice/run_conv.sh); run at the commit the README names, it reproduces the records.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=.venv/bin/python
DATA=${CIFAR10_JPEG:-../shared/data/cifar10-jpeg}
SWEEP=outputs/cifar10/sparse_dense_conv
$PY -m den.train -m +experiment=split_cifar10,cifar10_binary strategy=den_cifar_sparse,stl \
  stream.source=imagefolder stream.root="$DATA" threads=1 logger=none resume=auto \
  hydra/launcher=joblib hydra.launcher.n_jobs=2 \
  hydra.sweep.dir=$SWEEP 'hydra.sweep.subdir=${experiment}_${hydra.job.override_dirname}'
bash experiments/collect_runs.sh $SWEEP experiments/cifar10/sparse_dense_conv/runs
