# Sourced by this folder's sweeps (run.sh, run_gl.sh, run_conv.sh) after they set SWEEP (the
# run folders) and RECORDS (where records are kept): the settings every job shares and run(),
# which runs one job and copies its record as soon as it ends (a sweep cut short keeps the
# runs that ended).
PY=.venv/bin/python
DATA=${CIFAR10_JPEG:-../shared/data/cifar10-jpeg}
HERE=experiments/cifar10/l1_choice
COMMON=(stream.source=imagefolder stream.root="$DATA" threads=1 logger=none
  trainer.progress=false resume=auto)

run() {  # run NAME EXPERIMENT OVERRIDES...: one run, then its record copied to $RECORDS
  local name=$1 experiment=$2
  shift 2
  $PY -m den.train +experiment="$experiment" "$@" "${COMMON[@]}" hydra.run.dir="$SWEEP/$name"
  mkdir -p "$RECORDS/$name/.hydra"
  cp "$SWEEP/$name/results.json" "$RECORDS/$name/"
  cp "$SWEEP/$name/.hydra/"*.yaml "$RECORDS/$name/.hydra/"
}

