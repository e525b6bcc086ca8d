#!/usr/bin/env bash
# Regenerate experiments/pmnist/baselines/: DEN and every baseline on permuted MNIST
# (10 tasks, MLP 784-312-128, real MNIST, the +experiment=pmnist budget), seeds 0, 1, 2, as
# one Hydra multirun, then the comparison report (mean ± std over seeds, plots).
#   bash experiments/pmnist/run_seeds.sh            # all 33 jobs, one after the other
#   bash experiments/pmnist/run_seeds.sh seed=0     # extra overrides replace the defaults
# threads=1 because the committed report ran two such sweeps side by side on a 2-core machine
# (each job is deterministic given its overrides, so splitting the sweep changes nothing).
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEN_DATA_ROOT="${DEN_DATA_ROOT:-../shared/data}"
PY=.venv/bin/python
SWEEP=${SWEEP:-outputs/pmnist_seeds}
$PY -m den.train -m +experiment=pmnist \
  strategy=den_pmnist,finetune,stl,joint,l2,ewc,si,lwf,pnn,packnet,er seed=0,1,2 threads=1 logger=none "$@" \
  hydra.sweep.dir=$SWEEP 'hydra.sweep.subdir=${hydra.job.override_dirname}'
$PY -m den.compare $SWEEP --out experiments/pmnist/baselines
