"""``python -m den.choose``: the most accurate setting on validation within capacity budgets,
test figures read only for the chosen runs, after the choice. Every run here is a tiny fake
results.json written by the test, whose test figures contradict its validation figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import den.reports.choose as choose_module
from den.reports.choose import VALIDATION_KEYS, main, projected, validation_view

STREAMS = {
    "split": {"name": "split_cifar10", "kind": "split", "num_tasks": 2},
    "binary": {"name": "cifar10_binary", "kind": "one_vs_rest", "num_tasks": 2},
}


def write_run(
    folder: Path,
    strategy: dict,
    val_acc: float,
    *,
    val_auroc: float = 0.9,
    test_acc: float = 0.5,
    nonzero: tuple[float, float] = (0.3, 0.35),
    stored: tuple[float, float] = (1.0, 1.1),
    steps: int = 1000,
    seed: int = 0,
    stream: str = "split",
    method: str = "den_x",
) -> Path:
    """A complete 2-task results.json: validation figures, capacities and ``steps`` training
    steps (split over two phases, plus a sparse head fit the step count leaves out), and test
    figures (``test_acc``) that the choice must not read."""
    matrix = lambda v: [[v, None], [v, v]]  # noqa: E731
    run = {
        "status": "complete",
        "method": method,
        "stream": STREAMS[stream]["name"],
        "tasks_done": 2,
        "config": {
            "stream": STREAMS[stream],
            "strategy": {"name": "den", **strategy},
            "trainer": {"max_iters": 500},
            "seed": seed,
        },
        "val_acc_matrix": matrix(val_acc),
        "val_auroc_matrix": matrix(val_auroc),
        "acc_matrix": matrix(test_acc),
        "auroc_matrix": matrix(test_acc),
        "final": {"avg_acc": test_acc, "avg_auroc": test_acc, "bwt": 0.0, "capacity": stored[1]},
        "nonzero_capacity_per_task": list(nonzero),
        "capacity_per_task": list(stored),
        "tasks": [
            {"report": {"phases": {"sparse": {"steps": 0}}}},
            {
                "report": {
                    "phases": {
                        "selective": {"steps": steps // 2},
                        "head_fit": {"steps": 10**6},
                        "expansion": {"steps": steps - steps // 2},
                    }
                }
            },
        ],
    }
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(run))
    return folder


def chosen(capsys, *argv: str) -> tuple[int, str, str | None]:
    """Run the command; returns its exit status, its report and the chosen setting's label."""
    status = main([*map(str, argv)])
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("Chosen: "))
    label = line.removeprefix("Chosen: **").removesuffix("**.") if "**" in line else None
    return status, out, label


BUDGETS = ("--budget-nonzero", "1.0", "--budget-stored", "2.0")


def test_the_most_accurate_on_validation_within_budget_is_chosen_not_the_best_on_test(
    tmp_path, capsys
):
    write_run(tmp_path / "a", {"l1": 0.1}, val_acc=0.90, test_acc=0.99)
    write_run(tmp_path / "b", {"l1": 0.05}, val_acc=0.92, test_acc=0.10)
    # the most accurate on validation, but it stores 2.5 networks
    write_run(tmp_path / "c", {"l1": 0.01}, val_acc=0.95, stored=(1.0, 2.5), test_acc=0.99)
    status, out, label = chosen(capsys, tmp_path, *BUDGETS)
    assert status == 0 and label == "den_x, l1=0.05"
    assert "Overrides of the chosen setting: `strategy.l1=0.05`" in out
    # the chosen run's test figure is reported after the table, and no other run's
    assert "| `b` | 0.1000 |" in out
    assert "0.9900" not in out


