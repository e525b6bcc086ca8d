"""Choose a setting on validation data within capacity budgets: ``python -m den.choose``.

    python -m den.choose RUNS... --budget-nonzero 1.0 --budget-stored 2.0 [--project-to 10]
        [--prefer accuracy|steps|stored|nonzero] [--tolerance 0.001] [--reference KEY=VALUE,...]
        [--metric auto|acc|auroc] [--keys KEY ...] [--out choice.md]

RUNS are multirun directories, run directories or results.json files (read as
``python -m den.compare`` reads them). Runs are split by stream, and inside a stream the runs
of one method with the same config up to the seed are one *setting* (its seeds are averaged).
A setting is named by the config keys that vary between the settings of a stream (``--keys``
names them instead); runs on different streams with the same values of those keys are the
same setting, so one setting is chosen for every stream given.

For each setting and stream: the validation metric after the last task (the mean of the last
row of ``val_acc_matrix``, or ``val_auroc_matrix`` for one-vs-rest streams), and the non-zero
and stored capacity after the last task (``nonzero_capacity_per_task``,
``capacity_per_task``), each projected linearly to ``--project-to`` tasks from the first and
last task's figure, so that a short stream can stand in for the full one.

The rule:

1. A setting is *within budget* when, on every stream, its projected non-zero capacity is at
   most ``--budget-nonzero`` and its projected stored capacity at most ``--budget-stored``
   base networks (a setting missing on a stream is not).
2. ``--prefer accuracy`` (default): the setting within budget with the largest validation
   metric (summed over the streams).
3. ``--prefer steps`` / ``stored`` / ``nonzero`` (cost settings: phase budgets, growth): a
   setting also needs, on every stream, a validation metric at most ``--tolerance`` below the
   reference's; among those, the one whose runs took the fewest training steps (every phase of
   every task but DEN's sparse head fit, which trains a linear head on cached features), or
   that stores least, or keeps the fewest non-zero weights (both projected); ties go to the
   more accurate. The reference is ``--reference`` (e.g. ``strategy.k_layers=null``: the
   current default; ``method=stl``: separate networks, which need not be within the budgets)
   or else the setting the accuracy rule chooses.

The choice reads only validation figures, capacities, configs and step counts: each
results.json is reduced to :data:`VALIDATION_KEYS` before anything is computed. Test figures
are read afterwards, from the chosen setting's runs alone, and reported below the table.
Exit status: 0 a setting was chosen, 1 none meets the rule, 2 bad arguments or no runs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from den.errors import DenError
from den.reports.runs import (
    CompareError,
    Group,
    experiment_key,
    find_runs,
    make_folder,
    method_of,
    read_results,
    section_of,
    split_sections,
)
from den.utils.files import write_atomic

# What the choice may read from a results.json: no test figure among them.
VALIDATION_KEYS = (
    "status",
    "method",
    "experiment",
    "stream",
    "tasks_done",
    "config",
    "val_acc_matrix",
    "val_auroc_matrix",
    "val_final",
    "nonzero_capacity_per_task",
    "capacity_per_task",
)
# Test figures shown for the chosen setting's runs, read after the choice: results.json
# "final" key -> column title.
TEST_COLUMNS = {
    "avg_acc": "test avg acc",
    "avg_auroc": "test avg AUROC",
    "bwt": "test BWT",
    "forgetting": "test forgetting",
    "nonzero_capacity": "non-zero capacity",
    "capacity": "stored capacity",
}
PREFER = ("accuracy", "steps", "stored", "nonzero")
ABSENT = "<absent>"  # the value of a key a run's config lacks (an option added later)


class ChooseError(CompareError):
    """A bad argument (e.g. a reference that matches no setting): exit status 2."""


def validation_view(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` reduced to :data:`VALIDATION_KEYS`, plus ``steps``: the training steps the
    run took (every phase of every task but the sparse head fit; NaN without task reports)."""
    view = {key: results[key] for key in VALIDATION_KEYS if key in results}
    view["steps"] = training_steps(results.get("tasks"))
    return view


