"""What DEN reports about each task: the typed record of its decisions, per layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from den.strategies.base import TaskReport


@dataclass
class DENTaskReport(TaskReport):
    """One task of DEN. Lists hold one entry per hidden layer (conv layers first); a field
    is None when its step did not run (task 1 has no selection; no expansion below tau)."""

    step_seconds: dict[str, float] = field(default_factory=dict)  # wall time of each step
    selected: list[int] | None = None  # units the breadth-first search selected
    selected_fraction: list[float] | None = None  # selected / units
    expansion_loss: float | None = None  # the data loss compared with tau
    expanded: bool | None = None  # whether it was above tau
    expansion_added: list[int] | None = None  # units an expansion added
    expansion_kept: list[int] | None = None  # of those, units the group lasso kept
    # expansion_rounds > 1 or expansion_min_drop: every round (added, kept, validation loss
    # before and after, undone) and the task's validation loss before and after growing
    expansion_rounds: list[dict[str, Any]] | None = None
    expansion_val_loss: list[float] | None = None
    split_train_skipped: bool | None = None  # split_train_if_drifted found no drift
    split: list[int] | None = None  # units duplicated
    over_sigma: list[int] | None = None  # units past sigma before a split cap
    pulled_back: list[int] | None = None  # of those left unsplit, moved back (unsplit_drift)
    max_drift: list[float] | None = None  # the largest rho_i
    widths: list[int] = field(default_factory=list)  # units after the task
    params: int = 0  # stored parameters after the task
    params_task: int = 0  # parameters task t's prediction reads
    nonzero_params: int = 0
    nonzero_fraction: list[float] = field(default_factory=list)  # non-zero weights / weights

    def describe(self, tau: float) -> str:
        """One plain line about the task's decisions (units per layer joined by dashes, as
        in 784-312-128)."""
        parts = []
        if self.selected is not None:
            parts.append(f"selected {_layers(self.selected)} of the old units")
        if self.expansion_loss is not None:
            side = "above" if self.expanded else "not above"
            parts.append(f"loss {self.expansion_loss:.4f} {side} tau {tau:g}")
        if self.expansion_kept is not None:
            added = _layers(self.expansion_added or [])
            parts.append(f"grew {added} units, kept {_layers(self.expansion_kept)}")
            if self.expansion_rounds is not None:
                undone = sum(r["undone"] for r in self.expansion_rounds)
                before, after = self.expansion_val_loss or [float("nan")] * 2
                parts.append(
                    f"{len(self.expansion_rounds) - undone} round(s) kept, {undone} undone, "
                    f"val loss {before:.4f} -> {after:.4f}"
                )
        elif self.expanded is False:
            parts.append("no expansion")
        if self.split is not None:
            parts.append(f"split {_layers(self.split)}")
        parts.append(f"now {_layers(self.widths)} units")
        seconds = ", ".join(
            f"{k.replace('_', ' ')} {v:.1f} s" for k, v in self.step_seconds.items()
        )
        return "; ".join(parts) + (f" ({seconds})" if seconds else "")


def _layers(values: list[int]) -> str:
    return "-".join(str(v) for v in values)
