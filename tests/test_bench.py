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
