"""Where a run came from: the method (the strategy config chosen), den's version and git commit.

Two strategy configs can share ``strategy.name`` (``den_pmnist`` and ``den`` both build DEN,
with different sigma and split caps), so the name alone does not say which method ran. The
config *chosen* (Hydra's runtime choice for the ``strategy`` group) does; it is recorded in
results.json as ``method`` and used by W&B (job_type, tags) and ``den.compare`` (groups).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import den

REPO_ROOT = Path(__file__).resolve().parent.parent


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
