#!/usr/bin/env bash
# Reproduce experiments/pmnist/README.md: DEN (as +experiment=pmnist runs it, and with the
# authors' code's defaults), fine-tuning and STL on permuted MNIST (10 tasks,
# MLP 784-312-128, real MNIST), run one after the other on an otherwise idle machine, then the
# summary table (which also times the bare PyTorch step in its own process).
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEN_DATA_ROOT="${DEN_DATA_ROOT:-../shared/data}"
PY=.venv/bin/python
stamp=$(date +%Y-%m-%d_%H-%M-%S)
# den_pmnist is what `+experiment=pmnist` selects; `den` is the same with the code's defaults.
for strategy in den_pmnist den finetune stl; do
  $PY -m den.train +experiment=pmnist strategy=$strategy "$@" \
    hydra.run.dir=outputs/pmnist_benchmark/$stamp/$strategy
done
$PY experiments/pmnist/summarize.py \
  den=outputs/pmnist_benchmark/$stamp/den_pmnist \
  "den (code defaults)=outputs/pmnist_benchmark/$stamp/den" \
  finetune=outputs/pmnist_benchmark/$stamp/finetune \
  stl=outputs/pmnist_benchmark/$stamp/stl \
  --out experiments/pmnist/README.md
