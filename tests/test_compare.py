"""``python -m den.compare``: groups runs by config up to the seed, reports mean ± std, plots."""

from __future__ import annotations

import csv
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import den.train as train_module
from den.config.store import register_configs
from den.reports.compare import compare, main
from den.reports.runs import CompareError, average_curve

from conftest import REPO_ROOT, TINY_PMNIST

PLOTS = {
    metric: (
        f"avg_{metric}_curve.png",
        f"{metric}_per_task.png",
        f"{metric}_vs_capacity.png",
        f"{metric}_vs_wall_time.png",
        f"{metric}_matrices.png",
    )
    for metric in ("acc", "auroc")
}


@pytest.fixture(scope="module")
def sweep(tiny_mnist_root, tmp_path_factory) -> Path:
    """finetune with seeds 0 and 1, stl with seed 0, laid out as a multirun directory."""
    register_configs()
    root = tmp_path_factory.mktemp("multirun")
    for i, (strategy, seed) in enumerate([("finetune", 0), ("finetune", 1), ("stl", 0)]):
        with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
            cfg = compose(
                "config",
                overrides=[
                    *TINY_PMNIST,
                    f"strategy={strategy}",
                    f"seed={seed}",
                    f"stream.root={tiny_mnist_root}",
                    f"paths.output_dir={root / str(i)}",
                ],
            )
        train_module.run(cfg)
    return root


def table_head(report: str) -> str:
    return next(line for line in report.splitlines() if line.startswith("| method |"))


def rewrite(run: Path, change) -> dict:
    """Apply ``change`` to the results.json of ``run``; return the new content."""
    results = json.loads((run / "results.json").read_text())
    change(results)
    (run / "results.json").write_text(json.dumps(results))
    return results


