"""The battery's cases for folders and files someone else made: a run folder, a sweep folder
or a results folder received from another user, with links planted where den writes, bad
values where den reads; and sweeps whose jobs fail, splits that cannot be evaluated, tracebacks.

Every case runs the real commands (``python -m den.train``, ``den.compare``, ``den.pareto``,
``den.choose``) as processes of the checkout :data:`fault_battery.CLI_ROOT` names, so it can
also be pointed at an older commit to see which cases that commit fails. A case with planted
links makes a folder ``outside`` beside the run (or report) folder holding the links' targets
and asserts, after the command, that nothing outside the run folder changed or appeared
(:class:`Sandbox`: checksums of every file).

``item`` numbers what each case checks: 14 no write leaves the run or output folder, 15
pre-flight checks that no environment variable bypasses, 16 a sweep that survives a failed
job, 17 splits that cannot be evaluated and NaN, 18 resume checks, 19 reports on untrusted
files, 20 other tracebacks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from fault_battery import (
    BASE,
    CLI_ROOT,
    FAST,
    Case,
    Env,
    Patch,
    SkipCase,
    run_cfg,
)

import den.run.loop

# --------------------------------------------------------------------------- processes


def run_den(
    module: str,
    *args: str,
    env_extra: dict | None = None,
    traceback_ok: bool = False,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """``python -m <module> args`` in :data:`CLI_ROOT`; a hang is a failure, and so is a
    traceback unless ``traceback_ok`` (``HYDRA_FULL_ERROR=1`` asks for one)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DEN_DATA_ROOT", "HYDRA_FULL_ERROR")}
    env.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(env_extra or {})
    try:
        proc = subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=CLI_ROOT,
            env=env,
            text=True,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"python -m {module} did not end within {timeout:.0f} s") from None
    if not traceback_ok:
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def train(env: Env, *overrides: str, run_dir: Path, **kwargs) -> subprocess.CompletedProcess:
    """One ``python -m den.train`` run of the battery's tiny setting into ``run_dir``."""
    args = [*BASE, "threads=1", f"stream.root={env.mnist}", *overrides, f"hydra.run.dir={run_dir}"]
    return run_den("den.train", *args, **kwargs)


def sweep(env: Env, *overrides: str, sweep_dir: Path, **kwargs) -> subprocess.CompletedProcess:
    """One ``python -m den.train -m`` sweep of the battery's tiny setting into ``sweep_dir``."""
    args = [*BASE, "threads=1", f"stream.root={env.mnist}", *overrides]
    return run_den("den.train", "-m", *args, f"hydra.sweep.dir={sweep_dir}", **kwargs)


def last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return f"exit {proc.returncode}: " + (lines[-1] if lines else "(no message)")


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# --------------------------------------------------------------------------- the sandbox


def tree(base: Path, skip: Path) -> dict[str, str]:
    """Every entry under ``base`` but ``skip`` (and what is in it): a file's SHA-256, a
    link's target, "dir" or "special"; links are not followed."""
    found: dict[str, str] = {}
    for root, dirs, files in os.walk(base):
        here = Path(root)
        dirs[:] = [d for d in dirs if here / d != skip]
        for name in dirs + files:
            path = here / name
            if path.is_symlink():
                found[str(path)] = "link -> " + os.readlink(path)
            elif path.is_dir():
                found[str(path)] = "dir"
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[str(path)] = "special"
    return found


@dataclass
class Sandbox:
    """``base/inside`` (the run, sweep or report folder) and ``base/outside`` (the targets
    of planted links: a file, a folder with a file, a name that does not exist)."""

    base: Path
    inside: Path

    @property
    def victim(self) -> Path:
        return self.base / "outside" / "victim.txt"

    @property
    def victim_dir(self) -> Path:
        return self.base / "outside" / "victim_dir"

    @property
    def absent(self) -> Path:
        return self.base / "outside" / "absent"

    def target(self, kind: str) -> Path:
        return {"file": self.victim, "dir": self.victim_dir, "dangling": self.absent}[kind]

    def plant(self, name: str, kind: str = "file") -> Path:
        link = self.inside / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(link):
            link.unlink()
        os.symlink(self.target(kind), link)
        return link

    def snapshot(self) -> dict[str, str]:
        return tree(self.base, self.inside)

    def unchanged(self, before: dict[str, str]) -> str:
        after = self.snapshot()
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        assert not changed, f"written outside {self.inside}: {changed}"
        return f"; outside: {len(after)} entries, checksums unchanged, nothing new"


