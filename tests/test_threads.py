"""The thread policy (den/utils/threads.py): OpenMP's wait policy set before torch loads,
``threads=auto`` (the CPUs a run was given, shared by a sweep's parallel jobs; SLURM's
allocation; OMP_NUM_THREADS; less the CPUs other processes keep busy; kept on resume)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from den.utils.threads import (
    DEN_WAIT_POLICY,
    _cpu_times,
    apply_wait_policy,
    auto_threads,
    available_cpus,
    busy_cpus,
    joblib_jobs,
    resolve_threads,
)

from conftest import REPO_ROOT, TINY_PMNIST


# --------------------------------------------------------------------------- the wait policy
def test_den_sets_a_short_spin_unless_the_user_chose():
    env: dict[str, str] = {}
    assert apply_wait_policy(env, torch_loaded=False) == {**DEN_WAIT_POLICY, "source": "den"}
    assert env == {"GOMP_SPINCOUNT": "10000"}
    # inherited from a den process (a sweep's worker): still den's
    assert apply_wait_policy(dict(env), torch_loaded=False)["source"] == "den"
    for given in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "1000"}):
        env = dict(given)
        assert apply_wait_policy(env, torch_loaded=False) == {**given, "source": "user"}
        assert env == given  # left alone
    env = {}
    assert apply_wait_policy(env, torch_loaded=True) == {"source": "libgomp"}  # too late
    assert env == {}


def test_python_m_den_sets_the_policy_before_torch_is_imported():
    code = "import sys, den, torch, os; print(os.environ.get('GOMP_SPINCOUNT'), den.OPENMP_WAIT)"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    ).stdout
    assert out.startswith("10000 {'GOMP_SPINCOUNT': '10000', 'source': 'den'}"), out


IDLE_SPIN = textwrap.dedent(
    """
    import resource, time
    import den, torch
    torch.set_num_threads(2)
    x = torch.rand(4_000_000)

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    x.add_(1.0)
    start = cpu()
    for _ in range(40):
        x.add_(1.0)  # a parallel region on both threads, then the threads idle
        time.sleep(0.02)
    print(cpu() - start)
    """
)


@pytest.mark.slow
@pytest.mark.skipif(available_cpus() < 2, reason="needs 2 CPUs for 2 OpenMP threads")
def test_idle_openmp_threads_spin_briefly_under_den_and_long_under_libgomps_default():
    """The policy reaches libgomp: idle workers cost little CPU time under den's short spin,
    while libgomp's own default (GOMP_SPINCOUNT=300000) spins for ms after every region."""

    def idle_cpu(extra: dict[str, str]) -> float:
        env = {
            k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
        }
        proc = subprocess.run(
            [sys.executable, "-c", IDLE_SPIN],
            cwd=REPO_ROOT,
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        )
        return float(proc.stdout.split()[-1])

    passive, spinning = idle_cpu({}), idle_cpu({"GOMP_SPINCOUNT": "300000"})
    # 40 idle gaps of 20 ms: spinning burns at least a few ms of each
    assert spinning > passive + 0.08, (passive, spinning)


# --------------------------------------------------------------------------- threads=auto
@pytest.mark.parametrize(
    "cpus, jobs, env, expected",
    [
        (2, 1, {}, 2),  # a run alone: every CPU it was given
        (2, 2, {}, 1),  # joblib, 2 jobs on 2 CPUs: jobs x threads <= CPUs
        (2, 4, {}, 1),  # at least one thread
        (8, 3, {}, 2),
        (16, 1, {"SLURM_JOB_ID": "7", "SLURM_CPUS_PER_TASK": "4"}, 4),  # SLURM's allocation
        (16, 2, {"SLURM_JOB_ID": "7", "SLURM_CPUS_PER_TASK": "4"}, 2),
        (16, 1, {"SLURM_CPUS_PER_TASK": "4"}, 16),  # not inside a SLURM job
        (8, 1, {"OMP_NUM_THREADS": "3"}, 3),  # the user's (or joblib's) limit
        (8, 4, {"OMP_NUM_THREADS": "1"}, 1),
        (8, 1, {"OMP_NUM_THREADS": "junk"}, 8),
        (8, 1, {"OMP_NUM_THREADS": "4,2"}, 4),  # nested OpenMP: the outer level
    ],
)
def test_auto_threads(cpus, jobs, env, expected):
    threads, why = auto_threads(cpus, jobs, env, busy=0.0)
    assert threads == expected
    assert why


@pytest.mark.parametrize(
    "cpus, env, busy, expected",
    [
        (2, {}, 1.0, 1),  # one busy neighbour on 2 CPUs: one thread, not a fight for the core
        (2, {}, 0.5, 2),  # a CPU counts as taken from 60 % busy
        (2, {}, 2.0, 1),  # at least one thread
        (8, {}, 2.7, 5),
        (2, {"SLURM_JOB_ID": "7", "SLURM_CPUS_PER_TASK": "2"}, 1.0, 2),  # its own CPUs
        (2, {"OMP_NUM_THREADS": "2"}, 1.0, 2),  # the user's count
    ],
)
def test_auto_threads_leaves_out_the_cpus_others_keep_busy(cpus, env, busy, expected):
    threads, why = auto_threads(cpus, 1, env, busy=busy)
    assert threads == expected
    if expected < cpus:
        assert "busy by other processes" in why


