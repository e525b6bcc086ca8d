"""Reading finished runs and grouping them: the torch-free half of ``python -m den.compare``.

A run is its ``results.json``. Files that are not den results files are named and skipped;
runs still in progress or that died are listed apart. Runs are split into one
:class:`Section` per stream (methods are only ranked against runs of the same stream), and
inside a section into one :class:`Group` per method and setting (typically several seeds).
Every figure of a run comes from :mod:`den.engine.metrics`, the same functions that wrote it.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from den.engine import metrics
from den.utils.files import read_bounded, refuse_unsafe


class CompareError(Exception):
    """Nothing to compare, or bad arguments: printed as one paragraph, exit status 2."""


class Metric(NamedTuple):
    """What ``--metric`` ranks and plots by: keys into results.json and a table column key."""

    matrix: str  # results key of the [T, T] matrix, row i = after task i
    final: str  # key in results["final"]: the average after the last task
    learned: str  # table column key: mean of the matrix's diagonal
    name: str  # in plot titles and the report


METRICS = {
    "acc": Metric("acc_matrix", "avg_acc", "learned_acc", "accuracy"),
    "auroc": Metric("auroc_matrix", "avg_auroc", "learned_auroc", "AUROC"),
}

# (column key, title, format): the report table, in order; see run_values for each key
HEAD_COLUMNS = (
    ("avg_acc", "avg acc", "{:.4f}"),
    ("learned_acc", "acc when learned", "{:.4f}"),  # mean of R[j][j]: plasticity
    ("avg_auroc", "avg AUROC", "{:.4f}"),
    ("learned_auroc", "AUROC when learned", "{:.4f}"),
)
TRANSFER_COLUMNS = {  # backward transfer and forgetting of the metric the report ranks by
    "acc": (("bwt", "BWT", "{:+.4f}"), ("forgetting", "forgetting", "{:.4f}")),
    "auroc": (
        ("auroc_bwt", "BWT (AUROC)", "{:+.4f}"),
        ("auroc_forgetting", "forgetting (AUROC)", "{:.4f}"),
    ),
}
TAIL_COLUMNS = (
    ("capacity", "capacity", "{:.2f}"),  # stored parameters / one base network
    ("nonzero_capacity", "non-zero capacity", "{:.2f}"),  # shown when runs record it
    ("wall_time_s", "wall s", "{:.0f}"),
    ("peak_rss_mib", "peak MiB", "{:.0f}"),  # largest resident memory of the run's processes
)
OPTIONAL_COLUMNS = ("nonzero_capacity",)  # left out of a table where no run has them


def table_columns(metric: str) -> tuple[tuple[str, str, str], ...]:
    """The report table's columns when ranking by ``metric``."""
    return (*HEAD_COLUMNS, *TRANSFER_COLUMNS[metric], *TAIL_COLUMNS)


# summary.csv keeps every column whatever the metric, so its header never changes
CSV_KEYS = tuple(dict.fromkeys(k for m in TRANSFER_COLUMNS for k, _, _ in table_columns(m)))

# keys a complete results.json must have for a report
REQUIRED_KEYS = ("config", "final", "acc_matrix", "auroc_matrix", "tasks_done")


# ------------------------------------------------------------------------------ the output
OUT_FIX = "pass --out <a fresh folder>"


