#!/usr/bin/env bash
# den_cifar_sparse's phase budgets (issue 17: DEN's cost), chosen on validation: selective
# retraining and split training (+ the retrain after a split) at the trainer's 500 steps or
# at 250, on the first 4 tasks of cifar10_binary (seed 0), two jobs at a time, one thread
# each. Chosen by experiments/pmnist/choose_cheapest.py (validation AUROC within 0.001 of
# the full budgets', projected capacities within 1.0 / 2.0 networks, fewest budgeted steps).
#   bash experiments/cifar10/budgets/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=.venv/bin/python
DATA=${CIFAR10_JPEG:-../shared/data/cifar10-jpeg}
SWEEP=outputs/cifar10/budgets
HERE=experiments/cifar10/budgets
source experiments/cifar10/den_cifar_sparse_before.sh
$PY -m den.train -m +experiment=cifar10_binary "${SPARSE_BEFORE[@]}" \
  stream.num_tasks=4 strategy.selective_iters=null,250 strategy.split_iters=null,250 \
  stream.source=imagefolder stream.root="$DATA" threads=1 logger=none trainer.progress=false \
  resume=auto hydra/launcher=joblib hydra.launcher.n_jobs=2 hydra.sweep.dir=$SWEEP \
  hydra.sweep.subdir='sel${strategy.selective_iters}-split${strategy.split_iters}'
bash experiments/collect_runs.sh $SWEEP $HERE/runs
$PY experiments/pmnist/choose_cheapest.py $HERE/runs --prefer steps --metric auroc \
  --keys selective_iters split_iters --tasks 10 --out $HERE/choice.md
