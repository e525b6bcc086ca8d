#!/usr/bin/env bash
# Copy every finished run of a sweep folder into an experiment's records folder:
#   bash experiments/collect_runs.sh SWEEP DEST
# DEST/<run>/results.json and DEST/<run>/.hydra/*.yaml for each SWEEP/<run>/ that has a
# results.json; DEST is emptied first, so it holds exactly the sweep's runs.
set -euo pipefail
SWEEP=$1
DEST=$2
rm -rf "$DEST" && mkdir -p "$DEST"
for run in "$SWEEP"/*/; do
  [ -f "$run/results.json" ] || continue
  dest="$DEST/$(basename "$run")"
  mkdir -p "$dest/.hydra"
  cp "$run/results.json" "$dest/" && cp "$run/.hydra/"*.yaml "$dest/.hydra/"
done