def make_folder(folder: Path, option: str = "--out") -> Path:
    """Create the folder a report goes to; a CompareError naming it if that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CompareError(
            f"cannot create the folder {folder} ({err.strerror or err}). Fix: pass {option} "
            "<a folder this user can write>."
        ) from None
    return folder


def check_outputs(folder: Path, names: Sequence[str], suffixes: Sequence[str] = ()) -> None:
    """Refuse, before anything is written, a report folder where a file the report writes
    (``names``, or any file ending in one of ``suffixes``) is a symbolic link or a special
    file: a received run folder is the default ``--out``, and a planted link there would
    send the report over a file elsewhere (an :class:`~den.utils.files.UnsafePathError`)."""
    targets = [folder / name for name in names]
    if suffixes and folder.is_dir():
        targets += sorted(p for p in folder.iterdir() if p.name.endswith(tuple(suffixes)))
    for path in targets:
        refuse_unsafe(path, OUT_FIX)


# ------------------------------------------------------------------------------ reading runs
@dataclass
class Found:
    """What the given paths hold."""

    complete: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    incomplete: list[Path] = field(default_factory=list)  # running, failed, interrupted
    bad: list[tuple[Path, str]] = field(default_factory=list)  # (file, what is wrong)
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (dropped, kept)


RESULTS_LIMIT = 64 << 20  # bytes: a results.json of 1,000 tasks is a few MiB
# keys of "final" a report reads: required ones, and optional ones (null = not recorded)
FINAL_REQUIRED = ("avg_acc", "avg_auroc")
FINAL_OPTIONAL = ("bwt", "forgetting", "auroc_bwt", "capacity", "nonzero_capacity", "params")


def _no_constant(name: str) -> Any:
    raise ValueError(f"holds {name}, which is not a number (JSON has no NaN or Infinity)")


def read_results(file: Path) -> dict[str, Any]:
    """The content of one results.json; ValueError naming what is wrong with it. Every
    file is untrusted: only a regular file is read, and at most :data:`RESULTS_LIMIT` bytes
    of it; a complete run's figures must all be there, finite and of one size."""
    data = read_bounded(file, RESULTS_LIMIT)  # ValueError: a pipe, a folder, too large
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"is not UTF-8 text (byte {err.start} is 0x{data[err.start]:02x})"
        ) from None
    try:
        results = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise ValueError(f"is not valid JSON ({err})") from None
    except RecursionError:
        raise ValueError("is not valid JSON (nested too deeply)") from None
    if not isinstance(results, dict):
        raise ValueError(f"holds a JSON {type(results).__name__}, not a den results object")
    if not isinstance(results.get("config"), dict):
        raise ValueError("has no 'config' (not written by den.train)")
    if not isinstance(results.get("status"), str):
        raise ValueError(f"has a status of {results.get('status')!r}, not a word")
    for key in ("method", "stream", "experiment"):
        if key in results and not isinstance(results[key], str | None):
            raise ValueError(f"has a {key} of {_shown(results[key])}, not a name")
    if results["status"] == "complete":
        problem = complete_problem(results)
        if problem:
            raise ValueError(problem)
    return results


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def complete_problem(results: dict[str, Any]) -> str | None:
    """What makes a "complete" results dict unfit for a report (figures missing, not
    numbers, not finite, of the wrong size), or None."""
    missing = [k for k in REQUIRED_KEYS if k not in results]
    if missing:
        return f"lacks {', '.join(missing)}"
    done = results["tasks_done"]
    if not isinstance(done, int) or isinstance(done, bool) or done < 1:
        return f"has tasks_done {_shown(done)}, not a number of tasks"
    stream = results["config"].get("stream")
    planned = stream.get("num_tasks") if isinstance(stream, dict) else None
    if isinstance(planned, int) and planned != done:
        return f"claims to be complete after {done} of its {planned} tasks (stream.num_tasks)"
    for key in ("acc_matrix", "auroc_matrix", "val_acc_matrix", "val_auroc_matrix"):
        if (key in results or key in REQUIRED_KEYS) and not lower_triangle(results[key], done):
            return f"has no {done} x {done} {key} of finite numbers (tasks_done is {done})"
    final = results["final"]
    if not isinstance(final, dict):
        return f"has a 'final' of {_shown(final)}, not an object of figures"
    for key in (*FINAL_REQUIRED, *FINAL_OPTIONAL):
        value = final.get(key)
        if not _finite(value) and (key in FINAL_REQUIRED or value is not None):
            return f"has final.{key} = {_shown(value)}, not a finite number"
    for key in ("wall_time_s", "peak_rss_mib"):
        if results.get(key) is not None and not _finite(results[key]):
            return f"has {key} = {_shown(results[key])}, not a finite number"
    for key in ("capacity_per_task", "nonzero_capacity_per_task"):
        value = results.get(key)
        if value is not None and not (isinstance(value, list) and all(map(_finite, value))):
            return f"has {key} = {_shown(value)}, not a list of finite numbers"
    return None


