"""The end-of-run table: each task's test figures, then the averages (fits 80 columns)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from den.run.record import RunRecord


def print_summary(record: RunRecord, console: Console | None = None) -> None:
    """Per task: accuracy when learned and at the end, AUROC at the end, forgetting, stored
    and non-zero parameters, learning time; the task's classes when tasks differ in them."""
    console = console or Console(width=None if Console().is_terminal else 100)
    console.print(summary_table(record))
    for line in summary_lines(record):
        console.print(line)


def summary_table(record: RunRecord) -> Table:
    acc, auroc = record.square("test", "acc"), record.square("test", "auroc")
    last = record.tasks_done - 1
    classes = [classes_label(t["classes"]) for t in record.tasks]
    show_classes = len(set(classes)) > 1  # permuted tasks all hold every class
    table = Table(
        title=f"{record.meta.get('method', record.meta.get('strategy', ''))} on "
        f"{record.meta.get('stream', '')}: test figures per task",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    head = ["task", *(["classes"] if show_classes else []), "acc new", "acc end", "AUROC"]
    head += ["forgot", "params", "non-zero", "learn s"]
    for col in head:
        table.add_column(col, justify="right", no_wrap=True)
    for j in range(record.tasks_done):
        best = max(acc[i][j] for i in range(j, last + 1))
        nonzero = count(record.nonzero_params[j]) if j < len(record.nonzero_params) else "-"
        table.add_row(
            str(j + 1),
            *([classes[j]] if show_classes else []),
            f"{acc[j][j]:.4f}",
            f"{acc[last][j]:.4f}",
            f"{auroc[last][j]:.4f}",
            f"{best - acc[last][j]:.4f}",
            count(record.params[j]),
            nonzero,
            f"{record.learn_time_s[j]:.1f}",
        )
    return table


def summary_lines(record: RunRecord) -> list[str]:
    """The run's averages in lines of at most 80 characters."""
    f = record.final()
    nonzero = f.get("nonzero_capacity")
    capacity = f"capacity {f['capacity']:.2f}" + (
        f" (non-zero {nonzero:.2f})" if nonzero is not None else ""
    )
    return [
        f"avg acc {f['avg_acc']:.4f}  avg AUROC {f['avg_auroc']:.4f}  BWT {f['bwt']:+.4f}  "
        f"forgetting {f['forgetting']:.4f}",
        f"{f['params']:,} parameters, {capacity}",
        f"wall time {record.wall_time_s:.1f} s, peak memory {record.peak_rss_mib:.0f} MiB",
    ]


def count(n: int) -> str:
    """A parameter count in at most 7 characters: 286,274 / 1.76M."""
    return f"{n:,}" if n < 1_000_000 else f"{n / 1e6:.2f}M"


def classes_label(classes: list[int]) -> str:
    """``3/rest`` for one-vs-rest, ``0,1`` for a few classes, ``10 classes`` for many."""
    if classes and classes[0] < 0:
        return f"{classes[1]}/rest"
    text = ",".join(str(c) for c in classes)
    return text if len(text) <= 12 else f"{len(classes)} classes"