def training_steps(tasks: Any) -> float:
    """Training steps over every phase of every task but the sparse head fit; NaN without
    task reports (or with ones that hold no step counts)."""
    try:
        steps = [
            phase.get("steps", 0)
            for task in tasks
            for name, phase in task["report"].get("phases", {}).items()
            if name != "head_fit"
        ]
        total = float(sum(steps)) if tasks else math.nan
    except (TypeError, AttributeError, KeyError, ValueError):  # an untrusted file's oddities
        return math.nan
    return total if math.isfinite(total) else math.nan


def projected(per_task: Sequence[float] | None, tasks: int | None) -> float:
    """The figure after ``tasks`` tasks if every task after the first adds what the recorded
    ones added on average (the last figure when ``tasks`` is None or already reached)."""
    if not per_task:
        return math.nan
    values = [float(v) for v in per_task]
    if tasks is None or len(values) == tasks or len(values) < 2:
        return values[-1]
    return values[0] + (values[-1] - values[0]) / (len(values) - 1) * (tasks - 1)


def validation_metric(view: dict[str, Any], metric: str) -> float:
    """Mean of the last row of the validation matrix of ``metric`` (acc | auroc)."""
    matrix = view.get(f"val_{metric}_matrix")
    if not matrix:
        return math.nan
    last = [float(v) for v in matrix[-1] if v is not None]
    return statistics.fmean(last) if last else math.nan


# ------------------------------------------------------------------------------ settings
@dataclass
class Score:
    """One setting on one stream, averaged over its runs (seeds)."""

    runs: list[Path]
    val: float
    val_sd: float
    nonzero: float  # after the last task
    nonzero_projected: float
    stored: float
    stored_projected: float
    steps: float


@dataclass
class Setting:
    method: str
    values: dict[str, str]  # swept key -> JSON text of the value (ABSENT when not in config)
    scores: dict[str, Score] = field(default_factory=dict)  # stream slug -> score

    @property
    def label(self) -> str:
        shown = [f"{_short(k, self.values)}={_show(v)}" for k, v in self.values.items()]
        return ", ".join([self.method, *shown])

    def overrides(self) -> str:
        """The swept values as command-line overrides (``strategy.l1=0.085 ...``)."""
        return " ".join(f"{k}={_raw(v)}" for k, v in self.values.items() if v != ABSENT)


def _short(key: str, values: dict[str, str]) -> str:
    """The last part of a dotted key, unless another swept key ends the same way."""
    tail = key.rsplit(".", 1)[-1]
    return tail if sum(k.rsplit(".", 1)[-1] == tail for k in values) == 1 else key


def _show(text: str) -> str:
    """A value for a label: floats to 4 significant digits, strings unquoted."""
    if text == ABSENT:
        return "–"
    value = json.loads(text)
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


def _raw(text: str) -> str:
    """A value as a Hydra override: full precision, lists without spaces."""
    value = json.loads(text)
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _sort_key(setting: Setting) -> list[tuple[int, Any]]:
    key: list[tuple[int, Any]] = [(1, setting.method)]
    for text in setting.values.values():
        value = None if text == ABSENT else json.loads(text)
        if isinstance(value, bool) or value is None or isinstance(value, list | dict):
            key.append((2, "" if value is None else json.dumps(value)))
        elif isinstance(value, int | float):
            key.append((0, float(value)))
        else:
            key.append((1, str(value)))
    return key


def _config_keys(view: dict[str, Any]) -> dict[str, str]:
    """The run's config without run-only keys, the stream's keys and the experiment name."""
    return {
        k: v for k, v in experiment_key(view) if not k.startswith("stream.") and k != "experiment"
    }


def swept_keys(sections: list[Any]) -> list[str]:
    """Config keys whose value differs between two settings of one stream that both have the
    key (a baseline without DEN's keys, or a run older than an option, sweeps nothing), plus
    the keys one setting lacks and another has where that alone tells two settings apart."""
    keys: set[str] = set()
    for section in sections:
        configs = [_config_keys(group.runs[0]) for group in section.groups]
        every = set().union(*configs)
        keys |= {k for k in every if len({c[k] for c in configs if k in c}) > 1}
    for section in sections:
        seen: dict[tuple, dict[str, str]] = {}
        for group in section.groups:
            config = _config_keys(group.runs[0])
            name = (method_of(group.runs[0]), *(config.get(k, ABSENT) for k in sorted(keys)))
            twin = seen.setdefault(name, config)
            if twin is not config:  # same values of the swept keys: add what tells them apart
                keys |= {k for k in set(twin) | set(config) if twin.get(k) != config.get(k)}
    return sorted(keys)