def lower_triangle(matrix: Any, size: Any) -> bool:
    """Whether ``matrix`` has ``size`` rows with finite numbers at and below the diagonal."""
    if not isinstance(size, int) or size < 1 or not isinstance(matrix, list):
        return False
    if len(matrix) != size:
        return False
    return all(
        isinstance(row, list) and len(row) > i and all(map(_finite, row[: i + 1]))
        for i, row in enumerate(matrix)
    )


def find_runs(paths: Sequence[str | Path]) -> Found:
    """Every results.json under ``paths`` (directories are searched recursively), sorted."""
    found = Found()
    files: set[Path] = set()
    for path in map(Path, paths):
        if not path.exists():
            raise CompareError(
                f"{path} does not exist. Fix: pass a multirun directory, run directories "
                "or results.json files."
            )
        files |= set(path.rglob("results.json")) if path.is_dir() else {path}
        if path.is_dir():  # a sweep's failed job: failed.json and no results
            failed = {f.parent for f in path.rglob("failed.json")}
            found.incomplete += sorted(d for d in failed if not (d / "results.json").exists())
    for file in sorted(files):
        try:
            results = read_results(file)
        except ValueError as err:
            print(f"Warning: skipped {file}: it {err}", file=sys.stderr)
            found.bad.append((file, str(err)))
            continue
        if results.get("status") == "complete":
            found.complete.append((file.parent, results))
        else:
            found.incomplete.append(file.parent)
    drop_duplicates(found)
    return found


def drop_duplicates(found: Found) -> None:
    """Count a run once when another with the same config and seed was read first (a copy
    of one run would otherwise pass for a second seed); warn naming both."""
    kept: dict[Any, Path] = {}
    unique = []
    for run_dir, results in found.complete:
        identity = (experiment_key(results), json.dumps(results.get("config", {}).get("seed")))
        if identity in kept:
            found.duplicates.append((run_dir, kept[identity]))
            print(
                f"Warning: {run_dir} repeats {kept[identity]} (the same config and seed); "
                "it is counted once",
                file=sys.stderr,
            )
            continue
        kept[identity] = run_dir
        unique.append((run_dir, results))
    found.complete = unique


def find_wandb_runs(path: str, group: str | None) -> Found:
    """The same as :func:`find_runs`, from the W&B API: runs of ``ENTITY/PROJECT`` (in
    ``group``) whose summary holds the ``results`` that :class:`den.loggers.wandb.WandbLogger`
    stores at the end of a run."""
    from den.utils.wandb_key import has_wandb_key

    if not has_wandb_key():
        raise CompareError(
            "--wandb reads runs from the W&B servers, which needs an API key. Fix: set "
            "WANDB_API_KEY or run `wandb login`; for offline runs, pass their run directories "
            "instead (python -m den.compare outputs/multirun/...)."
        )
    import wandb

    filters = {"group": group} if group else None
    found = Found()
    try:
        api_runs = list(wandb.Api().runs(path, filters=filters))
    except (ValueError, wandb.errors.Error) as err:
        raise CompareError(
            f"W&B could not list the runs of {path!r} ({err}). Fix: pass --wandb ENTITY/PROJECT "
            "of a project you can read, and check the network."
        ) from err
    for run in api_runs:
        where = Path(f"wandb:{path}/{run.id}")
        results = dict(run.summary.get("results") or {})
        if run.state != "finished" or not results:
            found.incomplete.append(where)
            continue
        config = {k: v for k, v in dict(run.config).items() if not k.startswith("_")}
        results = {**results, "status": "complete", "config": config}
        problem = complete_problem(results)
        if problem:
            print(f"Warning: skipped {where}: it {problem}", file=sys.stderr)
            found.bad.append((where, problem))
        else:
            found.complete.append((where, results))
    drop_duplicates(found)
    return found


