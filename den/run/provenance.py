"""Where a run came from: the method (the strategy config chosen), den's version and git commit.

Two strategy configs can share ``strategy.name`` (``den_pmnist`` and ``den`` both build DEN,
with different sigma and split caps), so the name alone does not say which method ran. The
config *chosen* (Hydra's runtime choice for the ``strategy`` group) does; it is recorded in
results.json as ``method`` and used by W&B (job_type, tags) and ``den.compare`` (groups).
"""

from __future__ import annotations

import dataclasses
import subprocess
from enum import Enum
from pathlib import Path
from typing import Any

import den
from den.config.store import job_name

REPO_ROOT = Path(__file__).resolve().parents[2]


def hydra_choice(group: str) -> str | None:
    """The config chosen for ``group`` (e.g. ``strategy`` -> ``den_pmnist``), or None when
    not started by Hydra's entry point (tests composing configs, notebooks)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        choice = HydraConfig.get().runtime.choices.get(group)
    except ValueError:  # HydraConfig is not set outside a Hydra job
        return None
    return str(choice) if choice else None


def method_name(cfg: Any) -> str:
    """The method of a run: the strategy config chosen, else ``strategy.name``."""
    return hydra_choice("strategy") or str(cfg.strategy.name)


def git_commit(root: Path = REPO_ROOT) -> str | None:
    """The commit of the checkout den runs from, with ``-dirty`` when it has uncommitted
    changes to tracked files; None outside a git checkout (an installed wheel)."""
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def versions() -> dict[str, str | None]:
    """den's version and git commit (the torch/Python versions are added by the caller)."""
    return {"den": den.__version__, "git_commit": git_commit()}


def config_record(run: Any) -> dict[str, Any]:
    """A typed run config as plain data (enums as their names): the ``config`` of
    results.json and of the checkpoint."""
    return _plain(dataclasses.asdict(run))


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def job_info(run: Any, output_dir: Path, device: str) -> dict[str, Any]:
    """W&B identity of this job (see :class:`den.loggers.wandb.WandbLogger`).

    ``group`` = the sweep, ``<experiment>-<sweep dir>`` in a multirun, ``<experiment>-<run
    dir>`` for a single run (``logger.group`` overrides both, e.g. to gather single runs);
    ``job_type`` = the method (the strategy config chosen); ``name`` = method, seed and a
    short hash of the other overrides (the same for the seeds of one setting), under 40
    characters; ``tags`` = experiment, stream, method; ``device`` = the device used."""
    multirun, overrides, sweep_id = False, "", ""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        overrides = hydra_cfg.job.override_dirname
        sweep_id = Path(hydra_cfg.sweep.dir).name
    except ValueError:  # not started by Hydra (tests, notebooks)
        pass
    method = method_name(run)
    name = job_name(method, run.seed, overrides)
    return {
        "group": f"{run.experiment}-{sweep_id if multirun else output_dir.name}",
        "job_type": method,
        "name": name,
        "tags": [str(run.experiment), str(run.stream.name), method],
        "device": device,
    }