def sandbox(env: Env, name: str = "run", make: bool = True) -> Sandbox:
    base = env.new("planted")
    (base / "outside" / "victim_dir").mkdir(parents=True)
    (base / "outside" / "victim.txt").write_text("a file of someone else's; keep it as it is\n")
    (base / "outside" / "victim_dir" / "keep.txt").write_text("keep\n")
    box = Sandbox(base, base / name)
    if make:
        box.inside.mkdir()
    return box


# --------------------------------------------------------------------------- 14: links


def link_in_run_dir(
    name: str, kind: str = "file", resume: bool = False, extra: tuple[str, ...] = ()
) -> Callable[[Env], str]:
    """A link planted at ``name`` in the run folder (of a finished run with ``resume``): the
    run is refused naming the link, and nothing outside the folder changes."""

    def case(env: Env) -> str:
        box = sandbox(env)
        if resume:
            ok(train(env, *FAST, *extra, run_dir=box.inside))
        link = box.plant(name, kind)
        before = box.snapshot()
        proc = train(env, *FAST, *extra, *(["resume=true"] if resume else []), run_dir=box.inside)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert str(link) in proc.stderr and "symbolic link" in proc.stderr, proc.stderr
        return last_line(proc) + box.unchanged(before)

    return case


def stale_temporaries_of_any_kind(env: Env) -> str:
    """Leftover temporary files that are a link, a folder and a named pipe: a resume removes
    all three without following the link or blocking on the pipe."""
    box = sandbox(env)
    ok(train(env, *FAST, run_dir=box.inside))
    link = box.plant(".results.json.tmp999991")
    folder = box.inside / ".checkpoint.pt.tmp999992"
    folder.mkdir()
    (folder / "part").write_bytes(b"x" * 100)
    pipe = box.inside / ".metrics.jsonl.tmp999993"
    os.mkfifo(pipe)
    before = box.snapshot()
    ok(train(env, *FAST, "resume=true", run_dir=box.inside))
    left = [p.name for p in (link, folder, pipe) if os.path.lexists(p)]
    assert not left, f"stale temporaries left: {left}"
    return "link, folder and pipe temporaries removed" + box.unchanged(before)


def link_as_multirun_yaml(env: Env) -> str:
    box = sandbox(env, "sweep")
    box.plant("multirun.yaml")
    before = box.snapshot()
    proc = sweep(env, *FAST, "seed=0", sweep_dir=box.inside)
    assert proc.returncode == 2 and "multirun.yaml" in proc.stderr, proc.stderr[-3000:]
    return last_line(proc) + box.unchanged(before)


def link_as_job_folder(env: Env) -> str:
    """A sweep folder whose job folder was replaced by a link to another folder: the rerun
    of the sweep is refused before Hydra writes its .hydra/ there."""
    box = sandbox(env, "sweep", make=False)
    ok(sweep(env, *FAST, "seed=0", sweep_dir=box.inside))
    job = next(p for p in box.inside.iterdir() if p.is_dir())
    shutil.rmtree(job)
    box.plant(job.name, "dir")
    before = box.snapshot()
    proc = sweep(env, *FAST, "seed=0", sweep_dir=box.inside)
    assert proc.returncode == 2 and job.name in proc.stderr, proc.stderr[-3000:]
    return last_line(proc) + box.unchanged(before)


# --------------------------------------------------------------------------- report folders


