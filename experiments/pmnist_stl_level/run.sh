#!/usr/bin/env bash
# Permuted MNIST at STL's level: which DEN setting comes within 0.5 point of STL's validation
# accuracy, and at what non-zero capacity. Candidates from the accuracy/capacity front run the
# full protocol (10 tasks, seed 0); den.choose picks, on validation, the smallest non-zero
# capacity within 0.5 point of STL's validation accuracy (STL: the pmnist_baselines runs), or,
# when none is, the smallest within 0.1 point of the most accurate within 2.0 non-zero networks;
# that setting then runs seeds 1 and 2, and den.compare tables the lot. Two runs at a time,
# one torch thread each; resume=auto continues unfinished runs. Offline: export
# DEN_DATA_ROOT=<data folder>.
#   bash experiments/pmnist_stl_level/run.sh
#   bash experiments/pmnist_stl_level/run.sh l1_0.064:1   # one candidate, one seed
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
HERE=experiments/pmnist_stl_level
SWEEP=${SWEEP:-outputs/experiments/pmnist_stl_level/sweep}
OUT=outputs/experiments/pmnist_stl_level
STL=(experiments/pmnist_baselines/runs/logger=none,seed={0,1,2},strategy=stl)

# name -> overrides of +experiment=pmnist
# den_pmnist growing again while a round buys 5 % of the validation loss (up to 4 rounds)
ROUNDS="strategy=den_pmnist strategy.expansion_rounds=4 strategy.expansion_min_drop=0.05 strategy.gl=0.3"
declare -A CANDIDATES=(
  # den_sparse trials 5 and 17 of pmnist_pareto: on its 3 tasks within 0.5 point of STL's
  # validation accuracy, at up to 1.83 non-zero networks projected to 10 (single expansion)
  [l1_0.042]="strategy=den_sparse strategy.k=30 strategy.l1=0.042 strategy.lam=0.047 strategy.gl=0.42"
  [l1_0.064]="strategy=den_sparse strategy.k=30 strategy.l1=0.064 strategy.lam=0.049 strategy.gl=1.83"
  [rounds_gl0.3]="$ROUNDS"
  # the same with a weaker L1, or also a weaker pull to the previous task's weights
  [rounds_l1_0.04]="$ROUNDS strategy.l1=0.04"
  [rounds_l1_0.03]="$ROUNDS strategy.l1=0.03"
  [rounds_l1_0.04_lam0.2]="$ROUNDS strategy.l1=0.04 strategy.lam=0.2"
  # the front's most accurate trial (1): what STL's level costs
  [l1_0.044_lam0.014]="strategy=den_sparse strategy.k=40 strategy.l1=0.044 strategy.lam=0.014 strategy.gl=0.035"
)

NAMES=(l1_0.042 l1_0.064 rounds_gl0.3 rounds_l1_0.04 rounds_l1_0.03 rounds_l1_0.04_lam0.2
  l1_0.044_lam0.014)

train() {  # train NAME SEED: one run of candidate NAME (skipped when already complete)
  local dir="$SWEEP/$1_seed$2"
  grep -qs '"status": "complete"' "$dir/results.json" && return
  # shellcheck disable=SC2086  # the overrides are words
  $PYTHON -m den.train +experiment=pmnist ${CANDIDATES[$1]} seed="$2" threads=1 logger=none \
    trainer.progress=false resume=auto hydra.run.dir="$dir" > "$dir.log" 2>&1
}

train_all() {  # train_all NAME:SEED...: two runs at a time
  local job
  mkdir -p "$SWEEP"
  for job in "$@"; do
    train "${job%:*}" "${job##*:}" &
    while [ "$(jobs -rp | wc -l)" -ge "${N_JOBS:-2}" ]; do wait -n; done
  done
  wait
}

keep() {  # keep RUN_DIR DEST: what the tables need, each run's results.json and .hydra/
  mkdir -p "$2/.hydra"
  cp "$1/results.json" "$2/"
  cp "$1/.hydra/config.yaml" "$1/.hydra/overrides.yaml" "$2/.hydra/"
}

if [ $# -gt 0 ]; then  # bash run.sh NAME:SEED ...: just those runs
  train_all "$@"
  exit
fi
train_all "${NAMES[@]/%/:0}"
rm -rf "$HERE/runs"
for name in "${NAMES[@]}"; do keep "$SWEEP/${name}_seed0" "$HERE/runs/candidates/$name"; done
# the STL-level rule first: the smallest non-zero capacity within 0.5 point of STL's
# validation accuracy; exit status 1 when no candidate meets it. Then the fallback: the
# smallest non-zero capacity within 0.1 point of the most accurate candidate within 2.0.
BUDGETS=(--budget-nonzero 2.0 --budget-stored inf --prefer nonzero)
if $PYTHON -m den.choose "$HERE/runs/candidates" "${STL[@]}" "${BUDGETS[@]}" \
  --reference method=stl --tolerance 0.005 --out "$OUT/choice_stl_level.md"; then
  cp "$OUT/choice_stl_level.md" "$OUT/choice.md"
else
  $PYTHON -m den.choose "$HERE/runs/candidates" "${STL[@]}" "${BUDGETS[@]}" --tolerance 0.001 \
    --out "$OUT/choice.md"
fi
# the chosen candidate's name, from its run folder in the chosen row
chosen=$(grep -m1 '(chosen)' "$OUT/choice.md" | grep -o '`[^`]*`' | head -1 | tr -d '`')
train_all "$chosen:1" "$chosen:2"
for seed in 1 2; do keep "$SWEEP/${chosen}_seed$seed" "$HERE/runs/seeds/${chosen}_seed$seed"; done
$PYTHON -m den.compare "$HERE/runs" "${STL[@]}" \
  experiments/pmnist_baselines/runs/logger=none,seed={0,1,2},strategy=den_pmnist --out "$OUT"
cp "$OUT/choice.md" "$OUT/report.md" "$HERE/"