def test_cpu_times_read_the_affinity_set_from_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  10 0 10 100 0 0 0 0 0 0\n"
        "cpu0 5 1 2 50 3 1 1 0 0 0\n"  # busy 5+1+2+1+1 = 10 of 63
        "cpu1 7 0 0 20 0 0 0 0 0 0\n"
        "intr 12345\n"
    )
    assert _cpu_times({0}, stat) == (10, 63)
    assert _cpu_times({0, 1}, stat) == (17, 90)
    assert busy_cpus(0.0, stat) == 0.0  # nothing moved between the two reads


@pytest.mark.slow
@pytest.mark.skipif(available_cpus() < 2, reason="needs 2 CPUs")
def test_busy_cpus_sees_a_busy_process():
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)
        assert busy_cpus(0.5) >= 0.6
    finally:
        spin.kill()
        spin.wait()


def test_auto_keeps_the_count_of_the_run_being_resumed():
    assert resolve_threads("auto", resumed=1) == (1, "auto: 1, as in the run being resumed")
    assert resolve_threads(2, resumed=1) == (2, "threads=2")  # an explicit setting wins


def test_joblib_counts_jobs_as_joblib_does():
    assert joblib_jobs(-1, 8) == 8
    assert joblib_jobs(-2, 8) == 7
    assert joblib_jobs(-20, 8) == 1
    assert joblib_jobs(3, 8) == 3


def test_an_explicit_setting_wins():
    assert resolve_threads(3, jobs=4, environ={"OMP_NUM_THREADS": "1"}) == (3, "threads=3")
    assert resolve_threads(None)[0] is None  # PyTorch's default, untouched
    threads, why = resolve_threads("auto", jobs=1, environ={})
    assert 1 <= threads <= available_cpus() and why.startswith("auto: ")


def test_the_launcher_of_a_multirun_job_sets_the_share():
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from den.config.store import register_configs
    from den.run.build import launcher_jobs

    register_configs()

    def jobs(*overrides: str) -> int:
        with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        try:
            return launcher_jobs()
        finally:
            HydraConfig.instance().cfg = None

    multirun = "hydra.mode=MULTIRUN"
    assert jobs("hydra/launcher=joblib", "hydra.launcher.n_jobs=3", multirun) == 3
    assert jobs("hydra/launcher=joblib", multirun) == available_cpus()  # n_jobs=-1
    assert jobs("hydra/launcher=joblib", "hydra.launcher.n_jobs=3") == 1  # a single run
    assert jobs(multirun) == 1  # the basic launcher: one job at a time
    assert launcher_jobs() == 1  # outside Hydra


def test_slurm_asks_one_cpu_for_auto_and_n_for_n():
    from hydra_plugins.den_slurm_launcher.den_slurm_launcher import cpus_for_threads

    assert [cpus_for_threads(t) for t in ("auto", None, 4)] == [1, 1, 4]


def test_threads_must_be_auto_a_count_or_null():
    from den.config.validate import check_threads
    from den.errors import ConfigError

    for good in ("auto", None, 1, 2):
        check_threads(good)
    for bad in ("many", 0, -1, True, 1.5):
        with pytest.raises(ConfigError, match="threads"):
            check_threads(bad)


# --------------------------------------------------------------------------- a joblib sweep
@pytest.mark.slow
def test_a_joblib_sweep_shares_the_cpus_and_keeps_an_explicit_setting(tiny_mnist_root, tmp_path):
    """Without OMP_NUM_THREADS in the shell, 2 parallel jobs on C CPUs get C // 2 threads
    each (at least 1); ``threads=N`` on the command line is kept; idle threads sleep."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env = {k: v for k, v in env.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(WANDB_MODE="disabled", PYTHONPATH=str(REPO_ROOT))
    env.pop("DEN_DATA_ROOT", None)
    for name, extra in (("auto", []), ("two", ["threads=2"])):
        sweep = tmp_path / name
        cmd = [
            sys.executable, "-m", "den.train", "-m", *TINY_PMNIST,
            f"stream.root={tiny_mnist_root}", "seed=0,1", "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}", *extra,
        ]  # fmt: skip
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs = [json.loads(p.read_text()) for p in sorted(sweep.rglob("results.json"))]
        assert len(runs) == 2
        expected = max(1, available_cpus() // 2) if name == "auto" else 2
        assert [r["threads"] for r in runs] == [expected, expected]
        assert all(r["openmp_wait"]["source"] == "den" for r in runs)
        assert all(
            r["threads_rule"].startswith("auto" if name == "auto" else "threads=2") for r in runs
        )