# ------------------------------------------------------------------------------ figures of a run
def learned(matrix: list[list[float | None]]) -> float:
    """Mean of the diagonal: each task's value right after it was learned."""
    return statistics.fmean(float(matrix[j][j]) for j in range(len(matrix)))


def run_values(results: dict[str, Any]) -> dict[str, float]:
    """Every table/CSV column of one run (NaN where the run does not record it)."""
    final = results.get("final", {})

    def value(key: str, default: float = math.nan) -> float:  # null: not recorded
        return float(default if final.get(key) is None else final[key])

    out = {key: value(key) for key in ("avg_acc", "avg_auroc")}
    out["learned_acc"] = learned(results["acc_matrix"])
    out["learned_auroc"] = learned(results["auroc_matrix"])
    out["bwt"] = value("bwt", metrics.backward_transfer(results["acc_matrix"]))
    out["forgetting"] = value("forgetting", metrics.forgetting(results["acc_matrix"]))
    out["auroc_bwt"] = metrics.backward_transfer(results["auroc_matrix"])  # older runs lack the key
    out["auroc_forgetting"] = metrics.forgetting(results["auroc_matrix"])
    out["capacity"] = value("capacity")
    out["nonzero_capacity"] = value("nonzero_capacity")
    wall = results.get("wall_time_s")
    out["wall_time_s"] = float(wall) if wall is not None else math.nan
    peak = results.get("peak_rss_mib")  # not recorded by runs older than the key
    out["peak_rss_mib"] = float(peak) if peak else math.nan
    return out


def average_curve(results: dict[str, Any], metric: str) -> list[float]:
    """Average over the tasks seen after each task: [T] (row i of the matrix, tasks <= i)."""
    matrix = results[METRICS[metric].matrix]
    return [statistics.fmean(float(v) for v in row[: i + 1]) for i, row in enumerate(matrix)]


def config_value(results: dict[str, Any], dotted: str) -> Any:
    node: Any = results.get("config", {})
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise CompareError(
                f"--label {dotted}: a run has no config key {dotted!r}. Fix: pass a dotted key "
                "of the runs' config (e.g. strategy.lam), or --label auto."
            )
        node = node[part]
    return node


def method_of(results: dict[str, Any]) -> str:
    """The strategy config chosen (results.json's ``method``); ``strategy.name`` for runs
    recorded before the key."""
    return str(results.get("method") or section_of(results, "strategy").get("name"))


def section_of(results: dict[str, Any], key: str) -> dict[str, Any]:
    """The config section ``key`` of a run ({} when the file has none or not an object)."""
    config = results.get("config")
    node = config.get(key) if isinstance(config, dict) else None
    return node if isinstance(node, dict) else {}


# ------------------------------------------------------------------------------ sections, groups
# Config keys that never make two runs different experiments.
RUN_ONLY_KEYS = (
    "seed",
    "paths",
    "resume",
    "threads",
    "device",
    "logger",
    "trainer.progress",
    "stream.root",  # where the data lives, not which data
    "stream.download",
    "stream.source",  # torchvision files or the same images as a folder
)


def flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """{dotted key: JSON text of the value} of a nested config."""
    if not isinstance(node, dict):
        return {prefix: json.dumps(node)}
    out: dict[str, str] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _kept(key: str) -> bool:
    return not any(key == r or key.startswith(r + ".") for r in RUN_ONLY_KEYS)


def experiment_key(results: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The resolved config without what only distinguishes runs of one experiment."""
    flat = flatten(results.get("config", {}))
    return tuple(sorted((k, v) for k, v in flat.items() if _kept(k)))


def stream_key(results: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The stream's config: runs are only ranked against runs with the same one."""
    return tuple((k, v) for k, v in experiment_key(results) if k.startswith("stream."))


@dataclass
class Group:
    """The runs of one method and setting in one section (typically several seeds)."""

    label: str
    method: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)


@dataclass
class Section:
    """The runs of one stream: one table, one set of plots."""

    title: str
    slug: str
    groups: list[Group] = field(default_factory=list)
    table: Any = None  # pandas DataFrame: one row per group


