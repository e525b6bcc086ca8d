"""``hydra/launcher=slurm``: hydra-submitit-launcher's SlurmLauncher whose driver never waits
silently forever (hydra_plugins.den_slurm_launcher._queue.QueueWatcher), plus the resolvers that size a job from
the run's own settings (threads -> CPUs, device -> GPU, experiment -> memory and time).

Hydra only instantiates launchers that live in the ``hydra_plugins`` namespace package; this
one is found there when the repository root is on ``sys.path`` (``python -m den.train`` run
from it) or when den is installed (pyproject lists ``hydra_plugins*``).
"""

# No `from __future__ import annotations`: Hydra's plugin scanner runs this module before it
# is in sys.modules, where dataclasses would look string annotations up. Optional/Dict: the
# spelling OmegaConf 2.3's structured configs read on every supported Python.
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Optional  # noqa: UP035

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf


def gpus_for_device(device: Any) -> int | None:
    """One GPU for ``device=cuda``/``cuda:N``; none for cpu, mps and auto (auto uses a GPU
    only if the node happens to have one, so it must not make the job wait for one)."""
    return 1 if str(device).startswith("cuda") else None


def cpus_for_threads(threads: Any) -> int:
    """CPUs per task = the run's torch threads; 1 for ``threads=auto`` or null (the job then
    uses the CPUs SLURM gave it, SLURM_CPUS_PER_TASK: raise hydra.launcher.cpus_per_task)."""
    if threads is None or str(threads) == "auto":
        return 1
    return int(threads)


def job_name(experiment: Any, strategy: Any, task_overrides: Any) -> str:
    """``<experiment>-<strategy>``; a swept ``strategy=a,b`` gives ``<experiment>-a+b`` (one
    array job runs them all, and the driver's own strategy is not the swept ones)."""
    for override in task_overrides or []:
        key, _, value = str(override).partition("=")
        if key.lstrip("+~") in ("strategy", "strategy.name") and value:
            strategy = value
    name = f"{experiment}-{strategy}".replace(",", "+")
    return re.sub(r"[^\w.+=-]", "_", name)


for _name, _fn in (
    ("den_slurm_gpus", gpus_for_device),
    ("den_slurm_cpus", cpus_for_threads),
    ("den_slurm_job_name", job_name),
):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)

# Keys of this launcher's config that are ours, not sbatch's (removed before submitit).
OWN_KEYS = (
    "never_start_grace_s",
    "max_pending_min",
    "poll_max_s",
    "mem_gb_by_experiment",
    "timeout_min_by_experiment",
)


@dataclass
class DenSlurmQueueConf(SlurmQueueConf):
    """SlurmQueueConf plus the watcher's settings and the per-experiment sizing tables."""

    _target_: str = "hydra_plugins.den_slurm_launcher.den_slurm_launcher.DenSlurmLauncher"
    # fail a job pending with a reason that never clears (PartitionConfig, ...) after this
    never_start_grace_s: float = 30.0
    # fail any job pending longer than this, whatever the reason (None: no limit)
    max_pending_min: Optional[float] = None  # noqa: UP045
    # longest pause between two squeue/sacct checks of the driver
    poll_max_s: int = 60
    mem_gb_by_experiment: Dict[str, int] = field(default_factory=dict)  # noqa: UP006
    timeout_min_by_experiment: Dict[str, int] = field(default_factory=dict)  # noqa: UP006


ConfigStore.instance().store(
    group="hydra/launcher", name="den_slurm_base", node=DenSlurmQueueConf, provider="den"
)


class DenSlurmLauncher(SlurmLauncher):
    """SlurmLauncher whose waiting ends with a clear error when a job cannot start or ends
    without a result (see hydra_plugins.den_slurm_launcher._queue)."""

    def __init__(self, **params: Any) -> None:
        self.watch = {k: params.pop(k) for k in OWN_KEYS if k in params}
        super().__init__(**params)

    def launch(self, job_overrides: Any, initial_job_idx: int) -> Any:
        # imported here: plugin discovery (every den run) stays free of submitit
        from submitit.core.utils import UncompletedJobError
        from submitit.slurm.slurm import SlurmJob

        from hydra_plugins.den_slurm_launcher._queue import QueueWatcher, SlurmJobError

        watcher = QueueWatcher(
            delay_s=int(self.watch.get("poll_max_s", 60)),
            never_start_grace_s=float(self.watch.get("never_start_grace_s", 30.0)),
            max_pending_min=self.watch.get("max_pending_min"),
        )
        previous, SlurmJob.watcher = SlurmJob.watcher, watcher  # every SlurmJob asks it
        try:
            return super().launch(job_overrides, initial_job_idx)
        except SlurmJobError as err:
            raise SlurmJobError(f"{err}\n{_which(job_overrides, initial_job_idx)}") from None
        except UncompletedJobError as err:
            ended = "; ".join(f"{j}: {s}" for j, s in watcher.ended_without_success().items())
            raise SlurmJobError(
                f"A SLURM job of the sweep ended without a result. SLURM says: {ended or '?'}.\n"
                f"{_which(job_overrides, initial_job_idx)}\nsubmitit's report:\n{err}\n"
                "Fix: read the job's log above; a job that was cancelled or preempted "
                "continues where it stopped when the sweep is rerun with resume=auto."
            ) from None
        finally:
            SlurmJob.watcher = previous


def _which(job_overrides: Any, initial_job_idx: int) -> str:
    """Array task i of this launch is sweep job #initial_job_idx+i; list them."""
    rows = [
        f"  array task {i} = sweep job #{initial_job_idx + i}: {' '.join(o)}"
        for i, o in enumerate(job_overrides)
    ]
    return (
        "Jobs of this launch (SLURM array job <id>_<array task>; one job: plain <id>):\n"
        + "\n".join(rows)
    )
