"""``python -m den.bench`` on a tiny budget: every case is timed against its bare twin and
bench.json has the documented schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO_ROOT


def test_bench_writes_every_case(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    cmd = [
        sys.executable, "-m", "den.bench", "steps=4", "repeats=1", "examples=600",
        "test_examples=300", "hidden=[16,8]", "threads=1", f"hydra.run.dir={tmp_path}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((tmp_path / "bench.json").read_text())
    names = {r["name"] for r in rows}
    expected = {"finetune", "ewc", "evaluate (ms / 1000 examples)"}
    expected |= {
        f"den: {p}"
        for p in ("sparse", "head_fit", "selective", "expansion", "split_train", "split_retrain")
    }
    assert expected <= names
    for row in rows:
        assert row["ms_per_step"] > 0 and row["bare_ms_per_step"] > 0
        paired = sorted(row["ratio_per_repeat"])
        assert paired[0] <= row["ratio"] <= paired[-1]  # the median of the paired ratios
    extra = json.loads((tmp_path / "bench_extra.json").read_text())
    assert extra["peak_rss_mib"] > 0 and extra["threads"] == 1
    assert "| den: expansion |" in proc.stdout


def test_full_run_accounting_adds_up(tmp_path, tiny_mnist_root, run_train):
    """experiments/bench/full_run.py on a real 2-task DEN run: every DEN phase is matched by a
    bare twin at the widths it trained at, and wall = steps + evaluation + other exactly."""
    run_dir = tmp_path / "run"
    run_train(
        "+experiment=pmnist", "stream.download=false", f"stream.root={tiny_mnist_root}",
        "stream.num_tasks=2", "stream.val_size=100", "trainer.max_iters=20",
        "trainer.eval_every=10", "trainer.batch_size=32", "strategy.tau=0",
        "strategy.sigma=0", "logger=none", cwd=run_dir,
    )  # fmt: skip
    results = json.loads((run_dir / "results.json").read_text())
    phases = results["tasks"][1]["report"]["phases"]
    strategy, widths = results["config"]["strategy"], results["tasks"][0]["report"]["widths"]
    added = strategy["k_layers"] or [strategy["k"]] * len(widths)  # den_pmnist: [40, 0]
    assert phases["expansion"]["widths"] == [
        w + a for w, a in zip(widths, added, strict=True)
    ]  # the new units of each layer, before the dead ones are deleted
    assert 0 < phases["selective"]["val_seconds"] < phases["selective"]["seconds"]

    out = tmp_path / "full_run.md"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "experiments/bench/full_run.py", str(run_dir), "--steps", "2",
        "--repeats", "1", "--threads", "1", "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (summary,) = json.loads(out.with_suffix(".json").read_text())
    assert set(summary["per_kind"]) == {
        "sparse", "head_fit", "selective", "expansion", "split_train", "split_retrain"
    }  # fmt: skip
    total_steps = sum(p["steps"] for t in results["tasks"] for p in t["report"]["phases"].values())
    assert sum(k["steps"] for k in summary["per_kind"].values()) == total_steps
    parts = summary["train_s"] + summary["eval_s"] + summary["other_s"]
    assert abs(parts - results["wall_time_s"]) < 1e-6
    assert all(k["bare_s"] > 0 for k in summary["per_kind"].values())
    assert "| split_retrain |" in out.read_text()

    # --no-twins accounts from results.json alone (what conv runs use), and compares runs
    # against the STL run: here a copy of the same run relabelled stl, at half the wall.
    stl_dir = tmp_path / "stl"
    stl_dir.mkdir()
    stl = {**results, "strategy": "stl", "wall_time_s": results["wall_time_s"] / 2}
    (stl_dir / "results.json").write_text(json.dumps(stl))
    cmd = [
        sys.executable, "experiments/bench/full_run.py", str(run_dir), str(stl_dir),
        "--no-twins", "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    den_summary, stl_summary = json.loads(out.with_suffix(".json").read_text())
    assert den_summary["per_kind"] == {
        name: {key: k[key] for key in ("steps", "train_s", "val_s")}
        for name, k in summary["per_kind"].items()
    }
    assert "bare_s" not in den_summary and stl_summary["wall_s"] == results["wall_time_s"] / 2
    assert f"| {den_summary['wall_s']:.0f} | {total_steps - phases['head_fit']['steps']:,}" in (
        out.read_text()
    )
    assert "| 2.00 | 1.00 |" in out.read_text()  # wall / STL, steps / STL


def test_growth_charges_a_new_unit_its_fan_in_and_fan_out(tmp_path):
    """experiments/bench/growth.py: one unit added to the first layer of a 4-input MLP with
    layers of 2 and 2 units costs its 4 input weights and its 2 output weights, and nothing
    is charged to the layer that did not grow."""
    model = {"name": "mlp", "arch": "mlp", "conv_channels": [], "kernel_size": 5, "pool": 2,
             "pools": None, "hidden": [2, 2], "init": "default"}  # fmt: skip
    run = {
        "config": {"model": model},
        "base_params": 100,
        "tasks": [{"report": {"widths": [2, 2]}}, {"report": {"widths": [3, 2], "params": 106}}],
    }
    (tmp_path / "results.json").write_text(json.dumps(run))
    cmd = [sys.executable, "experiments/bench/growth.py", str(tmp_path), "--input-shape", "1", "2", "2"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "| linear-1 | 2 | 3 | 6 | 1.00 |" in proc.stdout
    assert "| linear-2 | 2 | 2 | 0 | 0.00 |" in proc.stdout