def split_sections(runs: list[tuple[Path, dict]], label_key: str = "auto") -> list[Section]:
    """One section per stream config, in the order its first run appears."""
    by_stream: dict[Any, list[tuple[Path, dict]]] = {}
    for run_dir, results in runs:  # runs of one stream and length: matrices of one size
        key = (stream_key(results), results["tasks_done"])
        by_stream.setdefault(key, []).append((run_dir, results))
    sections = []
    for members in by_stream.values():
        first = members[0][1]
        stream = first.get("stream") or section_of(first, "stream").get("name", "stream")
        experiments = sorted({str(r.get("experiment", "")) for _, r in members} - {""})
        title = f"{stream}, {first['tasks_done']} tasks"
        if experiments and experiments != [stream]:
            title += f" (experiment {', '.join(experiments)})"
        sections.append(Section(title, slug_of(stream), group_runs(members, label_key)))
    slugs = [s.slug for s in sections]
    for section in sections:  # two configs of one stream (e.g. sample counts) stay apart
        if slugs.count(section.slug) > 1:
            section.slug += f"_{slugs[: sections.index(section)].count(section.slug) + 1}"
            slugs = [s.slug for s in sections]
    return sections


def slug_of(name: Any) -> str:
    """A file-name part from a stream's name as a results file gives it (untrusted): letters,
    digits, ``-``, ``_`` and ``.`` only, no leading dot, at most 40 characters."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).lstrip("._")[:40]
    return slug or "stream"


def group_runs(runs: list[tuple[Path, dict]], label_key: str = "auto") -> list[Group]:
    """Groups in the order their first run appears.

    ``auto``: runs of one method with the same config up to the seed form a group named by
    the method; groups of one method with different settings get the (at most three) keys
    they differ in appended. Any other value is a dotted config key whose value names the
    group.
    """
    if label_key != "auto":
        groups: dict[str, Group] = {}
        for run_dir, results in runs:
            label = json.dumps(config_value(results, label_key)).strip('"')
            group = groups.setdefault(label, Group(label, method_of(results)))
            group.runs.append(results)
            group.dirs.append(run_dir)
        return list(groups.values())
    by_key: dict[Any, Group] = {}
    for run_dir, results in runs:
        key = (method_of(results), experiment_key(results))
        group = by_key.setdefault(key, Group(key[0], key[0]))
        group.runs.append(results)
        group.dirs.append(run_dir)
    shown_keys: dict[Any, list[str]] = {}
    for method, config in by_key:
        twins = [dict(c) for m, c in by_key if m == method and c != config]
        if not twins:
            continue
        mine = dict(config)
        differs = sorted(
            {k for t in twins for k in set(t) | set(mine) if t.get(k) != mine.get(k)}
            - {"strategy.name"}
        )
        shown_keys[(method, config)] = [
            f"{k.rsplit('.', 1)[-1]}={mine[k]}" for k in differs if k in mine
        ]
    for limit in (3, None):  # three keys, or every key where three leave two labels alike
        for key, shown in shown_keys.items():
            extra = f", +{len(shown) - 3} more" if limit and len(shown) > limit else ""
            if shown:
                label = f"{key[0]} ({', '.join(shown[:limit])}{extra})".replace('"', "")
                by_key[key].label = label
        labels = [g.label for g in by_key.values()]
        if len(set(labels)) == len(labels):
            break
    return list(by_key.values())


# ------------------------------------------------------------------------------ statistics
def mean_std(values: list[float]) -> tuple[float, float]:
    """(mean, sample standard deviation; 0 for one value): the one spread of every table
    and figure of a comparison."""
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def mean_matrix(group: Group, metric: str) -> list[list[float | None]]:
    """Element-wise mean of the group's matrices [T, T]; None above the diagonal."""
    mats = [r[METRICS[metric].matrix] for r in group.runs]
    size = min(len(m) for m in mats)
    return [
        [statistics.fmean(float(m[i][j]) for m in mats) if j <= i else None for j in range(size)]
        for i in range(size)
    ]
