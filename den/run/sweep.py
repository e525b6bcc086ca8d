"""A sweep that survives a bad job: the failed job is recorded, the others run, the end of
the sweep lists what failed and the process exits non-zero.

Inside a multirun, :func:`den.train.main` does not exit on an error (an exit would end the
whole sweep): it writes ``failed.json`` into the job's folder (:func:`record_failure`) and
raises :class:`~den.errors.JobFailed`, which Hydra's launchers record as a failed job. The
sweepers (``hydra_plugins/den_sweeper`` for ``-m`` sweeps, ``den_optuna_sweeper`` for
searches) collect the failed jobs with :func:`failures_of` and end with
:func:`end_of_sweep`.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from den.errors import JobFailed
from den.run import rundir

log = logging.getLogger("den.sweep")


@dataclass
class JobFailure:
    number: int  # the job's index in the sweep (Hydra's hydra.job.num), or a trial number
    overrides: list[str]
    folder: str
    error: str


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun (any launcher, any sweeper)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:  # not started by Hydra
        return False


def record_failure(folder: str | Path, error: str, exit_code: int) -> Path | None:
    """``failed.json`` in the job's ``folder``: the error, the job's overrides, when, where."""
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    return rundir.record_failure(
        folder,
        {
            "status": "failed",
            "error": error,
            "exit_code": exit_code,
            "overrides": [str(o) for o in hydra.overrides.task],
            "job": hydra.job.get("num"),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )


def failures_of(returns: Iterable[Any]) -> list[JobFailure]:
    """The failed ones of Hydra ``JobReturn`` s, with their overrides, folder and error."""
    from hydra.core.utils import JobStatus

    failed = []
    for ret in returns:
        if ret.status == JobStatus.COMPLETED:
            continue
        cfg = ret.hydra_cfg if ret.hydra_cfg is not None else OmegaConf.create()
        number = OmegaConf.select(cfg, "hydra.job.num", default=-1)
        folder = OmegaConf.select(cfg, "hydra.runtime.output_dir", default="")
        error = ret._return_value
        text = str(error) if error is not None else "no result"
        if error is not None and not isinstance(error, JobFailed):  # a defect: say its kind
            text = f"{type(error).__name__}: {text}"
        failed.append(
            JobFailure(
                number=int(number if number is not None else -1),
                overrides=[str(o) for o in (ret.overrides or [])],
                folder=str(folder or ""),
                error=text.strip().replace("\n", " "),
            )
        )
    return failed


def varying(jobs: Sequence[Sequence[str]]) -> set[str]:
    """The overrides that tell the jobs of a sweep apart (all of them for a single job)."""
    if len(jobs) < 2:
        return {o for job in jobs for o in job}
    return {o for job in jobs for o in job if not all(o in other for other in jobs)}


def end_of_sweep(
    failures: Sequence[JobFailure], jobs: Sequence[Sequence[str]], what: str = "jobs"
) -> None:
    """With failed jobs among ``jobs`` (every job's overrides), list them with their errors
    on stderr and exit with status 1 (after every job has run)."""
    total = len(jobs)
    if not failures:
        log.info("all %d %s of the sweep finished", total, what)
        return
    shown = varying(jobs)
    lines = []
    for failure in failures:
        own = [o.lstrip("+") for o in failure.overrides if o in shown] or ["(no overrides)"]
        where = f" ({failure.folder})" if failure.folder else ""
        lines.append(f"  #{failure.number} {' '.join(own)}{where}: {failure.error}")
    print(
        f"\nError: {len(failures)} of {total} {what} of the sweep failed; the other "
        f"{total - len(failures)} finished.\n" + "\n".join(lines) + "\nEach failed job's "
        "folder holds failed.json with its error. Fix: correct what each message names and "
        "run those jobs again (in the same hydra.sweep.dir; finished jobs need not rerun).\n",
        file=sys.stderr,
    )
    sys.exit(1)
