"""The driver-side SLURM watcher (hydra_plugins.den_slurm_launcher._queue) and the sizing of hydra/launcher=slurm,
without a cluster: ``squeue``/``sacct``/``scancel`` are small scripts on PATH that print what
SLURM 22.05 printed for the same situations (tests/test_slurm_cluster.py has the real ones)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from den.config.store import register_configs
from hydra_plugins.den_slurm_launcher._queue import (
    LEFT_QUEUE,
    QueueWatcher,
    SlurmJobError,
    parse_squeue,
)

from conftest import REPO_ROOT


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """Write fake SLURM commands; returns set_queue(text) and the scancel record file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    queue, cancelled = tmp_path / "queue.txt", tmp_path / "cancelled.txt"
    queue.write_text("")
    scripts = {
        "squeue": f"#!/bin/sh\ncat {queue}\n",
        "sacct": "#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n",
        "scancel": f'#!/bin/sh\necho "$@" >> {cancelled}\n',
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return queue.write_text, cancelled


def line(job: str, state: str, reason: str) -> str:
    return f"{job}|{state}|{reason}|pmnist-den|debug|4|6G|1:00:00|N/A\n"


def test_a_job_pending_for_a_reason_that_never_clears_is_cancelled_and_reported(fake_slurm):
    set_queue, cancelled = fake_slurm
    set_queue(line("12_0", "PENDING", "PartitionConfig") + line("12_1", "RUNNING", "None"))
    watcher = QueueWatcher(never_start_grace_s=0)
    for job in ("12_0", "12_1"):
        watcher.register_job(job)
    with pytest.raises(SlurmJobError) as err:
        watcher.update()
    message = str(err.value)
    assert "SLURM job 12_0 (pmnist-den) cannot start" in message
    assert "Reason=PartitionConfig" in message and "4 CPUs, memory 6G" in message
    assert "hydra.launcher.partition" in message
    assert cancelled.read_text().split() == ["12_0"]  # the running job is left alone


def test_ordinary_waiting_is_not_an_error_and_a_job_that_left_the_queue_has_ended(fake_slurm):
    set_queue, cancelled = fake_slurm
    set_queue(line("7", "PENDING", "Priority"))
    watcher = QueueWatcher(never_start_grace_s=0)
    watcher.register_job("7")
    watcher.update()
    assert not watcher.is_done("7", mode="cache") and not cancelled.exists()
    set_queue(line("7", "PENDING", "BeginTime"))  # a requeued job held by SLURM
    watcher.update()
    assert not watcher.is_done("7", mode="cache")
    set_queue("")  # ended long ago (MinJobAge) and sacct cannot tell: it is over
    watcher.update()
    assert watcher.is_done("7", mode="cache")
    assert watcher.ended_without_success() == {"7": LEFT_QUEUE}


def test_a_pending_limit_bounds_any_wait(fake_slurm):
    set_queue, cancelled = fake_slurm
    set_queue(line("3", "PENDING", "Resources"))
    watcher = QueueWatcher(max_pending_min=0)
    watcher.register_job("3")
    with pytest.raises(SlurmJobError, match="PENDING longer than hydra.launcher.max_pending_min"):
        watcher.update()
    assert cancelled.read_text().split() == ["3"]


def test_squeue_lines_parse_with_reasons_that_contain_commas():
    entries = parse_squeue("5_1|PENDING|ReqNodeNotAvail, UnavailableNodes:n1|x|p|1|4G|10:00|N/A\n")
    assert entries["5_1"].reason_code == "ReqNodeNotAvail" and entries["5_1"].cpus == "1"


def launcher_settings(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config", overrides=["hydra/launcher=slurm", *overrides], return_hydra_config=True
        )
    return cfg.hydra.launcher


def test_slurm_launcher_asks_for_what_the_run_needs():
    cpu = launcher_settings("+experiment=pmnist", "strategy=ewc", "threads=2")
    assert cpu._target_.endswith("DenSlurmLauncher")
    assert (cpu.cpus_per_task, cpu.gpus_per_node, cpu.mem_gb, cpu.timeout_min) == (2, None, 6, 60)
    assert cpu.name == "pmnist-ewc"
    gpu = launcher_settings("+experiment=split_cifar10", "device=cuda")
    assert (gpu.cpus_per_task, gpu.gpus_per_node, gpu.mem_gb, gpu.timeout_min) == (1, 1, 4, 180)
    assert launcher_settings("device=auto").gpus_per_node is None  # auto must not wait for one
    custom = launcher_settings("hydra.launcher.partition=gpu", "hydra.launcher.mem_gb=12")
    assert custom.partition == "gpu" and custom.mem_gb == 12
