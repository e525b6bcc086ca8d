"""Compare runs: per stream, a table over seeds grouped by method, plots, one HTML page.

    python -m den.compare outputs/multirun/pmnist/<timestamp>          # a multirun directory
    python -m den.compare RUN_DIR RUN_DIR ... --out reports/mine        # or run directories
    python -m den.compare --wandb ENTITY/PROJECT --group G --out reports/g  # or W&B runs

Every ``results.json`` under the given paths is read. A file that is not a den results file
(not JSON, not an object, no config, missing matrices) is named on stderr and in the report
and skipped; runs still in progress or that died are listed and left out of the tables.

Runs are split into one section per stream (the stream's config: dataset, tasks, samples...):
methods are only ranked against runs of the same stream. Inside a section, runs of the same
method (the strategy config chosen, e.g. ``den_pmnist``; ``strategy.name`` for runs older
than the key) and the same config up to the seed form a group; groups of one method with
different settings get the keys they differ in appended (``--label KEY`` groups by a dotted
config key instead). Each group's final metrics are given as mean ± standard deviation over
its runs (seeds), in the table and in every figure alike. A run whose config and seed repeat
one already read (a copy) is counted once, with a warning naming both.

Writes into ``--out`` (default: the first path): ``report.md``, ``report.html`` (the same,
with every plot embedded: one file to open or send), ``summary.csv`` (one row per run, every
column of both metrics) and per section: ``avg_<metric>_curve.png``, ``<metric>_per_task.png``
(each task's value after every later task), ``<metric>_vs_capacity.png``,
``<metric>_vs_wall_time.png`` and ``<metric>_matrices.png`` (annotated mean matrices). With
several sections the plot names start with the section's name. ``--metric auroc`` ranks and
plots by AUROC instead, for the one-vs-rest protocols the DEN paper reports in AUROC.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from den.errors import DenError
from den.reports.den_growth import den_growth_part
from den.reports.figures import plot_section
from den.reports.page import Page
from den.reports.runs import (
    METRICS,
    CompareError,
    Found,
    check_outputs,
    find_runs,
    find_wandb_runs,
    make_folder,
    split_sections,
)
from den.reports.table import build_table, table_cells, write_csv

log = logging.getLogger("den.compare")
REPORT_FILES = ("report.md", "report.html", "summary.csv")


# ------------------------------------------------------------------------------ the report
def _relative(path: Path, start: Path) -> str:
    """``path`` relative to the report directory when it lies inside it (committed reports
    keep their runs under ``runs/``), else as given."""
    if str(path).startswith("wandb:") or not path.resolve().is_relative_to(start.resolve()):
        return str(path)
    return os.path.relpath(path, start)


def compare(
    paths: Sequence[str | Path],
    out: str | Path | None = None,
    label: str = "auto",
    wandb_path: str | None = None,
    wandb_group: str | None = None,
    metric: str = "acc",
) -> Path:
    """Write the report for the runs under ``paths`` (or of W&B project ``wandb_path``,
    optionally only ``wandb_group``), ranked and plotted by ``metric`` (acc | auroc); return
    the path of report.md (report.html is beside it). Raises :class:`CompareError`."""
    if metric not in METRICS:
        raise CompareError(f"unknown metric {metric!r}. Fix: use one of {sorted(METRICS)}.")
    if wandb_path and out is None:
        raise CompareError("--out is needed with --wandb. Fix: add --out <report dir>.")
    found = load_runs(paths, wandb_path, wandb_group)
    out_dir = Path(out) if out is not None else Path(paths[0])
    if out_dir.is_file():
        out_dir = out_dir.parent
    make_folder(out_dir)
    check_outputs(out_dir, REPORT_FILES, (".png",))
    sections = split_sections(found.complete, label)
    page = Page("Comparison: " + ("; ".join(s.title for s in sections)))
    page.paragraph(caption(len(found.complete), len(sections), label, metric))
    for section in sections:
        section.table = build_table(section, metric)
        prefix = f"{section.slug}_" if len(sections) > 1 else ""
        plots = plot_section(section, out_dir, prefix, metric)
        head, rows = table_cells(section.table, metric)
        by_label = {g.label: g for g in section.groups}
        run_lines = [
            (label_, [_relative(d, out_dir) for d in by_label[label_].dirs])
            for label_ in section.table.index
        ]
        page.section(section.title, head, rows, plots, run_lines)
        for part in den_growth_part(section, out_dir, prefix):
            page.subsection(*part)
    if found.incomplete:
        page.notes("Not complete (left out)", [_relative(d, out_dir) for d in found.incomplete])
    if found.bad:
        bad = [f"{_relative(f, out_dir)}: it {why}" for f, why in found.bad]
        page.notes("Skipped: not a den results file", bad)
    if found.duplicates:
        repeats = [
            f"{_relative(d, out_dir)} repeats {_relative(k, out_dir)}" for d, k in found.duplicates
        ]
        page.notes("Counted once: the same config and seed as a run already read", repeats)
    write_csv(sections, out_dir / "summary.csv")
    return page.write(out_dir)


def load_runs(
    paths: Sequence[str | Path], wandb_path: str | None, wandb_group: str | None
) -> Found:
    """The runs to compare, from run folders or from W&B; at least one complete."""
    if wandb_path:
        found = find_wandb_runs(wandb_path, wandb_group)
        where = f"W&B {wandb_path}" + (f", group {wandb_group}" if wandb_group else "")
    else:
        found = find_runs(paths)
        where = ", ".join(map(str, paths))
    if not found.complete:
        seen = (
            f" ({len(found.incomplete)} unfinished, {len(found.bad)} unreadable)"
            if found.incomplete or found.bad
            else " (no results.json at all)"
        )
        raise CompareError(
            f"no complete run in {where}{seen}. Fix: pass a multirun directory, run "
            "directories of finished runs, or a W&B project and group that hold finished "
            "runs logged with logger=wandb."
        )
    return found


def caption(runs: int, sections: int, label: str, metric: str) -> str:
    """What the report's tables show, in one paragraph."""
    name = METRICS[metric].name
    streams = (
        "stream"
        if sections == 1
        else "streams (one table each: methods are only ranked on the same stream)"
    )
    grouping = "the strategy config chosen" if label == "auto" else f"by `{label}`"
    return (
        f"{runs} complete runs, {sections} {streams}. Rows: runs of one method ({grouping})"
        f" with the same config up to the seed, best final {name} first; mean ± standard"
        " deviation over the runs (seeds), the mean alone for one run; the figures show the"
        " same spread (bands and bars: ± one standard deviation). BWT and forgetting are"
        f" on {name}. Capacity = stored parameters / one base network with one"
        " head; non-zero capacity (when recorded) counts only non-zero parameters; peak MiB ="
        " the largest resident memory of the run's processes. Tasks are numbered from 1."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m den.compare",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 report written, 2 nothing to compare or a bad argument.",
    )
    parser.add_argument(
        "paths", nargs="*", help="multirun directories, run directories or results.json files"
    )
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read runs from the W&B API")
    parser.add_argument("--group", help="with --wandb: only this W&B group (a sweep)")
    parser.add_argument("--out", help="report directory (default: the first path)")
    parser.add_argument(
        "--label",
        default="auto",
        help="auto (one method with the same config up to the seed = one group) or a dotted "
        "config key whose value names the group",
    )
    parser.add_argument(
        "--metric",
        choices=sorted(METRICS),
        default="acc",
        help="rank and plot by average accuracy (acc) or AUROC (auroc)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.paths and not args.wandb:
        parser.error("give run directories, or --wandb ENTITY/PROJECT")
    try:
        report = compare(
            args.paths, args.out, args.label, args.wandb, args.group, metric=args.metric
        )
    except (CompareError, DenError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    print(report.read_text())
    print(f"report: {report}\nHTML (one file, plots embedded): {report.with_suffix('.html')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