def resolve_keys(names: Sequence[str], sections: list[Any]) -> list[str]:
    """``--keys`` as full dotted keys: ``l1`` is ``strategy.l1`` when that is the only key
    ending in ``.l1``."""
    known = set().union(*(_config_keys(g.runs[0]) for s in sections for g in s.groups))
    resolved = []
    for name in names:
        if name in known:
            resolved.append(name)
            continue
        matches = sorted(k for k in known if k.endswith("." + name))
        if len(matches) != 1:
            raise ChooseError(
                f"--keys {name}: {'no' if not matches else 'more than one'} config key "
                f"{'matches' if not matches else 'match: ' + ', '.join(matches)}. Fix: give "
                "a dotted key of the runs' config, e.g. strategy.l1."
            )
        resolved.append(matches[0])
    return resolved


def score(group: Any, metric: str, project_to: int | None) -> Score:
    views = group.runs
    vals = [validation_metric(v, metric) for v in views]

    def mean(values: list[float]) -> float:
        return statistics.fmean(values) if values else math.nan

    return Score(
        runs=list(group.dirs),
        val=mean(vals),
        val_sd=statistics.stdev(vals) if len(vals) > 1 else 0.0,
        nonzero=mean([projected(v.get("nonzero_capacity_per_task"), None) for v in views]),
        nonzero_projected=mean(
            [projected(v.get("nonzero_capacity_per_task"), project_to) for v in views]
        ),
        stored=mean([projected(v.get("capacity_per_task"), None) for v in views]),
        stored_projected=mean([projected(v.get("capacity_per_task"), project_to) for v in views]),
        steps=mean([v["steps"] for v in views]),
    )


def stream_metric(section: Any, metric: str) -> str:
    """``auto``: AUROC for a one-vs-rest stream (the DEN paper's metric there), else accuracy."""
    if metric != "auto":
        return metric
    kind = section_of(section.groups[0].runs[0], "stream").get("kind")
    return "auroc" if kind == "one_vs_rest" else "acc"


def build_settings(
    sections: list[Any], keys: list[str], metrics: dict[str, str], project_to: int | None
) -> list[Setting]:
    """One setting per method and values of ``keys``; the groups of one stream that agree on
    them (possible with ``--keys``) are pooled as seeds of one setting."""
    settings: dict[tuple, Setting] = {}
    members: dict[tuple, dict[str, Any]] = {}  # setting key -> stream slug -> pooled group
    for section in sections:
        for group in section.groups:
            config = _config_keys(group.runs[0])
            values = {k: config.get(k, ABSENT) for k in keys}
            method = method_of(group.runs[0])
            key = (method, tuple(values.items()))
            settings.setdefault(key, Setting(method, values))
            pooled = members.setdefault(key, {}).get(section.slug)
            if pooled is None:
                members[key][section.slug] = Group(
                    group.label, method, [*group.runs], [*group.dirs]
                )
            else:
                pooled.runs.extend(group.runs)
                pooled.dirs.extend(group.dirs)
    for key, setting in settings.items():
        for section in sections:
            if section.slug in members[key]:
                group = members[key][section.slug]
                setting.scores[section.slug] = score(group, metrics[section.slug], project_to)
    return sorted(settings.values(), key=_sort_key)


# ------------------------------------------------------------------------------ the rule
@dataclass
class Rule:
    budget_nonzero: float
    budget_stored: float
    project_to: int | None = None
    prefer: str = "accuracy"
    tolerance: float = 0.001
    reference: str | None = None  # KEY=VALUE,... naming the reference setting