def test_capacity_is_projected_to_the_stated_number_of_tasks(tmp_path, capsys):
    # +0.3 non-zero per task: 0.6 after 2 tasks, 3.0 projected to 10
    write_run(tmp_path / "growing", {"k": 60}, val_acc=0.95, nonzero=(0.3, 0.6))
    write_run(tmp_path / "flat", {"k": 10}, val_acc=0.90, nonzero=(0.3, 0.31))
    assert chosen(capsys, tmp_path, *BUDGETS)[2] == "den_x, k=60"
    assert chosen(capsys, tmp_path, *BUDGETS, "--project-to", "10")[2] == "den_x, k=10"
    assert projected([0.3, 0.6], 10) == pytest.approx(3.0)
    assert projected([0.3, 0.4, 0.6], 3) == 0.6  # the last figure when the stream is that long


def test_seeds_of_one_setting_are_averaged(tmp_path, capsys):
    write_run(tmp_path / "a0", {"lam": 1}, val_acc=0.99, seed=0)
    write_run(tmp_path / "a1", {"lam": 1}, val_acc=0.81, seed=1)  # mean 0.90
    write_run(tmp_path / "b0", {"lam": 2}, val_acc=0.92, seed=0)
    write_run(tmp_path / "b1", {"lam": 2}, val_acc=0.92, seed=1)
    status, out, label = chosen(capsys, tmp_path, *BUDGETS)
    assert label == "den_x, lam=2"
    assert "| `a0`, `a1` | 0.9000 | 0.1273 |" in out


def test_one_setting_for_every_stream_auroc_on_one_vs_rest(tmp_path, capsys):
    """Split runs are scored by validation accuracy, one-vs-rest runs by validation AUROC, and
    the setting with the largest sum wins; a setting missing on a stream cannot be chosen."""
    for name, split_acc, split_auroc, bin_acc, bin_auroc in [
        ("ref", 0.88, 0.90, 0.80, 0.91),
        ("a", 0.89, 0.50, 0.10, 0.905),  # +0.01 - 0.005: the largest sum
        ("b", 0.882, 0.99, 0.99, 0.911),  # +0.002 + 0.001, the best by the wrong metrics
    ]:
        for stream, acc, auroc in [
            ("split", split_acc, split_auroc),
            ("binary", bin_acc, bin_auroc),
        ]:
            write_run(tmp_path / f"{stream}-{name}", {"gl": name}, val_acc=acc, val_auroc=auroc,
                      stream=stream)  # fmt: skip
    write_run(tmp_path / "split-c", {"gl": "c"}, val_acc=0.99, stream="split")  # split only
    status, out, label = chosen(capsys, tmp_path, *BUDGETS)
    assert label == "den_x, gl=a"
    assert "cifar10_binary, 2 tasks (AUROC)" in out and "split_cifar10, 2 tasks (acc)" in out
    assert chosen(capsys, tmp_path, *BUDGETS, "--metric", "acc")[2] == "den_x, gl=b"


def test_prefer_steps_takes_the_cheapest_setting_within_tolerance_of_the_reference(
    tmp_path, capsys
):
    write_run(tmp_path / "full", {"selective_iters": None}, val_acc=0.900, steps=1000)
    write_run(tmp_path / "half", {"selective_iters": 500}, val_acc=0.8995, steps=750)
    write_run(tmp_path / "tenth", {"selective_iters": 100}, val_acc=0.880, steps=200)
    # more accurate and cheap, but past the non-zero budget
    write_run(tmp_path / "wide", {"selective_iters": 50}, val_acc=0.95, steps=100, nonzero=(1, 2))
    reference = ("--reference", "strategy.selective_iters=null")
    status, out, label = chosen(capsys, tmp_path, *BUDGETS, "--prefer", "steps", *reference)
    assert label == "den_x, selective_iters=500"
    assert "(reference)" in out and "| 750 |" in out  # the head fit's steps are not counted
    # a tolerance of 0.03 lets the tenth budget in
    tolerant = ("--tolerance", "0.03")
    assert chosen(capsys, tmp_path, *BUDGETS, "--prefer", "steps", *reference, *tolerant)[2] == (
        "den_x, selective_iters=100"
    )
    # without --reference the reference is the most accurate setting within the budgets
    assert chosen(capsys, tmp_path, *BUDGETS, "--prefer", "steps")[2] == (
        "den_x, selective_iters=500"
    )


