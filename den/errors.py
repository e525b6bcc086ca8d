"""Errors a user can act on: each names the config key or file that is wrong and the fix.

:func:`den.train.main` prints them as one paragraph and exits with status 2 (set
``HYDRA_FULL_ERROR=1`` for the traceback).
"""

from __future__ import annotations


class DenError(Exception):
    """Base class: the message is complete and meant for the user, not a developer."""

    exit_code = 2


class ConfigError(DenError):
    """A config value is impossible. ``key`` is its dotted path (``stream.num_tasks``)."""

    def __init__(self, key: str, value: object, problem: str, fix: str) -> None:
        self.key = key
        super().__init__(f"Invalid config value {key}={value!r}: {problem}. Fix: {fix}")


class DataError(DenError):
    """Dataset files are missing, truncated or malformed. ``path`` is the file or folder."""

    def __init__(self, path: object, problem: str, fix: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"Data problem at {self.path}: {problem}. Fix: {fix}")


class NonFiniteLossError(DenError):
    """Training diverged: the loss became NaN or infinite."""

    def __init__(self, task_id: int, phase: str, step: int, loss: float) -> None:
        super().__init__(
            f"The training loss became {loss} in task {task_id + 1}, phase '{phase}', at step "
            f"{step}. Fix: lower trainer.lr or the regularisation strengths of the strategy; "
            "finished tasks are kept in the run directory."
        )


class JobFailed(Exception):
    """A job of a sweep failed; the message says why. A plain one-message exception (not a
    :class:`DenError`, whose subclasses take other arguments), so launchers can send it back
    from their worker processes and nodes."""
