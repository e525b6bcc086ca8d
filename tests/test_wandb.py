"""``logger=wandb``: offline runs of the real entry point, read back with wandb's own reader
(``wandb.sdk.internal.datastore``), one W&B run per job of a multirun, and failures of W&B
that leave training and results.json intact."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import den.train as train_module
from den.config.store import register_configs

from conftest import REPO_ROOT

pytest.importorskip("wandb.sdk.internal.datastore", reason="needs wandb<0.30 (offline reader)")

TINY = (
    "+experiment=pmnist",
    "logger=wandb",
    "stream.download=false",
    "stream.num_tasks=2",
    "stream.val_size=50",
    "stream.samples_per_task=200",
    "trainer.max_iters=30",
    "trainer.log_every=10",
    "trainer.progress=false",
    "model.hidden=[16,8]",
)


def read_wandb_run(run_file: Path) -> dict:
    """History rows, summary, config and exit code of an offline ``run-*.wandb`` file."""
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    store = datastore.DataStore()
    store.open_for_scan(str(run_file))
    out: dict = {"history": [], "summary": {}, "config": {}, "exit_code": None, "id": None}
    out["artifacts"] = []
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            out["history"].append(
                {
                    i.key or "/".join(i.nested_key): json.loads(i.value_json)
                    for i in record.history.item
                }
            )
        elif kind == "summary":
            for item in record.summary.update:
                out["summary"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "artifact":
            files = {entry.path for entry in record.artifact.manifest.contents}
            out["artifacts"].append({"type": record.artifact.type, "files": files})
        elif kind == "run":
            out["id"] = record.run.run_id
            out["group"], out["job_type"] = record.run.run_group, record.run.job_type
            out["name"], out["tags"] = record.run.display_name, list(record.run.tags)
            for item in record.run.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out


def wandb_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))


@pytest.fixture(scope="module")
def multirun(tiny_mnist_root, tmp_path_factory) -> Path:
    """A 2-method x 2-seed sweep (DEN as +experiment=pmnist picks it, and fine-tuning; seeds
    0 and 1) of one multirun, logging to W&B offline."""
    sweep = tmp_path_factory.mktemp("wandb_sweep")
    env = {k: v for k, v in os.environ.items() if k not in ("DEN_DATA_ROOT", "WANDB_API_KEY")}
    env.update(WANDB_MODE="offline", OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "den.train",
        "-m",
        *TINY,
        f"stream.root={tiny_mnist_root}",
        "strategy=den_pmnist,finetune",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
    ]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


def sweep_runs(sweep: Path) -> list[tuple[dict, dict]]:
    """(results.json, W&B run read back) of every job of the sweep."""
    out = []
    for job in sorted(p for p in sweep.iterdir() if (p / "results.json").is_file()):
        [run_file] = wandb_files(job)
        out.append((json.loads((job / "results.json").read_text()), read_wandb_run(run_file)))
    return out


def test_sweep_is_one_group_with_a_job_type_per_method(multirun):
    runs = sweep_runs(multirun)
    assert len(runs) == 4
    assert {run["group"] for _, run in runs} == {f"pmnist-{multirun.name}"}  # the sweep
    by_method: dict[str, list[dict]] = {}
    for results, run in runs:
        by_method.setdefault(run["job_type"], []).append(run)
        assert results["method"] == run["job_type"]  # the strategy config chosen
        assert len(run["name"]) < 40 and run["name"].startswith(run["job_type"])
        assert {"pmnist", run["job_type"]} <= set(run["tags"])
        # the device used, not "auto"; den's version and commit; no where-files-live keys
        assert run["config"]["device"] == results["device"] == "cpu"
        assert run["config"]["versions"]["den"] == results["versions"]["den"]
        if (REPO_ROOT / ".git").exists():  # den's commit, "-dirty" with uncommitted changes
            assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", results["versions"]["git_commit"])
        assert "paths" not in run["config"] and "root" not in run["config"]["stream"]
        assert run["exit_code"] == 0
    assert sorted(by_method) == ["den_pmnist", "finetune"]
    assert [len(v) for v in by_method.values()] == [2, 2]
    names = [run["name"] for _, run in runs]
    assert len(set(names)) == 4  # seeds apart


def test_offline_run_has_task_metrics_phase_losses_diagnostics_and_summary(multirun):
    results, run = next((r, w) for r, w in sweep_runs(multirun) if r["method"] == "den_pmnist")
    per_task = [row for row in run["history"] if "task" in row]
    assert [row["task"] for row in per_task] == [1, 2]  # tasks count from 1
    assert per_task[-1]["test/avg_acc"] == pytest.approx(results["final"]["avg_acc"])
    assert per_task[-1]["test/acc_task1"] == pytest.approx(results["acc_matrix"][1][0])
    assert per_task[-1]["progress/capacity"] == pytest.approx(results["capacity_per_task"][1])
    # DEN's per-task diagnostics on the task axis, per layer (1-based)
    report = results["tasks"][1]["report"]
    assert per_task[-1]["diagnostics/selected/layer1"] == report["selected"][0]
    for layer, width in enumerate(report["widths"], 1):
        assert per_task[-1][f"diagnostics/widths/layer{layer}"] == width
    assert per_task[-1]["diagnostics/nonzero_params"] == report["nonzero_params"]
    # one key for every strategy's training loss, and the validation loss at each check,
    # on the train/step axis; each phase's steps, seconds and losses on the task axis
    keys = {k for row in run["history"] for k in row}
    assert {"train/loss", "val/loss", "train/lr"} <= keys
    assert not [k for k in keys if re.fullmatch(r"train/\w+/loss", k)]
    assert per_task[-1]["phases/expansion/steps"] == report["phases"]["expansion"]["steps"]
    assert per_task[-1]["phases/expansion/seconds"] == report["phases"]["expansion"]["seconds"]
    steps = [row["train/step"] for row in run["history"] if "train/step" in row]
    assert steps == sorted(steps) and len(steps) >= 2 * 30 // 10
    # every final metric as a summary key; the matrices as heatmap images
    summary = run["summary"]
    assert summary["final/avg_acc"] == pytest.approx(results["final"]["avg_acc"])
    learned = sum(results["acc_matrix"][j][j] for j in range(2)) / 2
    assert summary["final/learned_acc"] == pytest.approx(learned)
    assert summary["final/wall_time_s"] == pytest.approx(results["wall_time_s"])
    assert summary["final/peak_rss_mib"] == pytest.approx(results["peak_rss_mib"])
    assert summary["acc_matrix/_type"] == summary["auroc_matrix/_type"] == "image-file"
    assert summary["final/acc_task1"] == pytest.approx(results["acc_matrix"][1][0])
    # the matrices also as a table, one row per cell, so seeds can be averaged in W&B
    assert summary["matrices/_type"] == "table-file" and summary["matrices/nrows"] == 3
    assert summary["results"]["acc_matrix"] == results["acc_matrix"]
    # results.json and the Hydra config as an artifact
    [artifact] = [a for a in run["artifacts"] if a["type"] == "run-results"]
    assert {"results.json", ".hydra/config.yaml", ".hydra/overrides.yaml"} <= artifact["files"]


def test_every_key_the_dashboard_plots_is_logged(multirun):
    """den.dashboard's workspace, built offline: runs grouped by method, and every metric of
    its panels is a key a real run logs (the DEN section by DEN's runs)."""
    from den.loggers.dashboard import panel_keys, workspace

    view = workspace("entity", "project", group=f"pmnist-{multirun.name}", tasks=2)
    model = json.dumps(view._to_model().model_dump(by_alias=True))
    assert '"jobType"' in model and f"pmnist-{multirun.name}" in model
    logged: dict[str, set[str]] = {}
    for results, run in sweep_runs(multirun):
        keys = {k for row in run["history"] for k in row} | set(run["summary"])
        logged.setdefault(results["method"], set()).update(keys)
    for section, keys in panel_keys(view).items():
        by = (
            logged["den_pmnist"]
            if section == "DEN's decisions"
            else set.intersection(*logged.values())
        )
        assert set(keys) <= by, (section, set(keys) - by)


def test_wandb_prints_nothing_and_honours_wandb_dir(tiny_mnist_root, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DEN_DATA_ROOT", "WANDB_API_KEY")}
    env.update(WANDB_MODE="offline", OMP_NUM_THREADS="1", WANDB_DIR=str(tmp_path / "wb"))
    (tmp_path / "wb").mkdir()
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "den.train", *TINY, f"stream.root={tiny_mnist_root}"]
    cmd += ["strategy=finetune", f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wandb:" not in proc.stderr and "wandb:" not in proc.stdout
    assert list((tmp_path / "wb").glob("wandb/offline-run-*/run-*.wandb"))
    assert not (run_dir / "wandb").exists()


@pytest.fixture()
def tiny_cfg(tiny_mnist_root, tmp_path):
    register_configs()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                *TINY,
                f"stream.root={tiny_mnist_root}",
                f"paths.output_dir={tmp_path / 'run'}",
            ],
        )