def fake_results(
    tasks: int = 2, seed: int = 0, method: str = "finetune", num_tasks: int | None = -1
) -> dict:
    """A complete results.json of ``tasks`` tasks as den.train writes one (the figures made
    up); ``num_tasks`` is the config's stream.num_tasks (-1: ``tasks``, None: not there)."""
    matrix = [
        [0.9 - 0.01 * (i - j) if j <= i else None for j in range(tasks)] for i in range(tasks)
    ]
    stream = {"name": "pmnist", "kind": "permuted"}
    if num_tasks is not None:
        stream["num_tasks"] = tasks if num_tasks == -1 else num_tasks
    return {
        "status": "complete",
        "method": method,
        "stream": "pmnist",
        "experiment": "pmnist",
        "seed": seed,
        "tasks_done": tasks,
        "config": {"stream": stream, "strategy": {"name": method}, "seed": seed},
        "acc_matrix": matrix,
        "auroc_matrix": matrix,
        "val_acc_matrix": matrix,
        "val_auroc_matrix": matrix,
        "final": {
            "avg_acc": 0.9,
            "avg_auroc": 0.9,
            "bwt": -0.01,
            "forgetting": 0.01,
            "capacity": 1.0,
        },
        "capacity_per_task": [1.0] * tasks,
        "nonzero_capacity_per_task": [1.0] * tasks,
        "wall_time_s": 1.0,
        "peak_rss_mib": 100.0,
    }


def write_runs(folder: Path, count: int = 2, **kwargs) -> Path:
    for seed in range(count):
        (folder / f"run{seed}").mkdir(parents=True)
        (folder / f"run{seed}" / "results.json").write_text(
            json.dumps(fake_results(seed=seed, **kwargs))
        )
    return folder


def link_in_report_folder(name: str) -> Callable[[Env], str]:
    """den.compare into the runs' own folder (the default --out) where ``name`` is a link."""

    def case(env: Env) -> str:
        box = sandbox(env, "runs")
        write_runs(box.inside)
        link = box.plant(name)
        before = box.snapshot()
        proc = run_den("den.compare", str(box.inside))
        assert proc.returncode == 2 and str(link) in proc.stderr, proc.stderr[-3000:]
        return last_line(proc) + box.unchanged(before)

    return case


