"""What a hyperparameter search optimises, and where its study lives.

The search itself is the Hydra sweeper ``hydra_plugins/den_optuna_sweeper`` (our own, over
optuna's ask-and-tell API). This module holds the two things both sides of it share:

- the objectives a search may ask for, each read from a run's results dict. Every one of
  them is a *validation* figure or a property of the trained model (its capacity); none reads
  a test metric, so a search cannot be steered by the test set;
- the storage: an optuna journal file (``<sweep dir>/optuna.journal`` by default), which
  several processes and cluster nodes can share on one filesystem without a database server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from den.errors import ConfigError, JobFailed

# The journal file a search keeps in its sweep directory unless hydra.sweeper.storage says else.
JOURNAL_NAME = "optuna.journal"


def _val_avg_acc(results: Mapping[str, Any]) -> float:
    return float(results["val_final"]["avg_acc"])


def _val_avg_auroc(results: Mapping[str, Any]) -> float:
    return float(results["val_final"]["avg_auroc"])


def _capacity(results: Mapping[str, Any]) -> float:
    """Non-zero parameters / one base network when the run records it (sparse DEN), else
    stored parameters / one base network."""
    final = results["final"]
    if final.get("nonzero_capacity") is not None:
        return float(final["nonzero_capacity"])
    return float(final["capacity"])


# name -> (reader, the direction that is better). The readers see the whole results dict;
# tests/test_search.py hands them one whose test figures raise on access.
OBJECTIVES: dict[str, tuple[Callable[[Mapping[str, Any]], float], str]] = {
    "val_avg_acc": (_val_avg_acc, "maximize"),
    "val_avg_auroc": (_val_avg_auroc, "maximize"),
    "capacity": (_capacity, "minimize"),
}

OBJECTIVE_LABELS = {
    "val_avg_acc": "validation average accuracy",
    "val_avg_auroc": "validation average AUROC",
    "capacity": "capacity: non-zero (else stored) parameters / one base network",
}


def check_objectives(objectives: Mapping[str, str]) -> None:
    """Refuse unknown objective names or directions, naming the key and the choices."""
    if not objectives:
        raise ConfigError(
            "hydra.sweeper.objectives", {}, "no objective", "name one, e.g. {val_avg_acc: maximize}"
        )
    for name, direction in objectives.items():
        if name not in OBJECTIVES:
            raise ConfigError(
                f"hydra.sweeper.objectives.{name}",
                direction,
                "unknown objective",
                f"use one of {', '.join(OBJECTIVES)}",
            )
        if direction not in ("maximize", "minimize"):
            raise ConfigError(
                f"hydra.sweeper.objectives.{name}",
                direction,
                "not a direction",
                "use maximize or minimize",
            )


def objective_values(results: Mapping[str, Any], names: Sequence[str]) -> tuple[float, ...]:
    """The named objectives of one finished run, in order."""
    return tuple(OBJECTIVES[name][0](results) for name in names)


class TrialError(JobFailed):
    """A run of a search failed (bad settings, diverged loss); the message says why. A plain
    one-message exception, so launchers can send it back from their worker processes."""


def _sweeper_objectives() -> list[str]:
    """The objective names of the running search (``hydra.sweeper.objectives``), else []."""
    try:
        from hydra.core.hydra_config import HydraConfig

        wanted = HydraConfig.get().sweeper.get("objectives")
    except ValueError:  # not started by Hydra (tests, notebooks)
        return []
    return list(wanted or [])


def in_search() -> bool:
    """Whether this run is a trial of a search by our sweeper."""
    return bool(_sweeper_objectives())


def task_return(results: Mapping[str, Any]) -> float | tuple[float, ...]:
    """What ``den.train``'s task function returns: the objectives the running sweeper asks for
    (``hydra.sweeper.objectives``), a float for one and a tuple for several; outside such a
    sweep the validation average accuracy."""
    names = _sweeper_objectives() or ["val_avg_acc"]
    values = objective_values(results, names)
    return values[0] if len(values) == 1 else values


def storage_path(storage: str | None, sweep_dir: str | Path) -> Path | None:
    """The absolute journal file of a search: ``storage`` (a path, relative to the working
    directory) or ``<sweep_dir>/optuna.journal``; None when ``storage`` is a database URL."""
    if storage and "://" in storage:
        return None
    path = Path(storage) if storage else Path(sweep_dir) / JOURNAL_NAME
    return path.expanduser().absolute()


def open_storage(storage: str | None, sweep_dir: str | Path) -> Any:
    """An optuna storage: a journal file (created with its folder) or a database URL as is."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    path = storage_path(storage, sweep_dir)
    if path is None:
        return storage
    path.parent.mkdir(parents=True, exist_ok=True)
    # optuna's default lock (a symlink next to the file) keeps concurrent writers apart on
    # local disks and on NFS, the shared filesystem of most clusters.
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
