"""``python -m den.bench`` on a tiny budget: every case is timed against its bare twin and
bench.json has the documented schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, TINY_PMNIST


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


def test_threads_mode_summarises_medians_and_reads_the_targets():
    from den.bench_threads import phase_ms, summarise, threads_tables

    results = {
        "tasks": [
            {"report": {"phases": {"sparse": {"steps": 10, "seconds": 0.05}}}},
            {"report": {"phases": {"expansion": {"steps": 20, "seconds": 0.2}}}},
        ]
    }
    assert phase_ms(results) == {"sparse": 5.0, "expansion": 10.0, "all": 8.333}
    walls = {("today", 0): [10, 12, 11], ("today", 1): [40, 44, 42], ("auto", 0): [10, 11, 12],
             ("auto", 1): [13, 14, 15]}  # fmt: skip
    runs = [
        {"variant": v, "neighbours": n, "repeat": i, "threads": 2, "wall_s": w,
         "background_cpus": 0.0, "phase_ms": {"sparse": w / 2, "all": w}}
        for (v, n), ws in walls.items() for i, w in enumerate(ws)
    ]  # fmt: skip
    sweeps = [
        {"launcher": "basic", "repeat": 0, "wall_s": 100.0, "background_cpus": 0.0, "threads": [2, 2]},
        {"launcher": "joblib", "repeat": 0, "wall_s": 55.0, "background_cpus": 0.0, "threads": [1, 1]},
    ]  # fmt: skip
    summary = summarise(runs, sweeps)
    auto_beside = [c for c in summary["runs"] if c["variant"] == "auto" and c["neighbours"] == 1]
    assert auto_beside[0]["wall_s"] == 14 and auto_beside[0]["phase_ms"] == {"sparse": 7, "all": 14}
    record = {
        "settings": {"variants": {"today": {}, "auto": {}}, "neighbours": [0, 1], "default": "auto",
                     "baseline": "today", "sweep_jobs": 2, "cpus": 2, "repeats": 3, "run": ["x=1"]},
        "summary": summary,
    }  # fmt: skip
    text = threads_tables(record)
    assert "| today | 2 | 11.0 | 42.0 | 3.82 |" in text
    assert "| auto | 2 | 11.0 | 14.0 | 1.27 |" in text
    assert "- auto beside 1 busy process / auto alone: 1.27 (target <= 1.5)" in text
    assert "- auto alone / today alone: 1.00 (target <= 1.10)" in text
    assert "- joblib sweep / basic sweep: 0.55 (target <= 0.6)" in text
    assert "| joblib | 55.0 | 1,1 | 0.55 |" in text


@pytest.mark.slow
def test_threads_mode_runs_end_to_end(tiny_mnist_root, tmp_path):
    """mode=threads on a tiny budget: real den.train processes, one busy neighbour, a
    2-job sweep with each launcher; threads.json and threads.md are written."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    run = [*TINY_PMNIST, f"stream.root={tiny_mnist_root}", "logger=none"]
    cmd = [
        sys.executable, "-m", "den.bench", "mode=threads", "load.repeats=1",
        "load.neighbours=[0,1]", "load.sweep_jobs=2", f"hydra.run.dir={tmp_path}",
        "load.run=[" + ",".join(f"'{a}'" for a in run) + "]",
        "~load.variants.today", "~load.variants.2",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "threads.json").read_text())
    assert {(r["variant"], r["neighbours"]) for r in record["runs"]} == {
        ("1", 0),
        ("1", 1),
        ("auto", 0),
        ("auto", 1),
    }
    assert all(r["phase_ms"]["all"] > 0 and r["wall_s"] > 0 for r in record["runs"])
    assert [s["launcher"] for s in record["sweeps"]] == ["basic", "joblib"]
    assert all(s["jobs"] == 2 for s in record["sweeps"])
    assert (tmp_path / "threads.md").read_text().startswith("| variant | threads |")
    assert "auto beside 1 busy process / auto alone" in proc.stdout
