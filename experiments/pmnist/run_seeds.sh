#!/usr/bin/env bash
# Regenerate experiments/pmnist/baselines/: DEN and every baseline on permuted MNIST
# (10 tasks, MLP 784-312-128, real MNIST, the +experiment=pmnist budget), seeds 0, 1, 2, as
# one Hydra multirun, then the comparison report (mean ± std over seeds, plots).
#   bash experiments/pmnist/run_seeds.sh            # all 33 jobs, N_JOBS at a time
#   bash experiments/pmnist/run_seeds.sh seed=0     # extra overrides replace the defaults
# The committed report ran N_JOBS=2 jobs side by side (joblib launcher), one torch thread
# each, on a 2-core machine: its wall times are for that setting. Each job is deterministic
# given its overrides, so the launcher changes the wall times and nothing else.
# resume=auto: rerunning after an interruption continues every unfinished job from its last
# completed task and only re-reads the finished ones.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEN_DATA_ROOT="${DEN_DATA_ROOT:-../shared/data}"
PY=.venv/bin/python
SWEEP=${SWEEP:-outputs/pmnist_seeds}
N_JOBS=${N_JOBS:-2}
# Longest strategies first so the two workers finish together.
$PY -m den.train -m +experiment=pmnist \
  strategy=den_pmnist,pnn,ewc,si,packnet,lwf,l2,joint,er,stl,finetune seed=0,1,2 \
  threads=1 logger=none resume=auto "$@" \
  hydra/launcher=joblib hydra.launcher.n_jobs=$N_JOBS \
  hydra.sweep.dir=$SWEEP 'hydra.sweep.subdir=${hydra.job.override_dirname}'
$PY -m den.compare $SWEEP --out experiments/pmnist/baselines
