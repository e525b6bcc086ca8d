"""How many torch threads a run uses, and how OpenMP's idle threads wait (torch-free).

PyTorch's CPU kernels run on OpenMP threads (GNU libgomp in the Linux wheels). After each
parallel region an idle libgomp thread spins (``GOMP_SPINCOUNT`` 300000 by default, a few
ms) before it sleeps. Alone, that spares a wake-up; beside one busy single-thread process on
2 cores, the spinning thread holds the core the thread it waits for needs, and a 2-thread run
became 4x slower. Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) fixes that but costs every
wake-up: alone, a 2-thread training step then took 1.5x as long. den sets a short spin,
``GOMP_SPINCOUNT=10000``: within 5 % of the default alone, a fifth of its loss beside a busy
process (docs/decisions.md#threadsauto). libgomp reads these variables once, when it is
loaded (``import torch``), so :func:`apply_wait_policy` runs from ``den/__init__.py``, before
any den module imports torch; a value the user set (either variable) is left alone.

``threads=auto`` (the default) is :func:`auto_threads`: the CPUs this process was given
(SLURM's ``SLURM_CPUS_PER_TASK``, else the CPU affinity mask and a cgroup CPU quota), shared
between the jobs a joblib sweep runs at once, unless ``OMP_NUM_THREADS`` says otherwise; a
run started on its own leaves out the CPUs other processes keep busy when it starts
(:func:`busy_cpus`), so beside a busy job it runs one thread instead of fighting for the
core. The count is fixed for the whole run and recorded; a resumed run takes it again.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
DEN_WAIT_POLICY = {"GOMP_SPINCOUNT": "10000"}


def apply_wait_policy(
    environ: MutableMapping[str, str] | None = None, torch_loaded: bool | None = None
) -> dict[str, str]:
    """Put den's wait policy into ``environ`` (default ``os.environ``) unless the user set
    ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``; returns what is in effect and who chose it
    (``source``: ``den`` (den's value, also when inherited), ``user``, or ``libgomp`` when
    torch was imported before den, too late to change it). Child processes (joblib workers, SLURM jobs) inherit the variable."""
    environ = os.environ if environ is None else environ
    torch_loaded = "torch" in sys.modules if torch_loaded is None else torch_loaded
    given = {k: environ[k] for k in WAIT_VARIABLES if k in environ}
    if given == DEN_WAIT_POLICY:  # den's own, e.g. inherited by a sweep's worker process
        return {**given, "source": "den"}
    if given:
        return {**given, "source": "user"}
    if torch_loaded:
        return {"source": "libgomp"}  # its own default: spin a few ms, then sleep
    environ.update(DEN_WAIT_POLICY)
    return {**DEN_WAIT_POLICY, "source": "den"}


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs a cgroup quota allows this process (containers, some schedulers), or None."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # cgroup v2
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())  # cgroup v1
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)


def joblib_jobs(n_jobs: int, cpus: int) -> int:
    """Jobs ``hydra/launcher=joblib`` with ``n_jobs`` runs at once, as joblib counts them
    (-1 = one per CPU, -2 = all CPUs but one, ...)."""
    if n_jobs < 0:
        return max(cpus + 1 + n_jobs, 1)
    return max(n_jobs, 1)


def _positive_int(text: str | None) -> int | None:
    """The first integer of ``text`` ("4", "4,2" for nested OpenMP) if it is >= 1."""
    try:
        value = int(str(text).split(",")[0].strip())
    except ValueError:
        return None
    return value if value >= 1 else None


def _cpu_times(cpus: set[int], stat: Path) -> tuple[int, int]:
    """(busy, total) jiffies of ``cpus`` so far, from /proc/stat's per-CPU lines."""
    busy = total = 0
    for line in stat.read_text().splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        total += sum(values)
        busy += sum(values) - values[3] - values[4]
    return busy, total


def busy_cpus(seconds: float = 0.3, stat: Path = Path("/proc/stat")) -> float:
    """CPUs of this process's affinity set that other processes kept busy over ``seconds``
    (this process sleeps meanwhile); 0.0 where /proc/stat cannot be read."""
    import time

    try:
        cpus = set(os.sched_getaffinity(0))
        busy0, total0 = _cpu_times(cpus, stat)
        time.sleep(seconds)
        busy1, total1 = _cpu_times(cpus, stat)
    except (AttributeError, OSError, ValueError):
        return 0.0
    if total1 <= total0:
        return 0.0
    return len(cpus) * (busy1 - busy0) / (total1 - total0)


def auto_threads(
    cpus: int,
    jobs: int = 1,
    environ: Mapping[str, str] | None = None,
    busy: float | None = None,
) -> tuple[int, str]:
    """``threads=auto``: torch intra-op threads for a run, and the reason in words.

    In order: inside a SLURM job the CPUs it was given (``SLURM_CPUS_PER_TASK``) stand for
    ``cpus``; ``OMP_NUM_THREADS`` (the user's, or joblib's limit in its workers) is taken
    as it is; else the CPUs are shared between the ``jobs`` a sweep runs at once,
    ``jobs x threads <= cpus``, at least one thread each; a run on its own leaves out the CPUs
    other processes keep busy (``busy``, measured by :func:`busy_cpus` when None; a CPU counts
    when it is at least 60 % busy), at least one thread."""
    environ = os.environ if environ is None else environ
    where = f"{cpus} CPUs"
    slurm = _positive_int(environ.get("SLURM_CPUS_PER_TASK")) if "SLURM_JOB_ID" in environ else None
    if slurm is not None:
        cpus, where = slurm, f"SLURM_CPUS_PER_TASK={slurm}"
    omp = _positive_int(environ.get("OMP_NUM_THREADS"))
    if omp is not None:
        return omp, f"OMP_NUM_THREADS={omp}"
    if jobs > 1:
        return max(1, cpus // jobs), f"{where} shared by {jobs} parallel jobs"
    if slurm is not None or cpus == 1:
        return cpus, where  # a SLURM job's CPUs are its own
    busy = busy_cpus() if busy is None else busy
    taken = min(cpus - 1, int(busy + 0.4))
    if taken > 0:
        return cpus - taken, f"{where}, {busy:.1f} kept busy by other processes at the start"
    return cpus, where


def resolve_threads(
    setting: int | str | None,
    jobs: int = 1,
    environ: Mapping[str, str] | None = None,
    resumed: int | None = None,
) -> tuple[int | None, str]:
    """The ``threads`` setting as a thread count (None: leave PyTorch's default) and why;
    ``resumed`` is the count of the run being resumed, which ``auto`` keeps (its floating
    point results depend on it)."""
    if setting is None:
        return None, "PyTorch's default (threads=null)"
    if setting == "auto" and resumed is not None:
        return resumed, f"auto: {resumed}, as in the run being resumed"
    if setting == "auto":
        threads, why = auto_threads(available_cpus(), jobs, environ)
        return threads, f"auto: {why}"
    return int(setting), f"threads={int(setting)}"
