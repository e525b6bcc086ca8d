"""The accuracy-capacity front of a search: ``python -m den.pareto <sweep dir>``.

Reads the study of a ``hparams_search=den_pareto`` search (the optuna journal in the sweep
folder), draws validation accuracy against capacity for every finished trial with the
Pareto-optimal ones marked, lists their settings, and only then reads the *test* figures of
the chosen trials (the front, or ``--choose 3,7``) from their ``results.json``. The choice is
made from the study alone, which holds validation figures and capacities only; test figures
of the other trials are never read.

Writes into ``--out`` (default ``outputs/pareto/<study name>``, never the sweep folder):
``pareto.md``, ``pareto_front.png`` and ``trials.csv`` (every finished trial, its objectives,
settings and folder). With ``--budget-nonzero B [--budget-stored S] [--project-to N]`` (the
budgets of ``python -m den.choose``) the figure's x axis is the non-zero capacity projected to
N tasks, the budget is drawn, and trials over the stored budget are crossed out.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from den.errors import DataError, DenError
from den.reports.objectives import JOURNAL_NAME, OBJECTIVE_LABELS, open_storage
from den.reports.runs import OUT_FIX, CompareError, check_outputs, make_folder, read_results
from den.utils.files import save_figure, write_atomic

# Test figures shown for a chosen trial: results.json's "final" key -> column title.
TEST_COLUMNS = {
    "avg_acc": "test avg acc",
    "avg_auroc": "test avg AUROC",
    "bwt": "test BWT",
    "forgetting": "test forgetting",
}

REPORT_FILES = ("pareto.md", "pareto_front.png", "trials.csv")
# Overrides that only steer the search, left out of the command that reruns one trial.
SEARCH_ONLY = ("hparams_search", "hydra")


@dataclass
class Trial:
    """One finished trial: its objectives (validation figures, capacity) and settings."""

    number: int
    values: dict[str, float]
    params: dict[str, Any]
    job_dir: Path | None
    overrides: list[str] = field(default_factory=list)
    pareto: bool = False


@dataclass
class Front:
    study_name: str
    storage: Path
    objectives: dict[str, str]  # name -> direction
    trials: list[Trial]  # finished trials, by number
    failed: int
    running: int

    @property
    def accuracy(self) -> str:
        """The validation objective drawn on the y axis."""
        return next(n for n in self.objectives if n != "capacity")

    @property
    def pareto(self) -> list[Trial]:
        """The Pareto-optimal trials, smallest capacity first."""
        return sorted((t for t in self.trials if t.pareto), key=lambda t: t.values["capacity"])


@dataclass
class Budgets:
    """Capacity budgets to draw (as ``python -m den.choose`` applies them)."""

    nonzero: float | None = None
    stored: float | None = None
    project_to: int | None = None

    def __bool__(self) -> bool:
        return self.nonzero is not None or self.stored is not None


def trial_capacities(trial: Trial, project_to: int | None) -> tuple[float, float]:
    """(non-zero, stored) capacity of a trial's run projected to ``project_to`` tasks, from
    its results.json's per-task capacities alone (nan when unreadable)."""
    from den.reports.choose import projected

    try:
        results = json.loads((trial.job_dir / "results.json").read_text())
        nonzero = results.get("nonzero_capacity_per_task")
        stored = results.get("capacity_per_task")
        return projected(nonzero, project_to), projected(stored, project_to)
    except (OSError, ValueError, TypeError, AttributeError):
        return float("nan"), float("nan")


def load_front(sweep_dir: Path, study_name: str | None = None, storage: str | None = None) -> Front:
    """The finished trials of the study in ``sweep_dir`` (its ``optuna.journal`` unless
    ``storage`` names another file) and which of them are Pareto-optimal."""
    from optuna.trial import TrialState

    path = Path(storage) if storage else sweep_dir / JOURNAL_NAME
    if not path.is_file():
        raise DataError(
            path,
            "no optuna journal here",
            "pass the sweep folder of a hparams_search=den_pareto search (it holds "
            f"{JOURNAL_NAME}), or --storage <journal file>",
        )
    study, objectives = _open_study(path, sweep_dir, study_name)
    all_trials = study.get_trials(deepcopy=False)
    front_numbers = {t.number for t in study.best_trials}
    trials = []
    for t in all_trials:
        if t.state != TrialState.COMPLETE:
            continue
        trials.append(
            Trial(
                number=t.number,
                values=dict(zip(objectives, t.values, strict=True)),
                params=dict(t.params),
                job_dir=trial_folder(t.user_attrs.get("job_dir"), sweep_dir),
                overrides=recorded_overrides(t.user_attrs.get("overrides")),
                pareto=t.number in front_numbers,
            )
        )
    states = [t.state for t in all_trials]
    return Front(
        study_name=study.study_name,
        storage=path,
        objectives=objectives,
        trials=sorted(trials, key=lambda t: t.number),
        failed=states.count(TrialState.FAIL),
        running=states.count(TrialState.RUNNING),
    )