def test_report_groups_seeds_and_gives_mean_and_std(sweep, tmp_path):
    report = compare([sweep], out=tmp_path / "report").read_text()
    finetune = [
        json.loads((sweep / str(i) / "results.json").read_text())["final"]["avg_acc"]
        for i in (0, 1)
    ]
    row = next(line for line in report.splitlines() if line.startswith("| finetune |"))
    mean, std = statistics.fmean(finetune), statistics.stdev(finetune)
    assert f"| finetune | 2 | {mean:.4f} ± {std:.4f} |" in row
    assert any(line.startswith("| stl | 1 |") for line in report.splitlines())
    for png in PLOTS["acc"]:
        assert (tmp_path / "report" / png).stat().st_size > 10_000
        assert f"]({png})" in report
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(PLOTS["acc"])  # self-contained
    assert "<td>finetune</td><td>2</td>" in page
    csv_rows = (tmp_path / "report" / "summary.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 3
    # accuracy when learned: the mean of the accuracy matrix's diagonal
    matrix = json.loads((sweep / "0" / "results.json").read_text())["acc_matrix"]
    learned = statistics.fmean(matrix[j][j] for j in range(len(matrix)))
    header = csv_rows[0].split(",")
    first = next(r for r in csv.DictReader(csv_rows) if r["run_dir"].endswith("/0"))
    assert "learned_acc" in header and float(first["learned_acc"]) == pytest.approx(learned)


def test_metric_auroc_ranks_and_plots_by_auroc(sweep, tmp_path):
    assert main([str(sweep), "--out", str(tmp_path / "auroc"), "--metric", "auroc"]) == 0
    report = (tmp_path / "auroc" / "report.md").read_text()
    for png in PLOTS["auroc"]:
        assert (tmp_path / "auroc" / png).stat().st_size > 10_000
        assert f"]({png})" in report
    finals: dict[str, list[float]] = {}
    for i, label in ((0, "finetune"), (1, "finetune"), (2, "stl")):
        results = json.loads((sweep / str(i) / "results.json").read_text())
        finals.setdefault(label, []).append(results["final"]["avg_auroc"])
        # the AUROC curve ends at the run's final average AUROC
        assert average_curve(results, "auroc")[-1] == pytest.approx(results["final"]["avg_auroc"])
    table = [line.split("|")[1].strip() for line in report.splitlines() if line[:2] == "| "]
    ranked = [label for label in table if label in finals]
    assert sorted(ranked) == ["finetune", "stl"]
    assert ranked[0] == max(finals, key=lambda label: statistics.fmean(finals[label]))
    assert "AUROC when learned" in report
    head = [cell.strip() for cell in table_head(report).split("|")]
    assert "BWT (AUROC)" in head and "BWT" not in head  # accuracy's BWT is not shown


def test_metric_auroc_gives_backward_transfer_and_forgetting_on_auroc(sweep, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(sweep / "0", run)  # finetune, 2 tasks
    results = json.loads((run / "results.json").read_text())
    results["auroc_matrix"] = [[0.9, None], [0.7, 0.8]]  # task 1 loses 0.2 AUROC
    (run / "results.json").write_text(json.dumps(results))
    report = compare([run], out=tmp_path / "out", metric="auroc").read_text()
    lines = report.splitlines()
    head = [c.strip() for c in table_head(report).split("|")[1:-1]]
    row = [c.strip() for c in next(x for x in lines if x.startswith("| finetune |")).split("|")]
    cells = dict(zip(head, row[1:-1], strict=True))
    # one run: the value alone, no "± 0.0000"
    assert cells["BWT (AUROC)"] == "-0.2000"
    assert cells["forgetting (AUROC)"] == "0.2000"
    assert cells["AUROC when learned"] == "0.8500"
    assert cells["peak MiB"] == f"{results['peak_rss_mib']:.0f}"
    assert not any("±" in line for line in lines if line.startswith("| "))
    # the accuracy report of the same run keeps accuracy's BWT (not the AUROC one)
    acc = compare([run], out=tmp_path / "acc").read_text()
    assert f"| {results['final']['bwt']:+.4f} |" in acc and "BWT (AUROC)" not in acc


def test_unfinished_runs_are_listed_not_averaged(sweep, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(sweep, runs)
    results = json.loads((runs / "1" / "results.json").read_text())
    results["status"] = "running"
    (runs / "1" / "results.json").write_text(json.dumps(results))
    report = compare([runs]).read_text()
    assert "| finetune | 1 |" in report
    assert "Not complete" in report
    assert "- `1`" in report.split("Not complete")[1]  # relative to the report beside it


def test_same_strategy_with_different_settings_is_two_groups(sweep, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(sweep, runs)
    results = json.loads((runs / "1" / "results.json").read_text())
    results["config"]["trainer"]["lr"] = 0.5
    (runs / "1" / "results.json").write_text(json.dumps(results))
    report = compare([runs]).read_text()
    assert "| finetune (lr=0.001) | 1 |" in report and "| finetune (lr=0.5) | 1 |" in report


def test_nothing_to_compare_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert "missing does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2  # the same status as a missing path
    assert "no complete run" in capsys.readouterr().err
    with pytest.raises(CompareError, match="no results.json at all"):
        compare([tmp_path / "empty"])


class FakeRun:
    """What wandb.Api().runs yields, built from a run logged by WandbLogger."""

    def __init__(self, results: dict, state: str = "finished") -> None:
        from den.loggers.wandb import compact_results

        self.id = f"run{results['seed']}{results['strategy']}"
        self.state = state
        self.summary = compact_results(results)
        self.config = {**results["config"], "_wandb": {}}


def test_wandb_mode_reads_the_same_figures_from_the_api(sweep, tmp_path, monkeypatch):
    import wandb

    local = compare([sweep], out=tmp_path / "local").read_text()
    all_results = [json.loads((sweep / str(i) / "results.json").read_text()) for i in range(3)]
    seen = {}

    class FakeApi:
        def runs(self, path, filters=None):
            seen.update(path=path, filters=filters)
            return [FakeRun(r) for r in all_results] + [FakeRun(all_results[0], "crashed")]

    monkeypatch.setattr(wandb, "Api", FakeApi)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    remote = compare([], out=tmp_path / "remote", wandb_path="me/den", wandb_group="g1")
    text = remote.read_text()
    assert seen == {"path": "me/den", "filters": {"group": "g1"}}
    table = [line for line in local.splitlines() if line.startswith("| ")]
    assert table == [line for line in text.splitlines() if line.startswith("| ")]
    assert "Not complete" in text  # the crashed run is listed, not averaged


def test_methods_sharing_a_strategy_name_are_told_apart(sweep, tmp_path):
    """den_pmnist and den both record strategy.name=den: the config chosen keeps them apart."""
    runs = tmp_path / "runs"
    shutil.copytree(sweep, runs)

    def as_method(method: str, sigma: float):
        def change(results: dict) -> None:
            results["method"] = method
            results["config"]["strategy"]["sigma"] = sigma

        return change

    rewrite(runs / "0", as_method("den_pmnist", 0.01))
    rewrite(runs / "1", as_method("den", 0.05))
    report = compare([runs]).read_text()
    assert "| den_pmnist | 1 |" in report and "| den | 1 |" in report
    assert "sigma" not in table_head(report)


def test_settings_of_one_method_keep_a_row_each_when_three_keys_do_not_tell_them_apart(
    sweep, tmp_path
):
    """Three settings of one method differing in four keys, the first three alike for two of
    them: each keeps its own row, named by every key it differs in."""
    from den.reports.runs import group_runs

    def run(a: int, b: int, c: int, d: float) -> tuple[Path, dict]:
        strategy = {"name": "den", "a": a, "b": b, "c": c, "d": d}
        return tmp_path, {"method": "den_x", "config": {"strategy": strategy}}

    groups = group_runs([run(1, 1, 1, 0.1), run(1, 1, 1, 0.2), run(2, 2, 2, 0.1)])
    labels = [g.label for g in groups]
    assert len(set(labels)) == 3, labels
    assert "den_x (a=1, b=1, c=1, d=0.1)" in labels and "den_x (a=1, b=1, c=1, d=0.2)" in labels


def test_streams_get_a_table_each_never_one_ranking(sweep, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(sweep, runs)

    def other_stream(results: dict) -> None:
        results["stream"] = results["config"]["stream"]["name"] = "split_mnist"

    rewrite(runs / "2", other_stream)
    report = compare([runs], out=tmp_path / "out").read_text()
    assert report.count("| method |") == 2
    assert "## pmnist, 2 tasks" in report and "## split_mnist, 2 tasks" in report
    for png in PLOTS["acc"]:
        assert (tmp_path / "out" / f"pmnist_{png}").is_file()
        assert (tmp_path / "out" / f"split_mnist_{png}").is_file()
    section = report.split("## split_mnist")[1]
    assert "| stl | 1 |" in section and "finetune" not in section.split("Runs:")[0]


def test_bad_results_files_are_named_skipped_and_the_rest_reported(sweep, tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(sweep, runs)
    bad = {
        "corrupt": '{"status": "complete", "acc_mat',
        "list": "[]",
        "no_config": json.dumps({"status": "complete", "final": {}}),
        "bad_matrix": json.dumps(
            {
                "status": "complete",
                "config": {},
                "final": {},
                "tasks_done": 2,
                "acc_matrix": [[0.9]],
                "auroc_matrix": [[0.9], [0.8, 0.7]],
            }
        ),  # fmt: skip
    }
    for name, text in bad.items():
        (runs / name).mkdir()
        (runs / name / "results.json").write_text(text)
    assert main([str(runs), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| finetune | 2 |" in report and "| stl | 1 |" in report
    for name, why in (
        ("corrupt", "is not valid JSON"),
        ("list", "holds a JSON list"),
        ("no_config", "has no 'config'"),
        ("bad_matrix", "has no 2 x 2 acc_matrix"),
    ):
        path = runs / name / "results.json"
        assert f"skipped {path}: it {why}" in captured.err
        assert f"`{path}: it {why}" in report


def test_nonzero_capacity_is_shown_beside_stored_capacity_when_recorded(sweep, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(sweep, runs)
    assert "non-zero capacity" in table_head(compare([runs]).read_text())  # runs record it

    def old_run(results: dict) -> None:  # a results.json from before non-zero counting
        del results["final"]["nonzero_capacity"], results["final"]["nonzero_params"]

    for run in ("0", "1", "2"):
        rewrite(runs / run, old_run)
    assert "non-zero capacity" not in table_head(compare([runs]).read_text())

    def sparse(results: dict) -> None:
        results["final"]["nonzero_capacity"] = 0.4321

    rewrite(runs / "2", sparse)
    report = compare([runs]).read_text()
    head = [c.strip() for c in table_head(report).split("|")[1:-1]]
    assert head.index("non-zero capacity") == head.index("capacity") + 1
    stl = [
        c.strip()
        for c in next(x for x in report.splitlines() if x.startswith("| stl |")).split("|")
    ]
    assert stl[1:-1][head.index("non-zero capacity")] == "0.43"
    finetune = next(x for x in report.splitlines() if x.startswith("| finetune |"))
    assert "| – |" in finetune  # not recorded by these runs


def test_help_and_a_whole_report_never_import_torch(sweep, tmp_path):
    code = (
        "import sys\n"
        "from den.reports.compare import main\n"
        f"assert main([{str(sweep)!r}, '--out', {str(tmp_path / 'r')!r}]) == 0\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch imported' if 'torch' in sys.modules else 'no torch')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("no torch")


def test_wandb_without_an_api_key_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["--wandb", "someone/den", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "needs an API key" in err and "WANDB_API_KEY" in err and "Traceback" not in err


def chromium() -> str | None:
    return next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))),
        None,
    )


@pytest.mark.skipif(chromium() is None, reason="no chromium (apt-get install -y chromium)")
def test_html_report_renders_in_a_headless_browser(sweep, tmp_path):
    """The one-file report, opened by a real browser: the screenshot shows the table and
    the plots (non-blank, many colours), and the page needs no other file."""
    from PIL import Image

    out = tmp_path / "report"
    compare([sweep], out=out)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "report.html", alone / "report.html")  # without the PNG files
    shot = tmp_path / "shot.png"
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,2000",
        f"--screenshot={shot}",
        (alone / "report.html").as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2000)
    pixels = list(image.getdata())
    non_white = sum(1 for p in pixels if sum(p) < 3 * 235) / len(pixels)
    colours = len(set(image.resize((320, 500)).getdata()))
    assert non_white > 0.05, f"only {non_white:.1%} of the page is drawn"
    assert colours > 200, f"{colours} colours: the plots did not render"


# ----------------------------------------------------------------- what the figures show
def test_a_copied_run_is_counted_once_with_a_warning_naming_both(sweep, tmp_path, capsys):
    copy = tmp_path / "copies"
    shutil.copytree(sweep, copy)
    shutil.copytree(sweep / "0", copy / "0_again")  # the same config and seed
    report = compare([copy], out=tmp_path / "report").read_text()
    finetune = next(line for line in report.splitlines() if line.startswith("| finetune |"))
    assert finetune.split(" | ")[1] == "2"  # seeds 0 and 1, not three runs
    err = capsys.readouterr().err
    assert f"{copy / '0_again'} repeats {copy / '0'}" in err
    assert "Counted once" in report and "0_again" in report


def captured_figures(monkeypatch) -> dict:
    """The figures den.compare saves, by file name, kept open for inspection."""
    from den.reports import figures

    kept: dict = {}

    def save(self, fig, filename):
        kept[filename] = fig
        self.written.append(self.out / f"{self.prefix}{filename}")
        fig.savefig(self.written[-1], dpi=30)  # the page embeds it; the figure stays open

    monkeypatch.setattr(figures.Figures, "save", save)
    return kept


def test_one_spread_everywhere_bands_inside_the_metric_and_fixed_colours(
    sweep, tmp_path, monkeypatch
):
    # finetune's two seeds far apart: mean ± std would leave [0, 1] without clipping
    rewrite(sweep / "1", lambda r: r["acc_matrix"][0].__setitem__(0, 0.02))
    try:
        figs = captured_figures(monkeypatch)
        report = compare([sweep], out=tmp_path / "report").read_text()
    finally:
        rewrite(sweep / "1", lambda r: None)
    assert "± standard deviation" in report and "± one standard deviation" in report
    curve = figs["avg_acc_curve.png"]
    assert "± 1 std" in curve._suptitle.get_text()
    for ax in curve.axes:
        for band in ax.collections:
            ys = [y for path in band.get_paths() for _, y in path.vertices]
            assert min(ys) >= 0.0 and max(ys) <= 1.0
    image = figs["acc_matrices.png"].axes[0].images[0]
    assert image.get_clim() == (0.0, 1.0)  # the same colours whatever the values


def test_two_methods_are_both_in_view_and_eleven_get_a_zoom(sweep, tmp_path, monkeypatch):
    from den.reports.figures import dodge, zoomed

    figs = captured_figures(monkeypatch)
    compare([sweep], out=tmp_path / "report")
    curve = figs["avg_acc_curve.png"]
    plotted = [a for a in curve.axes if a.get_lines()]
    assert len(plotted) == 1 and len(plotted[0].get_lines()) == 2  # no zoom losing a method
    assert zoomed([0.9, 0.8]) is None
    assert zoomed([0.5 + i / 100 for i in range(11)]) == [10, 9, 8, 7, 6, 5]
    # seven methods that store one network each are set side by side, not on one spot
    xs = dodge([1.04] * 7 + [10.0], log=True)
    assert len(set(xs[:7])) == 7 and xs[7] == 10.0


def test_den_runs_get_their_selection_and_growth_table_and_figure(sweep, tiny_mnist_root, tmp_path):
    """DEN's per-task decisions in the report: selected fraction and units kept per layer,
    and with expansion rounds the validation loss before and after growing; other methods
    get none."""
    register_configs()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                *TINY_PMNIST,
                "strategy.expansion_rounds=2",
                "strategy.expansion_min_drop=0.0",
                f"stream.root={tiny_mnist_root}",
                f"paths.output_dir={tmp_path / 'den'}",
            ],
        )
    train_module.run(cfg)
    results = json.loads((tmp_path / "den" / "results.json").read_text())
    growth = results["tasks"][1]["report"]
    assert len(growth["expansion_val_loss"]) == 2 and growth["expansion_rounds"]
    report = compare([tmp_path / "den", sweep], out=tmp_path / "report").read_text()
    part = report.split(": selection and growth per task")[1]
    head, _, row = part.strip().splitlines()[:3]
    assert "selected fraction" in head and "val loss before growth" in head
    assert "rounds kept" in head
    kept_rounds = sum(not r["undone"] for r in growth["expansion_rounds"])
    assert f" | {kept_rounds:.1f} | " in row
    fraction = growth["selected_fraction"]
    assert row.startswith("| 2 | " + " / ".join(f"{v:.2f}" for v in fraction))
    assert f"{growth['expansion_val_loss'][0]:.4f}" in row
    assert (tmp_path / "report" / "den_growth.png").stat().st_size > 0
    assert report.count("selection and growth per task") == 1  # finetune and stl have none
    only_baselines = compare([sweep], out=tmp_path / "baselines").read_text()
    assert "selection and growth" not in only_baselines
    assert not (tmp_path / "baselines" / "den_growth.png").exists()
