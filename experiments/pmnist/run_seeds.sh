#!/usr/bin/env bash
# Regenerate experiments/pmnist/baselines/: DEN and every baseline on permuted MNIST
# (10 tasks, MLP 784-312-128, real MNIST, the +experiment=pmnist budget), seeds 0, 1, 2, as
# one Hydra multirun; then every run's results.json and .hydra/ are copied into
# experiments/pmnist/baselines/runs/ (committed) and the comparison report (mean ± std over
# seeds, plots) is built from that copy, so `python -m den.compare experiments/pmnist/baselines/runs`
# regenerates it on a fresh clone. DEN runs as den_pmnist, +experiment=pmnist's DEN: l1, k,
# gl and lam from the validation accuracy/capacity front (experiments/pmnist/pareto) and the
# selective-retraining budget chosen on validation (experiments/pmnist/budgets).
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
RUNS=experiments/pmnist/baselines/runs
rm -rf "$RUNS" && mkdir -p "$RUNS"
for run in "$SWEEP"/*/; do
  [ -f "$run/results.json" ] || continue
  dest="$RUNS/$(basename "$run")"
  mkdir -p "$dest"
  cp "$run/results.json" "$dest/" && cp -r "$run/.hydra" "$dest/"
done
$PY -m den.compare "$RUNS" --out experiments/pmnist/baselines
