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
# den_cifar_sparse as it was until 8c13886 (l1 0.1, gl 0.3, 2 new filters per conv expansion,
# the conv split cap that of the fully connected layers); today's file sets the choice of
# ../l1_choice/run_conv.sh, so the runs below pin the values they ran with.
BEFORE=(strategy.l1=0.1 strategy.gl=0.3 strategy.k_conv=2 strategy.max_split_conv=null)
$PY -m den.train -m +experiment=cifar10_binary strategy=den_cifar_sparse "${BEFORE[@]}" \
  stream.num_tasks=4 strategy.selective_iters=null,250 strategy.split_iters=null,250 \
  stream.source=imagefolder stream.root="$DATA" threads=1 logger=none trainer.progress=false \
  resume=auto hydra/launcher=joblib hydra.launcher.n_jobs=2 hydra.sweep.dir=$SWEEP \
  hydra.sweep.subdir='sel${strategy.selective_iters}-split${strategy.split_iters}'
bash experiments/collect_runs.sh $SWEEP $HERE/runs
$PY experiments/pmnist/choose_cheapest.py $HERE/runs --prefer steps --metric auroc \
  --keys selective_iters split_iters --tasks 10 --out $HERE/choice.md