def test_prefer_stored_picks_the_growth_setting_that_stores_least(tmp_path, capsys):
    for name, k_layers, val, stored in [
        ("ref", None, 0.90, (1.0, 1.10)),
        ("narrow", [40, 0], 0.8995, (1.0, 1.08)),  # within 0.001, stores less: chosen
        ("tiny", [10, 0], 0.85, (1.0, 1.02)),  # stores least, 5 points less accurate
        ("wide", [50, 0], 0.91, (1.0, 1.12)),  # the most accurate, stores most
    ]:
        write_run(tmp_path / name, {"k_layers": k_layers}, val_acc=val, stored=stored)
    argv = (*BUDGETS, "--prefer", "stored", "--reference", "k_layers=null")
    status, out, label = chosen(capsys, tmp_path, *argv)
    assert label == "den_x, k_layers=[40, 0]"
    assert "`strategy.k_layers=[40,0]`" in out  # the override to use it


def test_prefer_nonzero_picks_the_smallest_network_within_tolerance_of_separate_networks(
    tmp_path, capsys
):
    """The permuted-MNIST rule: the smallest non-zero capacity whose validation accuracy is
    within 0.5 point of STL's, STL itself far outside the capacity budget."""
    for seed, val in [(0, 0.976), (1, 0.974)]:  # STL: mean 0.975, ten networks
        write_run(tmp_path / f"stl{seed}", {}, val_acc=val, nonzero=(1, 10), stored=(1, 10),
                  seed=seed, method="stl")  # fmt: skip
    for name, l1, val, nonzero in [
        ("dense", 0.01, 0.9735, (0.5, 1.9)),  # the most accurate, the largest
        ("mid", 0.04, 0.9705, (0.4, 1.2)),  # within 0.005 of STL: the smallest such
        ("sparse", 0.08, 0.968, (0.3, 0.8)),  # smaller still, 0.7 point below STL
    ]:
        write_run(tmp_path / name, {"l1": l1}, val_acc=val, nonzero=nonzero, stored=(1, 9))
    argv = ("--budget-nonzero", "2.0", "--budget-stored", "inf", "--prefer", "nonzero")
    reference = ("--reference", "method=stl", "--tolerance", "0.005")
    status, out, label = chosen(capsys, tmp_path, *argv, *reference)
    assert status == 0 and label == "den_x, l1=0.04"
    assert "stl, l1=– (reference)" in out and "the least non-zero capacity" in out
    assert "stored capacity unbounded" in out
    # no setting within 0.1 point of STL: none is chosen, and the exit status says so
    status, out, label = chosen(capsys, tmp_path, *argv, *reference[:2], "--tolerance", "0.001")
    assert status == 1 and label is None


def test_test_figures_are_read_only_for_the_chosen_runs_after_the_choice(
    tmp_path, capsys, monkeypatch
):
    runs = [
        write_run(tmp_path / f"s{i}", {"l1": l1}, val_acc=val, test_acc=test)
        for i, (l1, val, test) in enumerate([(0.1, 0.9, 0.2), (0.2, 0.8, 0.9), (0.3, 0.7, 0.95)])
    ]
    seen: list[dict] = []
    real_view = choose_module.validation_view

    def spy_view(results):
        view = real_view(results)
        seen.append(view)
        return view

    read_after: list[Path] = []
    real_read = choose_module.read_results

    def spy_read(file):
        read_after.append(Path(file).parent)
        return real_read(file)

    monkeypatch.setattr(choose_module, "validation_view", spy_view)
    monkeypatch.setattr(choose_module, "read_results", spy_read)
    status, out, label = chosen(capsys, tmp_path, *BUDGETS)
    assert label == "den_x, l1=0.1"
    assert len(seen) == 3 and all(set(v) <= {*VALIDATION_KEYS, "steps"} for v in seen)
    assert not any("acc_matrix" in v or "final" in v for v in seen)
    assert read_after == [runs[0]]


