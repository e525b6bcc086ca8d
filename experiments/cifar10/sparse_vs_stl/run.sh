#!/usr/bin/env bash
# den_cifar_sparse as chosen (l1_conv 0, lam 1) against STL on both CIFAR-10 streams: one
# sweep from one commit, two jobs at a time (joblib), one torch thread each (issue 17's
# protocol), then the phase-by-phase accountings against STL.
#   bash experiments/cifar10/sparse_vs_stl/run.sh
# den_cifar_sparse changed at 8c13886 (l1 0.03, gl 1, k_conv 1, max_split_conv 1: the choice of
# ../l1_choice/run_conv.sh); run at the commit the README names, it reproduces the records.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=.venv/bin/python
DATA=${CIFAR10_JPEG:-../shared/data/cifar10-jpeg}
SWEEP=outputs/cifar10/sparse_vs_stl
HERE=experiments/cifar10/sparse_vs_stl
# the longest job first, so the two workers finish together
$PY -m den.train -m +experiment=cifar10_binary,split_cifar10 strategy=den_cifar_sparse,stl \
  stream.source=imagefolder stream.root="$DATA" threads=1 logger=none trainer.progress=false \
  resume=auto hydra/launcher=joblib hydra.launcher.n_jobs=2 \
  hydra.sweep.dir=$SWEEP 'hydra.sweep.subdir=${experiment}-${strategy.name}'
bash experiments/collect_runs.sh $SWEEP $HERE/runs
for stream in split_cifar10 cifar10_binary; do
  $PY experiments/bench/full_run.py --no-twins "$HERE/runs/$stream-den" "$HERE/runs/$stream-stl" \
    --out "$HERE/full_run_$stream.md"
done