def _open_study(path: Path, sweep_dir: Path, study_name: str | None) -> tuple[Any, dict[str, str]]:
    """The study (the only one in the journal unless named) and its objectives (name ->
    direction); a DataError unless they are a validation figure and capacity."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        store = open_storage(str(path.absolute()), sweep_dir)
        names = optuna.get_all_study_names(store)
    except Exception as err:  # optuna replays every line: a damaged one stops it anywhere
        raise DataError(
            path,
            f"not a readable optuna journal ({damaged_line(path) or type(err).__name__})",
            "pass the journal of a den search; each line is one JSON record, and a damaged "
            "line can be removed with a text editor (the trials it recorded are lost)",
        ) from None
    if study_name is None:
        if len(names) != 1:
            raise DataError(path, f"holds the studies {names}", "choose one with --study NAME")
        study_name = names[0]
    elif study_name not in names:
        raise DataError(path, f"has no study '{study_name}' (it has {names})", "fix --study")
    study = optuna.load_study(study_name=study_name, storage=store)
    objectives = dict(
        zip(
            study.user_attrs.get("objectives", []),
            [d.name.lower() for d in study.directions],
            strict=False,
        )
    )
    if "capacity" not in objectives or len(objectives) != 2:
        raise DataError(
            path,
            f"study '{study_name}' optimises {list(objectives) or 'unknown objectives'}, not "
            "a validation figure and capacity",
            "draw the front of a hparams_search=den_pareto search",
        )
    return study, objectives


def damaged_line(path: Path) -> str | None:
    """``line N is not a JSON record`` for the first such line of a journal, else None."""
    try:
        with path.open("rb") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    if not isinstance(json.loads(line), dict):
                        raise ValueError
                except ValueError:
                    return f"line {number} is not a JSON record: {line[:60]!r}"
    except OSError as err:
        return f"cannot be read: {err.strerror or err}"
    return None


def trial_folder(recorded: Any, sweep_dir: Path) -> Path | None:
    """The trial's folder as recorded, or, when the sweep folder was moved or copied (from a
    cluster to a laptop), the folder of the same name inside ``sweep_dir``."""
    if not recorded or not isinstance(recorded, str):
        return None
    path = Path(recorded)
    moved = sweep_dir / path.name
    return moved if not path.is_dir() and moved.is_dir() else path


def recorded_overrides(value: Any) -> list[str]:
    """A trial's overrides as the search recorded them ([] when it recorded something else)."""
    if isinstance(value, list) and all(isinstance(o, str) for o in value):
        return list(value)
    return []


def choose(front: Front, numbers: list[int] | None) -> list[Trial]:
    """The trials ``--choose`` names ([] without it: the report then shows the front's)."""
    if not numbers:
        return []
    by_number = {t.number: t for t in front.trials}
    missing = [n for n in numbers if n not in by_number]
    if missing:
        raise DataError(
            front.storage,
            f"trials {missing} of study '{front.study_name}' did not finish",
            f"choose among the finished trials {sorted(by_number)}",
        )
    return [by_number[n] for n in numbers]


def read_test_metrics(job_dir: Path | None) -> dict[str, float] | str:
    """The test figures of one finished run (``results.json`` "final"), or why there are none."""
    if job_dir is None:
        return "no trial folder recorded"
    path = job_dir / "results.json"
    try:
        final = read_results(path).get("final")
    except ValueError as err:
        return f"unreadable {path}: it {err}"
    if not isinstance(final, dict):
        return f"unreadable {path}: it has no final figures"
    return {key: float(final[key]) for key in TEST_COLUMNS if _number(final.get(key))}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def plot_front(front: Front, chosen: list[Trial], path: Path, budgets: Budgets) -> None:
    """:func:`front_figure` as a PNG."""
    from den.reports.plots import pyplot

    fig = front_figure(front, chosen, budgets)
    save_figure(fig, path, OUT_FIX, dpi=120)
    pyplot().close(fig)


