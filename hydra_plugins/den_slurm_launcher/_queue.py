"""Watching a sweep's SLURM jobs from the driver, so that it never waits silently forever.

submitit (under ``hydra/launcher=slurm``) learns job states from ``sacct`` alone. Two gaps
made a sweep's driver wait forever without a word:

- a job that can never start (it asks for more than any node of the partition has) stays
  PENDING with a reason such as ``PartitionConfig``, and PENDING looks like "not yet";
- without accounting (``sacct`` fails) a job that dies without a result is never seen ending.

:class:`QueueWatcher` is submitit's watcher plus ``squeue``: ``squeue`` (slurmctld's own
view, which also lists jobs that ended in the last ``MinJobAge`` seconds) overrides sacct's
state, a job that has left the queue counts as ended, and a job pending for a reason that
cannot go away is cancelled and reported as a :class:`SlurmJobError`.
"""

# The leading underscore keeps Hydra's plugin scan from executing this module (again).

from __future__ import annotations

import getpass
import logging
import subprocess
import time
from dataclasses import dataclass

from hydra.errors import CompactHydraException
from submitit.slurm.slurm import SlurmInfoWatcher

log = logging.getLogger("den.slurm")

# squeue's pending reasons that no waiting resolves: the request does not fit the partition,
# or names a constraint / account / QOS / dependency that cannot be satisfied.
NEVER_START_REASONS: dict[str, str] = {
    "PartitionConfig": "it asks for more CPUs, memory or GPUs than a node of the partition has",
    "PartitionNodeLimit": "it asks for more nodes than the partition allows or has up",
    "PartitionTimeLimit": "its time limit is longer than the partition's MaxTime",
    "BadConstraints": "no node has the requested features/constraint",
    "DependencyNeverSatisfied": "a job it depends on failed",
    "InvalidAccount": "the account does not exist or is not yours",
    "InvalidQOS": "the QOS does not exist or is not allowed here",
    "AccountNotAllowed": "the partition does not accept this account",
    "QOSNotAllowed": "the partition does not accept this QOS",
}

# States in which a job may still produce its result: SLURM's pending/running states plus
# the requeue and suspension ones (a requeued job comes back under the same id).
WAITING_STATES = frozenset(
    {
        "PENDING",
        "RUNNING",
        "CONFIGURING",
        "COMPLETING",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESV_DEL_HOLD",
        "PREEMPTED",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "SUSPENDED",
        "READY",
        "UNKNOWN",
    }
)

# What a job that squeue no longer lists, and sacct does not know, is reported as.
LEFT_QUEUE = "ENDED (no longer in squeue; sacct has no record of it)"

SQUEUE_FORMAT = "%i|%T|%r|%j|%P|%C|%m|%l|%b"


class SlurmJobError(CompactHydraException):
    """A job of the sweep cannot start or ended without a result; the message says which.
    (Compact: Hydra prints the message alone, no traceback, and exits 1; HYDRA_FULL_ERROR=1
    shows the traceback.)"""


@dataclass(frozen=True)
class QueueEntry:
    """One line of ``squeue --format=SQUEUE_FORMAT``."""

    job_id: str
    state: str
    reason: str
    name: str = ""
    partition: str = ""
    cpus: str = ""
    memory: str = ""
    time_limit: str = ""
    gres: str = ""

    @property
    def reason_code(self) -> str:
        """``ReqNodeNotAvail, UnavailableNodes:n1`` -> ``ReqNodeNotAvail``."""
        return self.reason.split(",")[0].strip()

    def describe_request(self) -> str:
        parts = [f"partition {self.partition}", f"{self.cpus} CPUs", f"memory {self.memory}"]
        parts.append(f"time limit {self.time_limit}")
        if self.gres and self.gres not in ("(null)", "N/A"):
            parts.append(f"gres {self.gres}")
        return ", ".join(parts)


def parse_squeue(text: str) -> dict[str, QueueEntry]:
    """``squeue --noheader --format=SQUEUE_FORMAT`` output -> entries by job id (``12_0``)."""
    entries = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 3 or not fields[0]:
            continue
        entry = QueueEntry(*fields[:9])
        entries[entry.job_id] = entry
    return entries


def read_queue() -> dict[str, QueueEntry] | None:
    """This user's jobs as slurmctld sees them (including recently ended ones), or None when
    squeue itself fails (then nothing is concluded from a job's absence)."""
    cmd = ["squeue", "--noheader", "--array", "--states=all", f"--user={getpass.getuser()}"]
    cmd.append(f"--format={SQUEUE_FORMAT}")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("squeue failed (%s); job states may be late", err)
        return None
    return parse_squeue(out.stdout)


