#!/usr/bin/env bash
# Regenerate experiments/cifar10/: DEN, STL and fine-tuning on the CIFAR-10 JPEG copy
# (../shared/data/cifar10-jpeg, read as an image folder), LeNet, each experiment's defaults:
#   bash experiments/cifar10/run.sh                  both experiments
#   bash experiments/cifar10/run.sh split_cifar10    5 tasks of 2 classes
#   bash experiments/cifar10/run.sh cifar10_binary   10 one-vs-rest tasks (the DEN paper's
#                                                    arXiv v1 protocol, AUROC)
# Two jobs at a time (joblib), one torch thread each (N_JOBS and THREADS change that:
# THREADS=2 N_JOBS=1 runs one job at a time on two threads); resume=auto continues an
# interrupted sweep. Set EXTRA to pass overrides to every job (e.g. EXTRA="seed=1").
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
DATA=${CIFAR10_JPEG:-../shared/data/cifar10-jpeg}
N_JOBS=${N_JOBS:-2}
THREADS=${THREADS:-1}
experiments=("$@")
[ ${#experiments[@]} -eq 0 ] && experiments=(split_cifar10 cifar10_binary)
for experiment in "${experiments[@]}"; do
  # DEN as each experiment configures it (conf/experiment/<experiment>.yaml)
  den=den_cifar metric=acc
  [ "$experiment" = cifar10_binary ] && den=den_cifar_lite metric=auroc  # the paper reports AUROC
  # shellcheck disable=SC2086  # EXTRA holds several overrides
  $PY -m den.train -m +experiment=$experiment strategy=$den,stl,finetune \
    stream.source=imagefolder stream.root=$DATA threads=$THREADS logger=none resume=auto ${EXTRA:-} \
    hydra/launcher=joblib hydra.launcher.n_jobs=$N_JOBS \
    hydra.sweep.dir=outputs/cifar10/$experiment 'hydra.sweep.subdir=${hydra.job.override_dirname}'
  # keep each job's results.json beside the report, so den.compare regenerates it from the repo
  for job in outputs/cifar10/"$experiment"/*/; do
    [ -f "$job/results.json" ] || continue
    method=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["method"])' "$job/results.json")
    mkdir -p "experiments/cifar10/$experiment/runs/$method"
    cp "$job/results.json" "experiments/cifar10/$experiment/runs/$method/"
  done
  $PY -m den.compare experiments/cifar10/$experiment --metric $metric
done