def pareto_study(sweep_dir: Path, finals: list) -> Path:
    """A finished den_pareto-like study in ``sweep_dir``: one trial per ``finals`` entry, its
    folder holding a results.json whose "final" is that entry."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    journal = sweep_dir / "optuna.journal"
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.create_study(
        study_name="den_pmnist", storage=storage, directions=["maximize", "minimize"]
    )
    study.set_user_attr("objectives", ["val_avg_acc", "capacity"])
    space = {"strategy.tau": optuna.distributions.FloatDistribution(0.001, 0.3)}
    for number, final in enumerate(finals):
        trial = study.ask(space)
        folder = sweep_dir / f"trial_{number:04d}"
        folder.mkdir()
        results = {**fake_results(), "final": final}
        (folder / "results.json").write_text(json.dumps(results))
        trial.set_user_attr("job_dir", str(folder))
        trial.set_user_attr("overrides", [f"strategy.tau={trial.params['strategy.tau']}"])
        study.tell(trial, [0.8 + 0.01 * number, 1.0 + number])
    return journal


def link_in_pareto_folder(env: Env) -> str:
    box = sandbox(env, "search", make=False)
    pareto_study(box.inside, [fake_results()["final"]] * 2)
    link = box.plant("pareto.md")
    before = box.snapshot()
    proc = run_den("den.pareto", str(box.inside), "--out", str(box.inside))
    assert proc.returncode == 2 and str(link) in proc.stderr, proc.stderr[-3000:]
    return last_line(proc) + box.unchanged(before)


def link_as_choose_out(env: Env) -> str:
    box = sandbox(env, "runs")
    write_runs(box.inside)
    link = box.plant("choice.md")
    before = box.snapshot()
    args = (str(box.inside), "--budget-nonzero", "5", "--budget-stored", "5", "--out", str(link))
    proc = run_den("den.choose", *args)
    assert proc.returncode == 2 and str(link) in proc.stderr, proc.stderr[-3000:]
    return last_line(proc) + box.unchanged(before)


# --------------------------------------------------------------------------- 19: bad inputs


def bad_results_file(write: Callable[[Path], None], why: str) -> Callable[[Env], str]:
    """Two good runs and one bad results.json: den.compare skips the bad one with one line
    naming it and why, reports the two (never pooling the bad one), exits 0."""

    def case(env: Env) -> str:
        runs = write_runs(env.new("runs"))
        bad = runs / "bad" / "results.json"
        bad.parent.mkdir()
        write(bad)
        out = env.new("report")
        proc = run_den("den.compare", str(runs), "--out", str(out), timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        lines = [ln for ln in proc.stderr.splitlines() if str(bad) in ln]
        assert len(lines) == 1 and why in lines[0], proc.stderr
        assert "| finetune | 2 |" in (out / "report.md").read_text()
        return lines[0]

    return case


def json_text(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        results = fake_results(seed=7)
        change(results)
        path.write_text(json.dumps(results))

    return write


def set_key(key: str, value) -> Callable[[dict], None]:
    def change(results: dict) -> None:
        node = results
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def nan_in_matrix(path: Path) -> None:
    path.write_text(json.dumps(fake_results(seed=7)).replace("0.9, null", "NaN, null", 1))


def invalid_utf8(path: Path) -> None:
    path.write_bytes(
        json.dumps(fake_results(seed=7)).encode().replace(b'"pmnist"', b'"pm\xffnist"', 1)
    )


def one_task_of_two(path: Path) -> None:
    path.write_text(json.dumps(fake_results(tasks=1, seed=7, num_tasks=2)))


def pipe(path: Path) -> None:
    os.mkfifo(path)


def runs_of_different_lengths(env: Env) -> str:
    """Runs whose config does not say the number of tasks, of 2 and 3 tasks: each length is a
    table of its own, the 3x3 matrix never averaged with 2x2 ones."""
    runs = write_runs(env.new("runs"), num_tasks=None)
    (runs / "long").mkdir()
    (runs / "long" / "results.json").write_text(json.dumps(fake_results(3, 9, num_tasks=None)))
    out = env.new("report")
    ok(run_den("den.compare", str(runs), "--out", str(out)))
    report = (out / "report.md").read_text()
    assert "pmnist, 2 tasks" in report and "pmnist, 3 tasks" in report, report
    assert "| finetune | 2 |" in report and "| finetune | 1 |" in report, report
    return "two tables: pmnist, 2 tasks (2 runs); pmnist, 3 tasks (1 run)"


def pareto_garbage_line(env: Env) -> str:
    folder = env.new("search") / "s"
    journal = pareto_study(folder, [fake_results()["final"]] * 2)
    lines = journal.read_text().splitlines()
    lines.insert(2, "this is not JSON {")
    journal.write_text("\n".join(lines) + "\n")
    proc = run_den("den.pareto", str(folder))
    assert proc.returncode == 2 and "optuna.journal" in proc.stderr and "line 3" in proc.stderr
    return last_line(proc)


def pareto_final_is_a_list(env: Env) -> str:
    folder = env.new("search") / "s"
    pareto_study(folder, [[0.9, 0.8], fake_results()["final"]])
    ok(run_den("den.pareto", str(folder), "--out", str(folder / "report")))
    report = (folder / "report" / "pareto.md").read_text()
    assert "unreadable" in report and "trial_0000" in report, report
    return next(ln for ln in report.splitlines() if "unreadable" in ln)


def choose_bad_validation_matrix(env: Env) -> str:
    runs = write_runs(env.new("runs"))
    bad = runs / "bad" / "results.json"
    bad.parent.mkdir()
    json_text(set_key("val_acc_matrix", [["high"], [0.1, 0.2]]))(bad)
    proc = run_den("den.choose", str(runs), "--budget-nonzero", "5", "--budget-stored", "5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if str(bad) in ln]
    assert len(lines) == 1 and "val_acc_matrix" in lines[0], proc.stderr
    return lines[0]


# --------------------------------------------------------------------------- 15: pre-flight


def full_error_refusal(busy: bool) -> Callable[[Env], str]:
    """``HYDRA_FULL_ERROR=1`` and a run refused by the pre-flight check (the folder holds a
    finished run, or another process holds it): exit 2, the other run's .hydra/ untouched."""

    def case(env: Env) -> str:
        run_dir = env.new("full") / "run"
        ok(train(env, *FAST, run_dir=run_dir))
        before = {p.name: p.read_bytes() for p in (run_dir / ".hydra").iterdir()}
        holder = None
        if busy:  # a process that holds the folder's lock as a running run would
            code = "import fcntl,os,sys,time; fd=os.open(sys.argv[1],os.O_RDWR); fcntl.flock(fd,fcntl.LOCK_EX); print(1,flush=True); time.sleep(300)"
            holder = subprocess.Popen(
                [sys.executable, "-c", code, str(run_dir / ".den.lock")],
                stdout=subprocess.PIPE,
                text=True,
            )
            holder.stdout.readline()
        try:
            proc = train(
                env,
                *FAST,
                "seed=1",
                *(["resume=true"] if busy else []),
                run_dir=run_dir,
                env_extra={"HYDRA_FULL_ERROR": "1"},
                traceback_ok=True,
            )
        finally:
            if holder is not None:
                holder.kill()
                holder.wait()
        after = {p.name: p.read_bytes() for p in (run_dir / ".hydra").iterdir()}
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert after == before, "the refused run rewrote the other run's .hydra/"
        return last_line(proc) + "; the other run's .hydra/ unchanged"

    return case


