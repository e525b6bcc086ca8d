"""experiments/pmnist/choose_cheapest.py: the cost-setting choice reads the validation metric
the user names (accuracy, or AUROC for the one-vs-rest streams) and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "experiments" / "pmnist" / "choose_cheapest.py"


def write_run(folder, selective, split, val_acc, val_auroc, test_acc):
    """A complete 2-task DEN results.json with the fields the choice reads (and a test
    accuracy it must not read)."""
    task = {"report": {"selected_fraction": [0.5, 0.5], "phases": {"selective": {"steps": 10}}}}
    run = {
        "status": "complete",
        "config": {
            "trainer": {"max_iters": 500},
            "strategy": {"selective_iters": selective, "split_iters": split},
        },
        "val_acc_matrix": [[val_acc, None], [val_acc, val_acc]],
        "val_auroc_matrix": [[val_auroc, None], [val_auroc, val_auroc]],
        "acc_matrix": [[test_acc, None], [test_acc, test_acc]],
        "learn_time_s": [1.0, 2.0],
        "tasks": [task, task],
        "nonzero_capacity_per_task": [0.3, 0.35],
        "capacity_per_task": [1.0, 1.1],
    }
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(run))


def choose(runs, metric):
    out = runs.parent / f"choice_{metric}.md"
    cmd = [sys.executable, str(SCRIPT), str(runs), "--keys", "selective_iters", "split_iters",
           "--metric", metric, "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=SCRIPT.parent, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads((runs.parent / f"chosen_{metric}.json").read_text()), out.read_text()


def test_the_metric_decides_which_cheaper_budget_is_within_tolerance(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    write_run(runs / "full", None, None, val_acc=0.80, val_auroc=0.900, test_acc=0.5)
    # half the budgets: the same AUROC (0.0005 below), much lower accuracy, best test accuracy
    write_run(runs / "half", 250, 250, val_acc=0.70, val_auroc=0.8995, test_acc=0.99)

    chosen, table = choose(runs, "auroc")
    assert chosen == {"selective_iters": 250, "split_iters": 250}
    assert "val avg auroc" in table and "0.9000" in table

    chosen, table = choose(runs, "acc")
    assert chosen == {"selective_iters": None, "split_iters": None}
    assert "val avg acc" in table and "0.8000" in table


def test_prefer_stored_picks_the_growth_setting_that_stores_least_within_tolerance(tmp_path):
    """k_layers is a list in results.json; --prefer stored chooses by projected stored
    capacity among the settings within tolerance of the reference's validation accuracy."""
    runs = tmp_path / "runs"
    runs.mkdir()
    settings = {  # name: (k_layers, val acc, stored per task)
        "ref": (None, 0.90, [1.0, 1.10]),
        "narrow": ([40, 0], 0.8995, [1.0, 1.08]),  # within 0.001, stores less: chosen
        "tiny": ([10, 0], 0.85, [1.0, 1.02]),  # stores least, but 5 points less accurate
        "wide": ([50, 0], 0.91, [1.0, 1.12]),  # most accurate, stores most
    }
    for name, (k_layers, val_acc, stored) in settings.items():
        write_run(runs / name, None, None, val_acc=val_acc, val_auroc=0.9, test_acc=0.99)
        path = runs / name / "results.json"
        run = json.loads(path.read_text())
        run["config"]["strategy"] = {"k_layers": k_layers}
        run["capacity_per_task"] = stored
        path.write_text(json.dumps(run))
    out = tmp_path / "choice.md"
    cmd = [sys.executable, str(SCRIPT), str(runs), "--keys", "k_layers", "--prefer", "stored",
           "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=SCRIPT.parent, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "chosen.json").read_text()) == {"k_layers": [40, 0]}
    assert "| [40, 0] |" in out.read_text()
