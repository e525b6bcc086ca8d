"""``python -m den.train --help`` (and a bare ``python -m den.train``): den's own help page.

Every choice is read from ``conf/<group>/*.yaml`` with the first line of its comment, so a new
strategy, stream or logger shows up here without an edit.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

# (group, how it is chosen, title) in the order the page lists them
GROUPS = (
    ("experiment", "+experiment=", "Experiments (the `+` adds one to the defaults)"),
    ("strategy", "strategy=", "Strategies"),
    ("stream", "stream=", "Task streams"),
    ("model", "model=", "Networks"),
    ("logger", "logger=", "Loggers"),
    ("debug", "debug=", "Presets"),
    ("hparams_search", "hparams_search=", "Searches (with -m)"),
)

COMMON = """\
Settings people change most (any key of `--cfg job` takes key=value):
  seed=0                        the stream, the initialisation and the batch order
  device=auto                   auto (CUDA when present) | cpu | cuda | cuda:N | mps
  threads=auto                  torch threads: auto (this run's CPUs, shared in a sweep) | N
  stream.root=DIR               where the data is (default $DEN_DATA_ROOT, else ./data)
  stream.num_tasks=N            tasks of the stream
  stream.samples_per_task=N     training examples per task (null: all)
  trainer.max_iters=N           the most steps any phase runs
  trainer.lr=1e-3               the learning rate of every phase
  strategy.<key>=VALUE          a strategy's own setting (strategy=den --cfg job lists them)
  resume=DIR|true|auto          continue a run that stopped, after its last finished task
  hydra.run.dir=DIR             where the run writes (default outputs/runs/...)
"""

EXAMPLES = """\
Examples:
  python -m den.train +experiment=pmnist debug=smoke       # a run in under a minute
  python -m den.train +experiment=pmnist                   # DEN on permuted MNIST, 10 tasks
  python -m den.train +experiment=split_cifar10 strategy=stl logger=none
  python -m den.train -m +experiment=pmnist strategy=den_pmnist,ewc seed=0,1,2 \\
      hydra/launcher=joblib threads=1                      # a sweep, two jobs at a time
  python -m den.train +experiment=pmnist --cfg job         # print the config, run nothing
  python -m den.compare outputs/multirun/pmnist/<time>     # compare the runs of a sweep

Hydra's own flags: -m/--multirun, --cfg job|hydra|all, --info, --hydra-help.
docs/running.md has the rest: outputs, resume, sweeps on SLURM, the search, W&B.
"""


def description(path: Path) -> str:
    """The first comment line of a config file (after ``@package``), without its full stop."""
    for line in path.read_text().splitlines():
        text = line.strip()
        if text.startswith("#") and "@package" not in text:
            return text.lstrip("# ").rstrip().removesuffix(".")
        if text and not text.startswith("#"):
            break
    return ""


def help_page(config_dir: Path) -> str:
    """The whole page, with the choices found under ``config_dir``."""
    lines = [
        "python -m den.train: one continual-learning run (or a sweep with -m): a strategy",
        "learns a stream of tasks, every task seen is evaluated after each task, and the",
        "results go to the run directory (results.json) and the logger.",
        "",
        "Usage: python -m den.train +experiment=NAME [group=choice ...] [key=value ...]",
        "",
    ]
    for group, how, title in GROUPS:
        files = sorted((config_dir / group).glob("*.yaml"))
        if not files:
            continue
        lines.append(f"{title}, {how}NAME:")
        width = max(len(f.stem) for f in files) + 2
        for f in files:
            text = textwrap.shorten(description(f), 78 - width - 2, placeholder="...")
            lines.append(f"  {f.stem:<{width}}{text}".rstrip())
        lines.append("")
    launchers = sorted(f.stem for f in (config_dir / "hydra" / "launcher").glob("*.yaml"))
    lines += [
        f"Launchers, hydra/launcher=NAME (with -m): basic, joblib, {', '.join(launchers)}",
        "",
        "",
    ]
    return "\n".join(lines) + COMMON + "\n" + EXAMPLES
