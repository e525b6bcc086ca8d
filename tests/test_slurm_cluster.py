"""``hydra/launcher=slurm`` against a real SLURM cluster (sbatch/squeue/sacct/scontrol).

Run by ``make test-slurm`` (which starts ../shared/tools/slurm-local when it is there) and
skipped otherwise: set DEN_TEST_SLURM=1 to run them against whatever cluster ``sinfo``
answers for. Every job is a tiny run (2-3 permuted tasks of the tests' own tiny MNIST, one
thread), so the module takes a few minutes, most of it Python start-up inside the jobs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from den.reports.compare import compare

from conftest import REPO_ROOT

pytestmark = pytest.mark.slurm

TINY = (
    "+experiment=pmnist",
    "logger=none",
    "stream.download=false",
    "stream.val_size=50",
    "stream.samples_per_task=200",
    "trainer.progress=false",
    "threads=1",
)


def _cluster_problem() -> str | None:
    """Why SLURM cannot be used here, or None when a node answers."""
    if os.environ.get("DEN_TEST_SLURM") != "1":
        return "SLURM cluster tests run with `make test-slurm` (or DEN_TEST_SLURM=1)"
    for tool in ("sbatch", "squeue", "sinfo", "scontrol", "scancel"):
        if shutil.which(tool) is None:
            return f"no SLURM here: `{tool}` is not on PATH"
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    states = proc.stdout.split()
    if proc.returncode != 0 or not any(s.startswith(("idle", "mix")) for s in states):
        return f"no idle SLURM node: sinfo says {proc.stdout.strip() or proc.stderr.strip()!r}"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    problem = _cluster_problem()
    if problem:
        pytest.skip(problem)


def new_sweep(tmp_path: Path) -> tuple[Path, Path, str]:
    """The sweep folder, the driver's log file, and a job name unique to this test."""
    return tmp_path / "sweep", tmp_path / "driver.log", f"dentest-{uuid.uuid4().hex[:8]}"


def driver_cmd(sweep: Path, root: Path, name: str, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "den.train",
        "-m",
        *TINY,
        f"stream.root={root}",
        "hydra/launcher=slurm",
        f"hydra.launcher.name={name}",
        f"hydra.sweep.dir={sweep}",
        *overrides,
    ]


def driver_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DEN_DATA_ROOT", "HYDRA_FULL_ERROR")}
    env.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1", **extra)
    return env


def start_driver(cmd: list[str], log: Path, **env: str) -> subprocess.Popen:
    """The sweep's driver in the background; its stdout+stderr go to ``log``."""
    out = log.open("w")
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=driver_env(**env), stdout=out, stderr=out)


def wait_driver(proc: subprocess.Popen, log: Path, timeout: float) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"the driver was still waiting after {timeout:.0f} s:\n{log.read_text()}")
    return log.read_text()


def job_ids(name: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "--array", "-t", "all", "-n", name, "-o", "%i"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def job_state(job: str) -> tuple[str, str]:
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", job, "-o", "%T|%r"], capture_output=True, text=True
    ).stdout.strip()
    state, _, reason = out.partition("|")
    return state, reason


def wait_for(what: str, check, timeout: float, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"{what} did not happen within {timeout:.0f} s:\n{log.read_text()}")


def test_two_job_sweep_writes_both_results_and_a_report(cluster, tiny_mnist_root, tmp_path):
    sweep, log, name = new_sweep(tmp_path)
    overrides = ("strategy=finetune,ewc", "stream.num_tasks=2", "trainer.max_iters=20")
    started = time.monotonic()
    proc = start_driver(driver_cmd(sweep, tiny_mnist_root, name, *overrides), log)
    out = wait_driver(proc, log, timeout=600)
    print(f"2-job sweep: {time.monotonic() - started:.1f} s")
    assert proc.returncode == 0, out

    results = sorted(sweep.rglob("results.json"))
    assert len(results) == 2
    runs = [json.loads(p.read_text()) for p in results]
    assert sorted(r["strategy"] for r in runs) == ["ewc", "finetune"]
    assert all(r["status"] == "complete" and r["tasks_done"] == 2 for r in runs)
    report = compare([sweep], out=tmp_path / "report").read_text()
    assert "| finetune | 1 |" in report and "| ewc | 1 |" in report

    # What the jobs asked SLURM for: one CPU per thread, no GPU, the run's measured memory.
    script = next(sweep.glob(".submitit/*/*_submission.sh")).read_text()
    assert "#SBATCH --cpus-per-task=1" in script
    assert "#SBATCH --mem=6GB" in script and "#SBATCH --time=60" in script
    assert "gpu" not in script.lower() and "gres" not in script.lower()


def test_a_failing_job_is_recorded_and_listed_and_the_others_finish(
    cluster, tiny_mnist_root, tmp_path
):
    sweep, log, name = new_sweep(tmp_path)
    run = ("strategy=finetune", "seed=0,-1,1", "stream.num_tasks=2", "trainer.max_iters=20")
    started = time.monotonic()
    proc = start_driver(driver_cmd(sweep, tiny_mnist_root, name, *run), log)
    out = wait_driver(proc, log, timeout=600)
    print(f"3-job sweep with a failing job: {time.monotonic() - started:.1f} s")
    assert proc.returncode == 1, out[-3000:]
    assert len(list(sweep.rglob("results.json"))) == 2
    (failed,) = sweep.rglob("failed.json")
    assert "seed" in json.loads(failed.read_text())["error"]
    assert "1 of 3 jobs of the sweep failed" in out and "seed=-1" in out
    assert "Traceback" not in out