def front_figure(front: Front, chosen: list[Trial], budgets: Budgets) -> Any:
    """Validation figure against capacity: every trial, the front as a staircase, a ring on
    each trial chosen with ``--choose``, and the budgets when given."""
    from den.reports.plots import place_labels, pyplot

    plt = pyplot()
    acc = front.accuracy
    x_of = _x_axis(front, budgets)
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    over = _over_stored(front, budgets)
    others = [t for t in front.trials if not t.pareto and t.number not in over]
    ax.scatter([x_of[t.number] for t in others], [t.values[acc] for t in others], c="0.6", s=22,
               label=f"trial ({len(front.trials)} finished)")  # fmt: skip
    pareto = sorted(front.pareto, key=lambda t: x_of[t.number])
    xs, ys = [x_of[t.number] for t in pareto], [t.values[acc] for t in pareto]
    ax.step(xs, ys, where="post", c="tab:red", lw=1.2, alpha=0.7)
    ax.scatter(xs, ys, c="tab:red", s=36, zorder=3, label=f"Pareto-optimal ({len(pareto)})")
    crossed = [t for t in front.trials if t.number in over]
    if crossed:
        ax.scatter([x_of[t.number] for t in crossed], [t.values[acc] for t in crossed],
                   marker="x", c="0.35", s=30, zorder=4,
                   label=f"over the stored budget {budgets.stored:g}")  # fmt: skip
    if chosen:
        ax.scatter([x_of[t.number] for t in chosen], [t.values[acc] for t in chosen],
                   facecolors="none", edgecolors="k", s=130, zorder=5, label="chosen")  # fmt: skip
    if budgets.nonzero is not None:
        ax.axvline(budgets.nonzero, ls="--", c="tab:blue", lw=1,
                   label=f"non-zero budget {budgets.nonzero:g}")  # fmt: skip
    labelled = {t.number: t for t in [*pareto, *chosen]}.values()
    place_labels(ax, [(str(t.number), x_of[t.number], t.values[acc]) for t in labelled])
    projected = f", projected to {budgets.project_to} tasks" if budgets.project_to else ""
    xlabel = f"non-zero capacity{projected}" if budgets else OBJECTIVE_LABELS["capacity"]
    ax.set(xlabel=xlabel, ylabel=OBJECTIVE_LABELS.get(acc, acc))
    ax.set_title(f"{front.study_name}: validation {acc.removeprefix('val_')} vs capacity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def _x_axis(front: Front, budgets: Budgets) -> dict[int, float]:
    """Each trial's x: the study's capacity objective, or with budgets its run's non-zero
    capacity projected to ``budgets.project_to`` tasks."""
    if not budgets:
        return {t.number: t.values["capacity"] for t in front.trials}
    return {t.number: trial_capacities(t, budgets.project_to)[0] for t in front.trials}


def _over_stored(front: Front, budgets: Budgets) -> set[int]:
    if budgets.stored is None:
        return set()
    return {
        t.number
        for t in front.trials
        if trial_capacities(t, budgets.project_to)[1] > budgets.stored
    }


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def rerun_command(trial: Trial) -> str:
    """``python -m den.train`` with the trial's overrides, without the search's own."""
    kept = [o for o in trial.overrides if not o.lstrip("+~").startswith(SEARCH_ONLY)]
    return "python -m den.train " + " ".join(shlex.quote(o) for o in kept)


def write_report(
    front: Front, chosen: list[Trial], out: Path, budgets: Budgets | None = None
) -> Path:
    """``pareto.md``, ``pareto_front.png`` and ``trials.csv`` in ``out``; returns pareto.md.
    ``chosen``: the trials picked with ``--choose`` (ringed; none: the front's test figures
    are shown, unringed)."""
    make_folder(out)
    check_outputs(out, REPORT_FILES)
    acc = front.accuracy
    params = sorted({k for t in front.trials for k in t.params})
    plot_front(front, chosen, out / "pareto_front.png", budgets or Budgets())
    shown = chosen or front.pareto

    write_trials_csv(front, params, out / "trials.csv")

    lines = [
        f"# Accuracy against capacity: study `{front.study_name}`",
        "",
        f"Study: `{front.storage}`; {len(front.trials)} finished trials, {front.failed} failed, "
        f"{front.running} marked running. Objectives: "
        + ", ".join(f"{d} {n} ({OBJECTIVE_LABELS.get(n, n)})" for n, d in front.objectives.items())
        + ". Every figure used to choose is a validation figure or a capacity.",
        "",
        "![front](pareto_front.png)",
        "",
        f"## Pareto-optimal trials ({len(front.pareto)}), smallest capacity first",
        "",
        "| trial | " + " | ".join([acc, "capacity", *params]) + " | folder |",
        "| " + " | ".join(["---"] * (len(params) + 4)) + " |",
    ]
    for t in front.pareto:
        cells = [t.values[acc], t.values["capacity"], *(t.params.get(p, "") for p in params)]
        folder = t.job_dir.name if t.job_dir else ""
        lines.append(f"| {t.number} | " + " | ".join(_fmt(c) for c in cells) + f" | {folder} |")

    # Only now, with the choice made, are test figures read: the chosen trials' alone.
    lines += chosen_test_table(shown, acc)
    lines += ["", "To rerun a chosen trial on its own (add `seed=` for more seeds):", ""]
    lines += [f"- trial {t.number}: `{rerun_command(t)}`" for t in shown if t.overrides]
    report = out / "pareto.md"
    write_atomic(report, "\n".join(lines) + "\n", OUT_FIX)
    return report


def write_trials_csv(front: Front, params: list[str], path: Path) -> None:
    """One row per finished trial: objectives, Pareto-optimal or not, settings, folder."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["trial", *front.objectives, "pareto", *params, "folder"])
    for t in front.trials:
        writer.writerow(
            [
                t.number,
                *(t.values[n] for n in front.objectives),
                int(t.pareto),
                *(t.params.get(p, "") for p in params),
                t.job_dir or "",
            ]
        )
    write_atomic(path, text.getvalue(), OUT_FIX)


def chosen_test_table(chosen: list[Trial], acc: str) -> list[str]:
    """The Markdown table of the chosen trials' test figures (read here, after the choice)."""
    lines = [
        "",
        f"## Test figures of the chosen trials ({len(chosen)}), read after the choice",
        "",
        "| trial | " + " | ".join([acc, "capacity", *TEST_COLUMNS.values()]) + " |",
        "| " + " | ".join(["---"] * (len(TEST_COLUMNS) + 3)) + " |",
    ]
    for t in chosen:
        test = read_test_metrics(t.job_dir)
        head = f"| {t.number} | {_fmt(t.values[acc])} | {_fmt(t.values['capacity'])} | "
        if isinstance(test, str):
            lines.append(head + " | ".join([test] + [""] * (len(TEST_COLUMNS) - 1)) + " |")
        else:
            lines.append(head + " | ".join(_fmt(test.get(k, "n/a")) for k in TEST_COLUMNS) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m den.pareto", description=__doc__.split("\n")[0]
    )
    parser.add_argument("sweep_dir", type=Path, help="the folder of a hparams_search=den_pareto")
    parser.add_argument("--study", help="study name (needed when the journal holds several)")
    parser.add_argument("--storage", help=f"the journal file (default <sweep_dir>/{JOURNAL_NAME})")
    parser.add_argument(
        "--choose",
        help="comma-separated trial numbers whose test figures to show (default: the front)",
    )
    parser.add_argument(
        "--out", type=Path, help="report folder (default: outputs/pareto/<study name>)"
    )
    parser.add_argument("--budget-nonzero", type=float, help="draw this non-zero capacity budget")
    parser.add_argument("--budget-stored", type=float, help="cross out trials over this budget")
    parser.add_argument("--project-to", type=int, help="budgets apply to N tasks (projected)")
    args = parser.parse_args(argv)
    budgets = Budgets(args.budget_nonzero, args.budget_stored, args.project_to)
    try:
        numbers = [int(n) for n in args.choose.split(",")] if args.choose else None
    except ValueError:
        print(f"\nError: --choose {args.choose!r}: give trial numbers like 3,7\n", file=sys.stderr)
        return 2
    try:
        front = load_front(args.sweep_dir, args.study, args.storage)
        chosen = choose(front, numbers)
        out = args.out or Path("outputs") / "pareto" / front.study_name
        report = write_report(front, chosen, out, budgets)
    except DenError as err:
        print(f"\nError: {err}\n", file=sys.stderr)
        return err.exit_code
    except CompareError as err:
        print(f"\nError: {err}\n", file=sys.stderr)
        return 2
    print(f"{len(front.pareto)} Pareto-optimal of {len(front.trials)} finished trials")
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