class QueueWatcher(SlurmInfoWatcher):
    """submitit's sacct watcher, completed by squeue (see the module docstring).

    ``never_start_grace_s``: how long a job may show a reason of NEVER_START_REASONS before
    the sweep fails (the scheduler may change its mind right after submission).
    ``max_pending_min``: fail any job still pending after this long, whatever the reason
    (None: wait as long as SLURM does, logging the reason every ``report_every_s``).
    """

    def __init__(
        self,
        delay_s: int = 60,
        never_start_grace_s: float = 30.0,
        max_pending_min: float | None = None,
        report_every_s: float = 300.0,
    ) -> None:
        super().__init__(delay_s=delay_s)
        self.never_start_grace_s = never_start_grace_s
        self.max_pending_min = max_pending_min
        self.report_every_s = report_every_s
        self.queue: dict[str, QueueEntry] = {}  # the last squeue answer, for messages
        self._listed: set[str] = set()  # jobs squeue has listed at least once
        self._stuck_since: dict[str, float] = {}
        self._pending_since: dict[str, float] = {}
        self._last_report = time.time()

    def update(self) -> None:
        super().update()  # sacct; a failing sacct is only logged by submitit
        open_jobs = self._registered - self._finished
        if not open_jobs:
            return
        queue = read_queue()
        if queue is None:
            return
        self.queue = queue
        now = time.time()
        for job_id in open_jobs:
            entry = queue.get(job_id)
            if entry is not None:
                self._listed.add(job_id)
                self._info_dict[job_id] = {"State": entry.state, "Reason": entry.reason}
            elif job_id in self._listed and not self._sacct_says_ended(job_id):
                self._info_dict[job_id] = {"State": LEFT_QUEUE}
        self._check_pending(open_jobs, now)
        for job_id in open_jobs:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)

    def is_done(self, job_id: str, mode: str = "standard") -> bool:
        state = self.get_state(job_id, mode=mode)
        return state.split(" ")[0].upper() not in WAITING_STATES  # "CANCELLED by 0"

    def ended_without_success(self) -> dict[str, str]:
        """Jobs seen ending in a state other than COMPLETED: job id -> state (reason)."""
        out = {}
        for job_id in sorted(self._finished):
            info = self._info_dict.get(job_id, {})
            state = info.get("State", "UNKNOWN")
            if not state.startswith("COMPLETED"):
                reason = info.get("Reason", "")
                out[job_id] = f"{state} (reason: {reason})" if reason else state
        return out

    def _sacct_says_ended(self, job_id: str) -> bool:
        state = self._info_dict.get(job_id, {}).get("State", "UNKNOWN")
        return state.split(" ")[0].upper() not in WAITING_STATES

    def _check_pending(self, open_jobs: set[str], now: float) -> None:
        """Fail on jobs that cannot start; log why the others wait."""
        stuck, overdue, waiting = [], [], []
        for job_id in sorted(open_jobs):
            entry = self.queue.get(job_id)
            if entry is None or entry.state != "PENDING":
                self._stuck_since.pop(job_id, None)
                self._pending_since.pop(job_id, None)
                continue
            pending_s = now - self._pending_since.setdefault(job_id, now)
            waiting.append(f"{job_id} pending {pending_s / 60:.0f} min ({entry.reason})")
            if entry.reason_code in NEVER_START_REASONS:
                if now - self._stuck_since.setdefault(job_id, now) >= self.never_start_grace_s:
                    stuck.append(entry)
            else:
                self._stuck_since.pop(job_id, None)
            if self.max_pending_min is not None and pending_s >= 60 * self.max_pending_min:
                overdue.append(entry)
        if stuck or overdue:
            self._give_up(stuck, overdue)
        if waiting and now - self._last_report >= self.report_every_s:
            self._last_report = now
            log.info("SLURM: still waiting: %s", "; ".join(waiting))

    def _give_up(self, stuck: list[QueueEntry], overdue: list[QueueEntry]) -> None:
        """Cancel the jobs that would wait forever (nobody else will) and raise."""
        jobs = {e.job_id: e for e in stuck + overdue}
        subprocess.run(["scancel", *jobs], capture_output=True, timeout=60, check=False)
        lines = []
        for entry in stuck:
            why = NEVER_START_REASONS[entry.reason_code]
            lines.append(
                f"SLURM job {entry.job_id} ({entry.name}) cannot start: PENDING with "
                f"Reason={entry.reason}: {why}. It asked for {entry.describe_request()}."
            )
        for entry in overdue:
            if entry.job_id not in {e.job_id for e in stuck}:
                lines.append(
                    f"SLURM job {entry.job_id} ({entry.name}) has been PENDING longer than "
                    f"hydra.launcher.max_pending_min={self.max_pending_min} "
                    f"(Reason={entry.reason}); it asked for {entry.describe_request()}."
                )
        lines.append(f"Cancelled: {', '.join(jobs)}.")
        lines.append(
            "Fix: ask for what a node has (threads= sets hydra.launcher.cpus_per_task; "
            "hydra.launcher.mem_gb, timeout_min, gpus_per_node, constraint) or pick a partition "
            "that has it (hydra.launcher.partition=...); `sinfo -o '%P %c %m %G %l %f'` lists "
            "CPUs, memory (MB), GPUs, time limit and features per partition."
        )
        raise SlurmJobError("\n".join(lines))