# --------------------------------------------------------------------------- 16: sweeps


def failing_job_in_sweep(*launcher: str) -> Callable[[Env], str]:
    """seed=0,-1,1: seeds 0 and 1 finish, seed -1 is recorded (failed.json) and listed at
    the end, and the sweep exits 1."""

    def case(env: Env) -> str:
        folder = env.new("sweep") / "mr"
        proc = sweep(env, *FAST, "seed=0,-1,1", *launcher, sweep_dir=folder, timeout=900)
        assert proc.returncode == 1, proc.stderr[-3000:]
        results = sorted(p.parent.name for p in folder.rglob("results.json"))
        failed = sorted(folder.rglob("failed.json"))
        assert len(results) == 2 and len(failed) == 1, (results, failed)
        record = json.loads(failed[0].read_text())
        assert record["status"] == "failed" and "seed" in record["error"]
        assert "1 of 3 jobs" in proc.stderr and "seed=-1" in proc.stderr, proc.stderr
        return f"{listing(proc)}; results in {results}"

    return case


def failing_trial_in_search(env: Env) -> str:
    """The optuna sweeper over seed=choice(0,-1), two trials (a seeded random sampler draws
    -1, then 0): the failed trial is listed at the end and the search exits 1."""
    pytest_skip_without("optuna")
    folder = env.new("search") / "s"
    proc = sweep(
        env,
        *FAST,
        "hydra/sweeper=den_optuna",
        "hydra.sweeper.sampler._target_=optuna.samplers.RandomSampler",
        "hydra.sweeper.sampler.seed=0",
        "hydra.sweeper.n_trials=2",
        "seed=choice(0,-1)",
        sweep_dir=folder,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(list(folder.rglob("results.json"))) == 1
    assert len(list(folder.rglob("failed.json"))) == 1
    assert "1 of 2 trials" in proc.stderr and "seed=-1" in proc.stderr, proc.stderr
    return listing(proc)


def listing(proc: subprocess.CompletedProcess) -> str:
    """The end of a sweep's stderr: the error line and the failed jobs, one line."""
    lines = proc.stderr.splitlines()
    start = max(i for i, ln in enumerate(lines) if ln.startswith("Error:"))
    return f"exit {proc.returncode}: " + " / ".join(ln.strip() for ln in lines[start : start + 2])


def pytest_skip_without(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise SkipCase(f"{module} is not installed") from None


# --------------------------------------------------------------------------- 17: splits, NaN


def mnist_test_labels(env: Env, drop: tuple[int, ...]) -> Path:
    """A copy of the tiny MNIST whose test examples of the classes ``drop`` are labelled 0."""
    root = env.new("data")
    shutil.copytree(env.mnist, root, dirs_exist_ok=True)
    labels = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    data = bytearray(labels.read_bytes())
    for i in range(8, len(data)):
        if data[i] in drop:
            data[i] = 0
    labels.write_bytes(bytes(data))
    return root


def degenerate_test_split(drop: tuple[int, ...], expect: str) -> Callable[[Env], str]:
    def case(env: Env) -> str:
        root = mnist_test_labels(env, drop)
        run_dir = env.new("split") / "run"
        proc = train(
            env,
            *FAST,
            "stream=split_mnist",
            "stream.num_tasks=5",
            "stream.val_size=300",
            f"stream.root={root}",
            run_dir=run_dir,
        )
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "task 5" in proc.stderr and expect in proc.stderr, proc.stderr
        assert not (run_dir / "results.json").exists()
        return last_line(proc)

    return case


def nan_is_written_as_null(env: Env) -> str:
    """An evaluation that gives NaN: results.json and metrics.jsonl stay strict JSON (null),
    with a warning naming where."""
    import logging

    real = den.run.loop.evaluate
    warnings: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    def nan_auroc(*args, **kwargs):
        return {**real(*args, **kwargs), "auroc": float("nan")}

    handler = Catch(logging.WARNING)
    logging.getLogger("den").addHandler(handler)
    try:
        with Patch((den.run.loop, "evaluate", nan_auroc)):
            out = env.new("nan")
            run_cfg(env, FAST, out)
    finally:
        logging.getLogger("den").removeHandler(handler)

    def strict(text: str):
        return json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))

    results = strict((out / "results.json").read_text())
    rows = [strict(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert results["auroc_matrix"][0][0] is None and rows[0]["auroc"] is None
    shown = next(w for w in warnings if "results.json" in w)
    return shown[:160]


# --------------------------------------------------------------------------- 18: resume


def crafted_checkpoint(
    change: Callable[[dict], None], expect: str, first: tuple = (), then: tuple = ()
) -> Callable[[Env], str]:
    """A finished run (``first``: its overrides) whose checkpoint.pt was then changed by
    ``change``; ``resume=`` of it (``then``: its overrides) is refused naming the file and
    the files to remove."""

    def case(env: Env) -> str:
        run_dir = env.new("crafted") / "run"
        ok(train(env, *FAST, *first, run_dir=run_dir))
        path = run_dir / "checkpoint.pt"
        state = torch.load(path, weights_only=True)
        change(state)
        torch.save(state, path)
        proc = train(env, *FAST, *then, "resume=true", run_dir=run_dir)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert str(path) in proc.stderr and "remove" in proc.stderr and expect in proc.stderr, (
            proc.stderr
        )
        return last_line(proc)

    return case


def smaller_network(state: dict) -> None:
    """Weights of a 16-8 network (the run's) under a stored config and size of 32-16."""
    state["record"]["meta"]["config"]["model"]["hidden"] = [32, 16]
    state["record"]["base_params"] = 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10


def params_a_string(state: dict) -> None:
    state["record"]["params"] = "many"


def one_timing_too_few(state: dict) -> None:
    state["record"]["learn_time_s"] = state["record"]["learn_time_s"][:1]


def resume_log_goes_to_resumed_folder(env: Env) -> str:
    base = env.new("elsewhere")
    run_dir, other = base / "run", base / "other"
    ok(train(env, *FAST, run_dir=run_dir))
    before = (run_dir / "train.log").read_text()
    proc = ok(train(env, *FAST, f"resume={run_dir}", run_dir=other))
    after = (run_dir / "train.log").read_text()
    assert not other.exists(), f"{other} was created: the resumed part's log went there"
    assert after.startswith(before) and "resuming" in after[len(before) :]
    return (
        last_line(proc).split(": ", 1)[0] + f": the resumed part's log in {run_dir.name}/train.log"
    )


# --------------------------------------------------------------------------- 20: tracebacks


def refused_run(
    *overrides: str, run_dir: Callable[[Path], Path], expect: str
) -> Callable[[Env], str]:
    def case(env: Env) -> str:
        folder = run_dir(env.new("odd"))
        proc = train(env, *FAST, *overrides, run_dir=folder)
        assert proc.returncode == 2 and expect in proc.stderr, proc.stderr[-3000:]
        return last_line(proc)

    return case


def a_file(base: Path) -> Path:
    (base / "run").write_text("not a folder\n")
    return base / "run"


def disk_full_while_hydra_files_are_written(env: Env) -> str:
    """A file system with room for the lock file's one page only: the write of
    .hydra/config.yaml fails, and the message names it (a real full tmpfs)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        raise SkipCase("mounting a small tmpfs needs root")
    mount = env.new("full")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SkipCase(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        (mount / "filler").write_bytes(b"\0" * (64 * 1024 - page))  # one page left
        proc = train(env, *FAST, run_dir=mount / "run")
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert ".hydra/config.yaml" in proc.stderr and "No space left" in proc.stderr, proc.stderr
        return last_line(proc)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


# --------------------------------------------------------------------------- the table

CASES: list[Case] = [
    # ---- 14: no write leaves the run or output folder
    Case(
        ".den.lock a link to a file", 14, "link", link_in_run_dir(".den.lock"), ("symbolic link",)
    ),
    Case(
        ".den.lock a link, resume=",
        14,
        "link",
        link_in_run_dir(".den.lock", resume=True),
        (".den.lock",),
    ),
    Case(
        "metrics.jsonl a dangling link",
        14,
        "link",
        link_in_run_dir("metrics.jsonl", "dangling"),
        ("metrics.jsonl",),
    ),
    Case(".hydra a link to a folder", 14, "link", link_in_run_dir(".hydra", "dir"), (".hydra",)),
    Case(
        ".hydra/config.yaml a link",
        14,
        "link",
        link_in_run_dir(".hydra/config.yaml"),
        ("config.yaml",),
    ),
    Case("train.log a link", 14, "link", link_in_run_dir("train.log"), ("train.log",)),
    Case(
        "results.json a link, resume=",
        14,
        "link",
        link_in_run_dir("results.json", resume=True),
        ("results.json",),
    ),
    Case(
        "checkpoint.pt a link, resume=",
        14,
        "link",
        link_in_run_dir("checkpoint.pt", resume=True),
        ("checkpoint.pt",),
    ),
    Case(
        "metrics.csv a link (logger=csv)",
        14,
        "link",
        link_in_run_dir("metrics.csv", extra=("logger=csv",)),
        ("metrics.csv",),
    ),
    Case(
        "stale temporaries: link, folder, pipe",
        14,
        "link",
        stale_temporaries_of_any_kind,
        ("removed",),
    ),
    Case("sweep: multirun.yaml a link", 14, "link", link_as_multirun_yaml, ("multirun.yaml",)),
    Case("sweep: a job folder a link", 14, "link", link_as_job_folder, ("symbolic link",)),
    Case(
        "den.compare: report.md a link",
        14,
        "link",
        link_in_report_folder("report.md"),
        ("report.md",),
    ),
    Case(
        "den.compare: summary.csv a link",
        14,
        "link",
        link_in_report_folder("summary.csv"),
        ("summary.csv",),
    ),
    Case(
        "den.compare: a plot a link",
        14,
        "link",
        link_in_report_folder("avg_acc_curve.png"),
        ("avg_acc_curve.png",),
    ),
    Case("den.pareto: pareto.md a link", 14, "link", link_in_pareto_folder, ("pareto.md",)),
    Case("den.choose: --out a link", 14, "link", link_as_choose_out, ("choice.md",)),
    # ---- 15: pre-flight checks that no environment variable bypasses
    Case(
        "HYDRA_FULL_ERROR=1, finished run's folder",
        15,
        "preflight",
        full_error_refusal(False),
        ("exit 2",),
    ),
    Case(
        "HYDRA_FULL_ERROR=1, folder in use", 15, "preflight", full_error_refusal(True), ("exit 2",)
    ),
    # ---- 16: a sweep survives a failed job
    Case("sweep, basic launcher: seed=0,-1,1", 16, "sweep", failing_job_in_sweep(), ("exit 1",)),
    Case(
        "sweep, joblib launcher: seed=0,-1,1",
        16,
        "sweep",
        failing_job_in_sweep("hydra/launcher=joblib", "hydra.launcher.n_jobs=2"),
        ("exit 1",),
    ),
    Case(
        "sweep, submitit_local: seed=0,-1,1",
        16,
        "sweep",
        failing_job_in_sweep("hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"),
        ("exit 1",),
    ),
    Case(
        "search (optuna): one trial of two fails",
        16,
        "sweep",
        failing_trial_in_search,
        ("1 of 2 trials",),
    ),
    # ---- 17: splits that cannot be evaluated, NaN
    Case(
        "split_mnist, test labels lack 8 and 9",
        17,
        "data",
        degenerate_test_split((8, 9), "no examples in its test split"),
        ("task 5",),
    ),
    Case(
        "split_mnist, test labels lack 9",
        17,
        "data",
        degenerate_test_split((9,), "one class only"),
        ("AUROC",),
    ),
    Case("NaN metric written as null", 17, "data", nan_is_written_as_null, ("null",)),
    # ---- 18: resume checks the checkpoint against the config
    Case(
        "resume: 16-8 weights, stored config 32-16",
        18,
        "file",
        crafted_checkpoint(
            smaller_network, "units", ("model.hidden=[16,8]",), ("model.hidden=[32,16]",)
        ),
        ("checkpoint.pt",),
    ),
    Case(
        "resume: record params a string",
        18,
        "file",
        crafted_checkpoint(params_a_string, "params"),
        ("checkpoint.pt",),
    ),
    Case(
        "resume: record with a timing missing",
        18,
        "file",
        crafted_checkpoint(one_timing_too_few, "learn_time_s"),
        ("checkpoint.pt",),
    ),
    Case(
        "resume=<dir> with another hydra.run.dir",
        18,
        "file",
        resume_log_goes_to_resumed_folder,
        ("train.log",),
    ),
    # ---- 19: den.compare, den.pareto and den.choose on untrusted files
    Case(
        "compare: final a string",
        19,
        "report",
        bad_results_file(json_text(set_key("final", "oops")), "final"),
        ("skipped",),
    ),
    Case(
        "compare: final.avg_acc null",
        19,
        "report",
        bad_results_file(json_text(set_key("final.avg_acc", None)), "avg_acc"),
        ("skipped",),
    ),
    Case(
        "compare: NaN in a matrix",
        19,
        "report",
        bad_results_file(nan_in_matrix, "NaN"),
        ("skipped",),
    ),
    Case(
        "compare: invalid UTF-8",
        19,
        "report",
        bad_results_file(invalid_utf8, "UTF-8"),
        ("skipped",),
    ),
    Case(
        "compare: 1x1 'complete' among 2-task runs",
        19,
        "report",
        bad_results_file(one_task_of_two, "1 of its 2 tasks"),
        ("skipped",),
    ),
    Case(
        "compare: wall_time_s a string",
        19,
        "report",
        bad_results_file(json_text(set_key("wall_time_s", "long")), "wall_time_s"),
        ("skipped",),
    ),
    Case(
        "compare: results.json a named pipe",
        19,
        "report",
        bad_results_file(pipe, "not a regular file"),
        ("skipped",),
    ),
    Case(
        "compare: 2- and 3-task runs, no num_tasks",
        19,
        "report",
        runs_of_different_lengths,
        ("two tables",),
    ),
    Case("pareto: a garbage journal line", 19, "report", pareto_garbage_line, ("line 3",)),
    Case("pareto: a trial's final a list", 19, "report", pareto_final_is_a_list, ("unreadable",)),
    Case(
        "choose: a string in val_acc_matrix",
        19,
        "report",
        choose_bad_validation_matrix,
        ("skipped",),
    ),
    # ---- 20: other tracebacks
    Case(
        "seed=18446744073709551616",
        20,
        "value",
        refused_run("seed=18446744073709551616", run_dir=lambda b: b / "run", expect="seed"),
        ("seed",),
    ),
    Case(
        "a 300-byte run directory name",
        20,
        "value",
        refused_run(run_dir=lambda b: b / ("r" * 300), expect="255 bytes"),
        ("255",),
    ),
    Case(
        "run directory is a file",
        20,
        "value",
        refused_run(run_dir=a_file, expect="is a file"),
        ("is a file",),
    ),
    Case(
        "disk full while .hydra/ is written",
        20,
        "disk",
        disk_full_while_hydra_files_are_written,
        ("config.yaml",),
    ),
]