def within_budget(setting: Setting, streams: list[str], rule: Rule) -> bool:
    return all(
        s in setting.scores
        and setting.scores[s].nonzero_projected <= rule.budget_nonzero
        and setting.scores[s].stored_projected <= rule.budget_stored
        for s in streams
    )


def val_sum(setting: Setting, streams: list[str]) -> float:
    return sum(setting.scores[s].val for s in streams)


def parse_reference(text: str) -> dict[str, Any]:
    """``a.b=1,c=[40,0]`` -> {"a.b": 1, "c": [40, 0]} (commas inside brackets kept)."""
    import yaml

    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    pairs = {}
    for part in parts:
        if "=" not in part:
            raise ChooseError(
                f"--reference {text!r}: {part!r} is not KEY=VALUE. Fix: e.g. --reference "
                "strategy.k_layers=null or --reference strategy.split_train=true."
            )
        key, value = part.split("=", 1)
        pairs[key.strip()] = yaml.safe_load(value)
    return pairs


def find_reference(settings: list[Setting], text: str) -> Setting:
    wanted = parse_reference(text)

    def matches(setting: Setting) -> bool:
        for key, value in wanted.items():
            if key == "method":
                if setting.method != value:
                    return False
                continue
            keys = [k for k in setting.values if k == key or k.endswith("." + key)]
            if len(keys) != 1:
                return False
            recorded = setting.values[keys[0]]
            if recorded == ABSENT or json.loads(recorded) != value:
                return False
        return True

    found = [s for s in settings if matches(s)]
    if len(found) != 1:
        names = "; ".join(s.label for s in settings)
        raise ChooseError(
            f"--reference {text} matches {len(found)} settings (of: {names}). Fix: name one "
            "setting by the keys that vary (KEY=VALUE,...; null for an unset option)."
        )
    return found[0]


@dataclass
class Choice:
    chosen: Setting | None
    eligible: list[Setting]
    reference: Setting | None
    text: str  # the rule in words


def choose(settings: list[Setting], streams: list[str], rule: Rule) -> Choice:
    """Apply ``rule``; reads nothing but the settings' validation scores and capacities."""
    budget = [s for s in settings if within_budget(s, streams, rule)]
    where = f"projected to {rule.project_to} tasks" if rule.project_to else "after the last task"
    stored = f" and {rule.budget_stored:g} stored" if math.isfinite(rule.budget_stored) else ""
    text = (
        f"within {rule.budget_nonzero:g} non-zero{stored} base networks ({where}) on "
        f"{'every stream' if len(streams) > 1 else 'the stream'}"
    )
    if not stored:
        text += ", stored capacity unbounded"
    accurate = max(budget, key=lambda s: val_sum(s, streams), default=None)
    if rule.prefer == "accuracy":
        text += "; then the highest validation metric" + (
            " summed over the streams" if len(streams) > 1 else ""
        )
        return Choice(accurate, budget, None, text)
    if rule.reference:
        reference = find_reference(settings, rule.reference)
        named = f"the reference ({reference.label})"
    else:
        reference = accurate
        named = "the most accurate setting within the budgets"
        if reference is not None:
            named += f" ({reference.label})"
    if reference is None or any(s not in reference.scores for s in streams):
        return Choice(None, [], reference, text + f"; no reference: {named}")
    eligible = [
        s
        for s in budget
        if all(s.scores[t].val >= reference.scores[t].val - rule.tolerance for t in streams)
    ]
    cost_name, cost = {
        "steps": ("the fewest training steps", lambda s: sum(s.scores[t].steps for t in streams)),
        "stored": (
            "the least stored capacity (projected)",
            lambda s: sum(s.scores[t].stored_projected for t in streams),
        ),
        "nonzero": (
            "the least non-zero capacity (projected)",
            lambda s: sum(s.scores[t].nonzero_projected for t in streams),
        ),
    }[rule.prefer]
    text += (
        f"; and, on each stream, a validation metric at most {rule.tolerance:g} below that of "
        f"{named}; then {cost_name}, the more accurate on a tie"
    )
    if rule.prefer == "steps" and any(math.isnan(cost(s)) for s in eligible):
        raise ChooseError(
            "--prefer steps: a run has no per-task reports (its phases' steps). Fix: choose "
            "among runs that record them, or --prefer accuracy."
        )
    chosen = min(eligible, key=lambda s: (cost(s), -val_sum(s, streams)), default=None)
    return Choice(chosen, eligible, reference, text)