def test_requeued_job_resumes_and_ends_with_the_uninterrupted_matrices(
    cluster, tiny_mnist_root, tmp_path
):
    # 3 tasks of 1,000 steps (a few seconds each): the requeue lands in task 2 or 3. A
    # 4-unit layer at a constant rate forgets visibly, so the matrices are not all ones.
    run = ("strategy=finetune", "stream.num_tasks=3", "trainer.max_iters=1000")
    run += ("trainer.patience=0", "trainer.lr_decay=1.0", "model.hidden=[4]")
    # The uninterrupted run, on this machine while the SLURM job runs (same code, same CPU
    # kind, one thread: bit-identical results when nothing goes wrong).
    reference = tmp_path / "uninterrupted"
    ref_cmd = [sys.executable, "-m", "den.train", *TINY, *run, f"stream.root={tiny_mnist_root}"]
    ref_log = tmp_path / "uninterrupted.log"
    ref = start_driver([*ref_cmd, f"hydra.run.dir={reference}"], ref_log)

    sweep, log, name = new_sweep(tmp_path)
    started = time.monotonic()
    proc = start_driver(driver_cmd(sweep, tiny_mnist_root, name, *run, "resume=auto"), log)
    wait_for("task 1's checkpoint", lambda: list(sweep.glob("*/checkpoint.pt")), 300, log)
    (job,) = job_ids(name)
    subprocess.run(["scontrol", "requeue", job], check=True)
    # SLURM holds a requeued job ~2 min (Reason=BeginTime); release it once it is back in
    # the queue, so the test does not sit out the hold.
    wait_for("the requeued job pending", lambda: job_state(job)[0] == "PENDING", 120, log)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    out = wait_driver(proc, log, timeout=600)
    print(f"requeue run: {time.monotonic() - started:.1f} s")
    assert proc.returncode == 0, out
    ref_out = wait_driver(ref, ref_log, timeout=300)
    assert ref.returncode == 0, ref_out
    expected = json.loads((reference / "results.json").read_text())

    (result_file,) = sweep.glob("*/results.json")
    resumed = json.loads(result_file.read_text())
    assert resumed["status"] == "complete" and resumed["tasks_done"] == 3
    assert resumed["resumed_at_task"] in ([1], [2]), "the requeue did not interrupt the run"
    for key in ("acc_matrix", "auroc_matrix", "val_acc_matrix", "val_auroc_matrix"):
        assert resumed[key] == expected[key], key
    losses = [
        [t["report"]["phases"]["train"]["train_loss"] for t in r["tasks"]]
        for r in (resumed, expected)
    ]
    assert losses[0] == losses[1]  # every task's last training loss, bit for bit
    print("requeued job resumed after task", resumed["resumed_at_task"])
    for key in ("acc_matrix", "auroc_matrix"):
        print(f"uninterrupted {key}: {expected[key]}\nrequeued      {key}: {resumed[key]}")


def node_cpus() -> int:
    out = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True).stdout
    return max(int(c.rstrip("+")) for c in out.split())


def test_a_job_no_node_can_run_ends_the_driver_with_slurms_reason(
    cluster, tiny_mnist_root, tmp_path
):
    sweep, log, name = new_sweep(tmp_path)
    too_many = node_cpus() + 1  # threads -> cpus_per_task: more than any node has
    # never_start_grace_s=5 (shipped: 30) keeps the test short; the watcher logic is the same
    cmd = driver_cmd(sweep, tiny_mnist_root, name, "stream.num_tasks=2", f"threads={too_many}")
    cmd.append("hydra.launcher.never_start_grace_s=5")
    started = time.monotonic()
    proc = start_driver(cmd, log)
    out = wait_driver(proc, log, timeout=240)
    elapsed = time.monotonic() - started
    print(f"unschedulable job: driver ended after {elapsed:.1f} s")
    assert proc.returncode != 0
    (job,) = job_ids(name)
    assert f"SLURM job {job} ({name}) cannot start" in out
    assert "Reason=PartitionConfig" in out and f"{too_many} CPUs" in out
    assert f"Cancelled: {job}" in out
    assert "Traceback" not in out  # the message alone, not a stack of Hydra frames
    assert job_state(job)[0] == "CANCELLED"  # not left pending in the queue


@pytest.mark.parametrize("accounting", ["sacct", "no-sacct"])
def test_a_cancelled_job_ends_the_driver_with_its_state(
    accounting, cluster, tiny_mnist_root, tmp_path
):
    env = {}
    if accounting == "no-sacct":  # a cluster without accounting: sacct fails
        fake = tmp_path / "bin"
        fake.mkdir()
        (fake / "sacct").write_text("#!/bin/sh\necho 'sacct: error: no accounting' >&2\nexit 1\n")
        (fake / "sacct").chmod(0o755)
        env["PATH"] = f"{fake}{os.pathsep}{os.environ['PATH']}"
    sweep, log, name = new_sweep(tmp_path)
    run = ("stream.num_tasks=2", "trainer.max_iters=5000", "trainer.patience=0")
    started = time.monotonic()
    proc = start_driver(driver_cmd(sweep, tiny_mnist_root, name, *run), log, **env)
    (job,) = wait_for("the job in the queue", lambda: job_ids(name), 60, log)
    wait_for("the job running", lambda: job_state(job)[0] == "RUNNING", 120, log)
    subprocess.run(["scancel", job], check=True)
    cancelled = time.monotonic()
    out = wait_driver(proc, log, timeout=180)
    print(
        f"cancelled job ({accounting}): driver ended {time.monotonic() - cancelled:.1f} s "
        f"after scancel, {time.monotonic() - started:.1f} s in all"
    )
    assert proc.returncode != 0
    assert "A SLURM job of the sweep ended without a result" in out
    assert f"{job}: CANCELLED" in out, out[-3000:]
    assert "Traceback" not in out