def test_failing_wandb_init_leaves_training_and_results_intact(tiny_cfg, tmp_path, monkeypatch):
    import wandb

    def broken_init(*args, **kwargs):
        raise wandb.errors.CommError("network is unreachable")

    monkeypatch.setattr(wandb, "init", broken_init)
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.warns(RuntimeWarning, match="W&B wandb.init failed"):
        results = train_module.run(tiny_cfg)
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["status"] == "complete" and on_disk["tasks_done"] == 2
    assert on_disk["final"] == results["final"]


def test_wandb_failing_mid_run_is_dropped_not_fatal(tiny_cfg, tmp_path, monkeypatch):
    from wandb.sdk.wandb_run import Run

    calls = {"n": 0}
    original = Run.log

    def flaky_log(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("connection reset")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Run, "log", flaky_log)
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.warns(RuntimeWarning, match="W&B log failed"):
        train_module.run(tiny_cfg)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["status"] == "complete"
    assert calls["n"] == 3  # after the failure the logger stops calling W&B


def test_no_api_key_means_offline_never_a_prompt(monkeypatch, tmp_path):
    from den.loggers.wandb import resolve_wandb_mode

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    assert resolve_wandb_mode(None) == "offline"
    assert resolve_wandb_mode("online") == "offline"
    assert resolve_wandb_mode("disabled") == "disabled"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode(None) == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode(None) == "disabled"
