"""The comparison table: one row per group, mean and spread over its runs, and summary.csv."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from den.reports.runs import (
    CSV_KEYS,
    METRICS,
    OPTIONAL_COLUMNS,
    OUT_FIX,
    Section,
    run_values,
    table_columns,
)
from den.utils.files import write_atomic


def build_table(section: Section, metric: str) -> Any:
    """One row per group: runs, and mean / std of every column over the group's runs. Uses
    pandas: its NaN-aware group statistics treat a value some runs lack (peak memory of old
    runs) as missing instead of poisoning the mean."""
    import pandas as pd

    rows = [{"label": g.label, **run_values(r)} for g in section.groups for r in g.runs]
    frame = pd.DataFrame(rows)
    keys = [k for k, _, _ in table_columns(metric)]
    stats = frame.groupby("label", sort=False)[keys].agg(["mean", "std"])
    stats.insert(0, ("runs", ""), frame.groupby("label", sort=False).size())
    final = METRICS[metric].final
    return stats.sort_values((final, "mean"), ascending=False, kind="stable")


def cell(mean: float, std: float, runs: int, fmt: str) -> str:
    """``mean ± std``; the mean alone for one run; an en dash when not recorded."""
    if math.isnan(mean):
        return "–"
    text = fmt.format(mean)
    if runs > 1 and not math.isnan(std):
        text += f" ± {fmt.format(std).lstrip('+')}"
    return text


def table_cells(table: Any, metric: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the report table; optional columns only when some run has them."""
    columns = [
        (key, title, fmt)
        for key, title, fmt in table_columns(metric)
        if key not in OPTIONAL_COLUMNS or table[(key, "mean")].notna().any()
    ]
    head = ["method", "runs", *(title for _, title, _ in columns)]
    rows = []
    for label, row in table.iterrows():
        runs = int(row[("runs", "")])
        cells = [str(label), str(runs)]
        cells += [cell(row[(k, "mean")], row[(k, "std")], runs, fmt) for k, _, fmt in columns]
        rows.append(cells)
    return head, rows


def write_csv(sections: list[Section], path: Path) -> None:
    import pandas as pd

    rows = []
    for section in sections:
        for g in section.groups:
            for run_dir, results in zip(g.dirs, g.runs, strict=True):
                values = run_values(results)
                rows.append(
                    {
                        "section": section.slug,
                        "label": g.label,
                        "method": g.method,
                        "run_dir": str(run_dir),
                        "seed": results.get("seed"),
                        **{k: values[k] for k in CSV_KEYS},
                    }
                )
    write_atomic(path, pd.DataFrame(rows).to_csv(index=False), OUT_FIX)
