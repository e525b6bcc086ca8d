"""The W&B dashboard as code: a workspace that compares the methods of a sweep.

:func:`workspace` builds the view from the keys :class:`den.loggers.wandb.WandbLogger` logs
(nothing is read from W&B to build it): runs grouped by method (the W&B job type) so every
curve is the mean over seeds with a band, and sections for accuracy and AUROC after each
task, each task's final accuracy, forgetting, capacity (stored and non-zero), time, the
training curves and DEN's decisions. ``python -m den.dashboard`` saves it to a project.
"""

from __future__ import annotations

from typing import Any

# (section title, panels): ("line", x, [y...], title) on an axis, ("bar", [summary keys...],
# title) over the final summary; keys are what den's W&B logger writes.
SECTIONS: tuple[tuple[str, tuple[tuple[Any, ...], ...]], ...] = (
    (
        "Accuracy after each task",
        (
            ("line", "task", ["test/avg_acc"], "average test accuracy over the tasks seen"),
            ("line", "task", ["test/avg_auroc"], "average test AUROC over the tasks seen"),
            ("line", "task", ["val/avg_acc"], "average validation accuracy"),
            ("line", "task", ["test/acc_current"], "accuracy on the task just learned"),
        ),
    ),
    (
        "Final figures",
        (
            ("bar", ["final/avg_acc"], "final average accuracy"),
            ("bar", ["final/avg_auroc"], "final average AUROC"),
            ("bar", ["final/learned_acc"], "accuracy when learned"),
            ("bar", ["final/bwt"], "backward transfer (accuracy)"),
            ("bar", ["final/forgetting"], "forgetting (accuracy)"),
            ("bar", ["final/auroc_bwt"], "backward transfer (AUROC)"),
        ),
    ),
    (
        "Each task at the end",
        (("bar", "final/acc_task", "each task's final test accuracy"),),
    ),
    (
        "Capacity",
        (
            ("line", "task", ["progress/capacity"], "stored parameters / one network"),
            ("line", "task", ["progress/nonzero_capacity"], "non-zero parameters / one network"),
            ("bar", ["final/capacity"], "final stored capacity"),
            ("bar", ["final/nonzero_capacity"], "final non-zero capacity"),
        ),
    ),
    (
        "Time",
        (
            ("bar", ["final/wall_time_s"], "wall time (s)"),
            ("line", "task", ["progress/learn_time_s"], "seconds to learn each task"),
            ("bar", ["final/peak_rss_mib"], "peak memory (MiB)"),
        ),
    ),
    (
        "Training",
        (
            ("line", "train/step", ["train/loss"], "training loss, every phase in turn"),
            ("line", "train/step", ["val/loss"], "validation loss at each check"),
        ),
    ),
    (
        "DEN's decisions",
        (
            ("line", "task", ["diagnostics/selected_fraction/mean"], "selected / units"),
            ("line", "task", ["diagnostics/expansion_kept/total"], "expansion units kept"),
            ("line", "task", ["diagnostics/split/total"], "units split"),
            ("line", "task", ["diagnostics/widths/total"], "units in the trunk"),
        ),
    ),
)


def workspace(
    entity: str, project: str, group: str | None = None, name: str | None = None, tasks: int = 10
) -> Any:
    """The workspace of ``project`` (only the runs of ``group``, a sweep, when given), its
    runs grouped by method; ``tasks`` sets how many per-task bars the per-task section has."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    sections = [
        ws.Section(name=title, panels=[_panel(wr, spec, tasks) for spec in panels], is_open=True)
        for title, panels in SECTIONS
    ]
    filters = [ws.Metric("Group") == group] if group else ""
    settings = ws.RunsetSettings(filters=filters, groupby=[ws.Metric("JobType")])
    return ws.Workspace(
        entity=entity,
        project=project,
        name=name or (f"den: {group}" if group else "den: methods compared"),
        sections=sections,
        runset_settings=settings,
    )


def _panel(wr: Any, spec: tuple[Any, ...], tasks: int) -> Any:
    """A line plot grouped by method (mean over seeds, a standard-deviation band) or a bar
    chart of summary keys (``final/acc_task`` expands to one bar per task)."""
    kind, *rest = spec
    if kind == "line":
        x, ys, title = rest
        return wr.LinePlot(
            title=title,
            x=x,
            y=list(ys),
            groupby_aggfunc="mean",
            groupby_rangefunc="stddev",
        )
    keys, title = rest
    if isinstance(keys, str):  # a key per task
        keys = [f"{keys}{j}" for j in range(1, tasks + 1)]
    return wr.BarPlot(
        title=title,
        metrics=[wr.SummaryMetric(k) for k in keys],
        groupby_aggfunc="mean",
        groupby_rangefunc="stddev",
    )


def panel_keys(view: Any) -> dict[str, list[str]]:
    """{section name: the metric keys its panels plot}: what the test checks, without W&B."""
    out: dict[str, list[str]] = {}
    for section in view.sections:
        keys: list[str] = []
        for panel in section.panels:
            values = getattr(panel, "y", None) or getattr(panel, "metrics", None) or []
            keys += [getattr(v, "name", v) for v in values]
        out[section.name] = keys
    return out