# ------------------------------------------------------------------------------ the report
def _num(value: float, fmt: str) -> str:
    return "–" if math.isnan(value) else fmt.format(value)


def test_figures(run_dir: Path) -> dict[str, float] | str:
    """The test figures of one chosen run (results.json "final"), read after the choice."""
    try:
        final = read_results(run_dir / "results.json").get("final", {})
    except ValueError as err:
        return f"unreadable ({err})"
    if not isinstance(final, dict):
        return "unreadable (no final figures)"
    return {k: float(final[k]) for k in TEST_COLUMNS if isinstance(final.get(k), int | float)}


def report(
    settings: list[Setting],
    sections: list[Any],
    metrics: dict[str, str],
    rule: Rule,
    choice: Choice,
    skipped: int,
) -> str:
    """The choice as Markdown: the rule, every setting's validation figures and capacities
    per stream, then (only once chosen) the chosen setting's test figures."""
    streams = [s.slug for s in sections]
    titles = {s.slug: s.title for s in sections}
    count = sum(len(s.scores) for s in settings)
    lines = [
        "# Choice on validation",
        "",
        f"{len(settings)} settings, {count} setting-stream pairs"
        + (f" ({skipped} unfinished or unreadable runs left out)" if skipped else "")
        + f". Rule: {choice.text}. Every figure in this table is a validation figure, a "
        "capacity or a step count.",
        "",
        "Chosen: "
        + (f"**{choice.chosen.label}**" if choice.chosen else "none meets the rule")
        + ".",
        "",
    ]
    lines += settings_table(settings, streams, titles, metrics, rule, choice)
    if choice.chosen is None:
        return "\n".join(lines) + "\n"
    if choice.chosen.overrides():
        lines += ["", f"Overrides of the chosen setting: `{choice.chosen.overrides()}`"]
    # Only now, with the choice made, are test figures read: the chosen setting's runs alone.
    lines += chosen_test_table(choice.chosen, streams, titles)
    return "\n".join(lines) + "\n"