def test_scrambled_test_figures_change_nothing_but_the_reported_test_column(tmp_path, capsys):
    for i, val in enumerate([0.90, 0.92, 0.91]):
        write_run(tmp_path / f"s{i}", {"lam": i}, val_acc=val, test_acc=0.5)
    before = chosen(capsys, tmp_path, *BUDGETS)[1]
    for path in tmp_path.glob("*/results.json"):
        run = json.loads(path.read_text())
        run["acc_matrix"] = run["auroc_matrix"] = [[0.01, None], [0.99, 0.01]]
        path.write_text(json.dumps(run))
    after = chosen(capsys, tmp_path, *BUDGETS)[1]
    head = lambda text: text.split("## Test figures")[0]  # noqa: E731
    assert head(before) == head(after)


def test_no_setting_within_the_budgets_exits_1_with_the_table(tmp_path, capsys):
    write_run(tmp_path / "a", {"l1": 0.1}, val_acc=0.9, stored=(1.0, 3.0))
    out_file = tmp_path / "report" / "choice.md"
    status, out, label = chosen(capsys, tmp_path / "a", *BUDGETS, "--out", out_file)
    assert status == 1 and label is None and "none meets the rule" in out
    assert out_file.read_text() == out and "Test figures" not in out


def test_a_reference_that_names_no_setting_is_an_error_naming_the_settings(tmp_path, capsys):
    write_run(tmp_path / "a", {"l1": 0.1}, val_acc=0.9)
    write_run(tmp_path / "b", {"l1": 0.2}, val_acc=0.8)
    status = main([str(tmp_path), *BUDGETS, "--prefer", "steps", "--reference", "l1=0.3"])
    err = capsys.readouterr().err
    assert status == 2 and "matches 0 settings" in err and "den_x, l1=0.2" in err
    assert main([str(tmp_path / "missing"), *BUDGETS]) == 2


def test_validation_view_keeps_no_test_figure():
    results = {"final": {"avg_acc": 1}, "acc_matrix": [[1]], "val_acc_matrix": [[0.5]]}
    assert validation_view(results) == {
        "val_acc_matrix": [[0.5]],
        "steps": pytest.approx(float("nan"), nan_ok=True),
    }


def test_the_command_imports_no_torch(tmp_path):
    write_run(tmp_path / "a", {"l1": 0.1}, val_acc=0.9)
    code = (
        "import sys; from den.choose import main; "
        f"status = main([{str(tmp_path)!r}, '--budget-nonzero', '1', '--budget-stored', '2']); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(status)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_a_key_only_some_runs_record_still_tells_settings_apart(tmp_path, capsys):
    """Runs older than an option lack its key: a setting that sets it is still its own."""
    write_run(tmp_path / "old", {"l1": 0.1}, val_acc=0.90)
    write_run(tmp_path / "new", {"l1": 0.1, "keep_zeros": True}, val_acc=0.91)
    status, out, label = chosen(capsys, tmp_path, *BUDGETS)
    assert label == "den_x, keep_zeros=true" and "den_x, keep_zeros=– |" in out


def test_keys_name_the_setting_and_pool_the_runs_that_agree_on_them(tmp_path, capsys):
    """With --keys, runs that differ only elsewhere (an option one seed's code lacked) are
    seeds of one setting."""
    write_run(tmp_path / "a0", {"l1": 0.1}, val_acc=0.95, seed=0)
    write_run(tmp_path / "a1", {"l1": 0.1, "patience": None}, val_acc=0.85, seed=1)
    write_run(tmp_path / "b0", {"l1": 0.2}, val_acc=0.91, seed=0)
    status, out, label = chosen(capsys, tmp_path, *BUDGETS, "--keys", "l1")
    assert label == "den_x, l1=0.2"
    assert "| `a0`, `a1` | 0.9000 |" in out