def settings_table(
    settings: list[Setting],
    streams: list[str],
    titles: dict[str, str],
    metrics: dict[str, str],
    rule: Rule,
    choice: Choice,
) -> list[str]:
    """One row per setting and stream: validation figure, capacities, steps, eligibility."""
    proj = f", projected to {rule.project_to}" if rule.project_to else ""
    head = ["setting", "stream", "runs", "val", "sd", "non-zero", f"non-zero{proj}"]
    head += ["stored", f"stored{proj}", "steps", "within budget", "eligible"]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * len(head)) + " |"]
    budget = {id(s) for s in settings if within_budget(s, streams, rule)}
    eligible = {id(s) for s in choice.eligible}
    for setting in settings:
        label = setting.label
        if setting is choice.chosen:
            label = f"**{label}** (chosen)"
        elif setting is choice.reference:
            label += " (reference)"
        for slug in streams:
            sc = setting.scores.get(slug)
            if sc is None:
                lines.append(f"| {label} | {titles[slug]} | – | " + " | ".join(["–"] * 9) + " |")
                continue
            cells = [
                label,
                f"{titles[slug]} ({'AUROC' if metrics[slug] == 'auroc' else 'acc'})",
                ", ".join(f"`{d.name}`" for d in sc.runs),
                _num(sc.val, "{:.4f}"),
                _num(sc.val_sd, "{:.4f}"),
                _num(sc.nonzero, "{:.2f}"),
                _num(sc.nonzero_projected, "{:.2f}"),
                _num(sc.stored, "{:.2f}"),
                _num(sc.stored_projected, "{:.2f}"),
                _num(sc.steps, "{:,.0f}"),
                "yes" if id(setting) in budget else "no",
                "yes" if id(setting) in eligible else "no",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def chosen_test_table(chosen: Setting, streams: list[str], titles: dict[str, str]) -> list[str]:
    """The chosen setting's runs' test figures (read here, after the choice)."""
    lines = [
        "",
        "## Test figures of the chosen setting, read after the choice",
        "",
        "| stream | run | " + " | ".join(TEST_COLUMNS.values()) + " |",
        "| " + " | ".join(["---"] * (len(TEST_COLUMNS) + 2)) + " |",
    ]
    for slug in streams:
        for run_dir in chosen.scores[slug].runs:
            test = test_figures(run_dir)
            cells = (
                [test] + [""] * (len(TEST_COLUMNS) - 1)
                if isinstance(test, str)
                else [_num(test.get(k, math.nan), "{:.4f}") for k in TEST_COLUMNS]
            )
            lines.append(f"| {titles[slug]} | `{run_dir.name}` | " + " | ".join(cells) + " |")
    return lines


def run(
    paths: Sequence[str | Path],
    rule: Rule,
    metric: str = "auto",
    keys: Sequence[str] | None = None,
) -> tuple[Choice, str]:
    """Read the runs under ``paths``, apply ``rule``; returns the choice and the report."""
    found = find_runs(paths)
    if not found.complete:
        raise CompareError(
            f"no complete run in {', '.join(map(str, paths))}. Fix: pass a multirun directory "
            "or run directories of finished runs."
        )
    # From here on the choice sees validation views only; test figures stay on disk.
    views = [(run_dir, validation_view(results)) for run_dir, results in found.complete]
    sections = split_sections(views)
    metrics = {s.slug: stream_metric(s, metric) for s in sections}
    swept = resolve_keys(keys, sections) if keys else swept_keys(sections)
    settings = build_settings(sections, swept, metrics, rule.project_to)
    choice = choose(settings, [s.slug for s in sections], rule)
    skipped = len(found.incomplete) + len(found.bad)
    return choice, report(settings, sections, metrics, rule, choice, skipped)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m den.choose",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 a setting was chosen, 1 none meets the rule, 2 bad arguments "
        "or no runs.",
    )
    parser.add_argument("paths", nargs="+", help="multirun directories, run directories, files")
    parser.add_argument("--budget-nonzero", type=float, required=True, metavar="NETWORKS")
    parser.add_argument(
        "--budget-stored",
        type=float,
        required=True,
        metavar="NETWORKS",
        help="the stored-capacity budget; inf leaves it unbounded",
    )
    parser.add_argument(
        "--project-to",
        type=int,
        metavar="TASKS",
        help="project capacities linearly to this many tasks (default: the last task's)",
    )
    parser.add_argument("--prefer", choices=PREFER, default="accuracy")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.001,
        help="--prefer steps|stored|nonzero: how far below the reference's validation metric a "
        "setting may be, on each stream (default 0.001)",
    )
    parser.add_argument(
        "--reference",
        metavar="KEY=VALUE,...",
        help="--prefer steps|stored|nonzero: the setting the tolerance is measured from "
        "(default: the most accurate setting within the budgets; method=stl names a baseline)",
    )
    parser.add_argument(
        "--metric",
        choices=("auto", "acc", "auroc"),
        default="auto",
        help="validation metric: auto = AUROC on one-vs-rest streams, accuracy elsewhere",
    )
    parser.add_argument("--keys", nargs="+", metavar="KEY", help="the keys that name a setting")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    if args.project_to is not None and args.project_to < 1:
        parser.error("--project-to must be a positive number of tasks")
    rule = Rule(
        budget_nonzero=args.budget_nonzero,
        budget_stored=args.budget_stored,
        project_to=args.project_to,
        prefer=args.prefer,
        tolerance=args.tolerance,
        reference=args.reference,
    )
    try:
        choice, text = run(args.paths, rule, args.metric, args.keys)
        print(text, end="")
        if args.out:
            make_folder(args.out.parent, "--out")
            write_atomic(args.out, text, "pass --out <a new file>")
    except (CompareError, DenError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    return 0 if choice.chosen else 1


if __name__ == "__main__":
    raise SystemExit(main())
