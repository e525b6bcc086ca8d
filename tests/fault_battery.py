"""A battery of bad inputs and faults, each with the guarantee it must keep.

Every case is a function ``case(env) -> str`` that provokes one mistake or fault the way a
user (or a full disk, a signal, a second process) would, asserts what must hold (no training
with the bad value, no lost or duplicated data, no temporary file left, no traceback) and
returns the message the user gets. ``tests/test_fault_battery.py`` runs them all.

Cases run in-process through Hydra's compose API and :func:`den.train.run` (a fraction of a
second each) unless they need a real process: signals, two processes, another user.
``item`` is the number of the reliability checklist item the case checks (0 = beyond it).
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

import den.run.loop
import den.train as train_module
import den.utils.files
from den.config.store import register_configs
from den.errors import DenError

REPO_ROOT = Path(__file__).resolve().parents[1]
# The checkout whose ``python -m den...`` the command-line cases run (DEN_BATTERY_REPO names
# another one, e.g. an older commit, to see which cases it fails).
CLI_ROOT = Path(os.environ.get("DEN_BATTERY_REPO", REPO_ROOT))

BASE = (
    "+experiment=pmnist",
    "logger=none",
    "stream.download=false",
    "stream.num_tasks=2",
    "stream.val_size=50",
    "trainer.max_iters=5",
    "trainer.eval_every=5",
    "trainer.progress=false",
)
FAST = ("strategy=finetune",)


@dataclass
class Env:
    """Where a case works: a fresh folder per call of :meth:`new`, a tiny MNIST and image
    folder (see conftest), all under ``root``."""

    root: Path
    mnist: Path
    images: Path

    def new(self, name: str = "run") -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))


class NoError(AssertionError):
    """The bad input was accepted: the run would go on with it."""


def compose_cfg(
    env: Env, overrides: list[str] | tuple[str, ...], out: Path, root: Path | None = None
):
    register_configs()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                *BASE,
                f"stream.root={root or env.mnist}",
                f"paths.output_dir={out}",
                *overrides,
            ],
        )


def run_cfg(env: Env, overrides, out: Path, root: Path | None = None) -> dict:
    return train_module.run(compose_cfg(env, overrides, out, root))


def message_of(fn: Callable[[], object]) -> str:
    """The message of the error ``fn`` raises; a den error or Hydra's composition error."""
    try:
        fn()
    except DenError as err:
        return f"Error: {err}"
    except (HydraException, OmegaConfBaseException) as err:
        cause = f" {err.__cause__}" if err.__cause__ else ""
        return f"{err}{cause}".replace("\n", " ")
    raise NoError("accepted: no error")


def bad_value(*overrides: str, fast: bool = True) -> Callable[[Env], str]:
    """A config mistake: an error naming the key, before any file is written."""

    def case(env: Env) -> str:
        out = env.new()

        def train(*args, **kwargs):
            raise NoError("training started with the bad value")

        with Patch((train_module, "learn_stream", train)):
            msg = message_of(lambda: run_cfg(env, [*(FAST if fast else ()), *overrides], out))
        assert not (out / "results.json").exists() and not (out / "checkpoint.pt").exists()
        return msg

    return case


# --------------------------------------------------------------------------- runs and files


def finished_run(env: Env, *overrides: str, tasks: int = 2) -> Path:
    out = env.new("done")
    run_cfg(env, [*FAST, f"stream.num_tasks={tasks}", *overrides], out)
    return out


def metric_keys(run_dir: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["after_task"], r["task"], r["split"]) for r in rows]


def expected_keys(tasks: int) -> list[tuple]:
    return [(i, j, s) for i in range(tasks) for j in range(i + 1) for s in ("val", "test")]


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {
        name: (run_dir / name).read_bytes()
        for name in ("results.json", "metrics.jsonl", "checkpoint.pt")
        if (run_dir / name).exists()
    }


def temporaries(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.glob(".*") if den.utils.files.TMP_MARK in p.name]


def bad_checkpoint(write: Callable[[Path], None], *overrides: str) -> Callable[[Env], str]:
    """``resume=`` a folder whose checkpoint.pt was written by ``write``."""

    def case(env: Env) -> str:
        run_dir = env.new("ckpt")
        write(run_dir / "checkpoint.pt")
        msg = message_of(
            lambda: run_cfg(env, [*FAST, f"resume={run_dir}", *overrides], env.new("log"))
        )
        assert "checkpoint.pt" in msg
        return msg

    return case


class Exploit:
    """A pickle that runs code when loaded with weights_only=False."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious_checkpoint(env: Env) -> str:
    run_dir = env.new("evil")
    marker = run_dir / "pwned"
    torch.save({"format": 1, "payload": Exploit(marker)}, run_dir / "checkpoint.pt")
    msg = message_of(lambda: run_cfg(env, [*FAST, f"resume={run_dir}"], env.new("log")))
    assert not marker.exists(), "loading the checkpoint ran code"
    return msg


def other_strategy_checkpoint(strategy: str) -> Callable[[Env], str]:
    def case(env: Env) -> str:
        run_dir = env.new("den")
        run_cfg(env, ["stream.num_tasks=2", "trainer.max_iters=3"], run_dir)  # DEN's checkpoint
        before = snapshot(run_dir)
        msg = message_of(
            lambda: run_cfg(
                env, ["stream.num_tasks=2", f"strategy={strategy}", f"resume={run_dir}"], run_dir
            )
        )
        assert "strategy.name" in msg and "object at" not in msg
        assert snapshot(run_dir) == before
        return msg

    return case


def changed_seed_checkpoint(env: Env) -> str:
    run_dir = finished_run(env)
    msg = message_of(lambda: run_cfg(env, [*FAST, "seed=3", f"resume={run_dir}"], run_dir))
    assert "seed" in msg
    return msg


# --------------------------------------------------------------------------- disk faults


def failing_write(monkeypatch_target: str, code: int, after_calls: int = 0):
    """Replace den.utils.files._write_all: writes to a file whose name contains
    ``monkeypatch_target`` fail with ``code`` (after ``after_calls`` good ones), having
    written half their data (a disk that fills up mid-write)."""
    real = den.utils.files._write_all
    calls = {"n": 0}

    def write(fd: int, data: bytes) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}")
        if monkeypatch_target in Path(name).name:
            calls["n"] += 1
            if calls["n"] > after_calls:
                real(fd, data[: len(data) // 2])
                raise OSError(code, os.strerror(code))
        real(fd, data)

    return write


class Patch:
    """Set attributes for the duration of a ``with`` block (the battery also runs outside
    pytest, so no monkeypatch fixture)."""

    def __init__(self, *triples) -> None:
        self.triples = triples
        self.saved: list = []

    def __enter__(self):
        for obj, name, value in self.triples:
            self.saved.append((obj, name, getattr(obj, name)))
            setattr(obj, name, value)

    def __exit__(self, *exc) -> None:
        for obj, name, value in reversed(self.saved):
            setattr(obj, name, value)


def disk_fault(target: str, code: int, expect: str) -> Callable[[Env], str]:
    """``target`` (checkpoint.pt / results.json / metrics.jsonl) fails to write during task 2
    of 3; the run stops naming the file and the cause, leaves no temporary file, keeps task 1,
    and a resume afterwards ends with every metrics row exactly once."""

    def case(env: Env) -> str:
        run_dir = env.new("disk")
        ovr = [*FAST, "stream.num_tasks=3"]
        fault = failing_write(target, code, after_calls=1)
        with Patch((den.utils.files, "_write_all", fault)):
            msg = message_of(lambda: run_cfg(env, ovr, run_dir))
        assert target in msg and expect in msg, msg
        assert temporaries(run_dir) == [], temporaries(run_dir)
        done = len(torch.load(run_dir / "checkpoint.pt", weights_only=True)["record"]["params"])
        assert done >= 1
        run_cfg(env, [*ovr, f"resume={run_dir}"], run_dir)
        assert metric_keys(run_dir) == expected_keys(3)
        assert json.loads((run_dir / "results.json").read_text())["status"] == "complete"
        return msg

    return case


def crash_between_checkpoint_and_metrics(env: Env) -> str:
    """The checkpoint of task 2 is written, then the process dies before metrics.jsonl: the
    resumed run restores the missing rows from the checkpoint (none lost, none repeated)."""
    run_dir = env.new("gap")
    ovr = [*FAST, "stream.num_tasks=3"]
    real = den.run.loop.append_metrics

    def die_at_task_2(record, i, path):
        if i == 1:
            raise DenError("simulated crash after the checkpoint of task 2")
        real(record, i, path)

    with Patch((den.run.loop, "append_metrics", die_at_task_2)):
        msg = message_of(lambda: run_cfg(env, ovr, run_dir))
    assert metric_keys(run_dir) == expected_keys(1)
    run_cfg(env, [*ovr, f"resume={run_dir}"], run_dir)
    assert metric_keys(run_dir) == expected_keys(3)
    return msg + " -> resumed: 12 rows, each once"


def repeated_failures_then_resume(env: Env) -> str:
    """Issue 19's sequence: two failed checkpoint saves of task 2, then a resume: 12 rows."""
    run_dir = env.new("twice")
    ovr = [*FAST, "stream.num_tasks=3"]
    with Patch((den.utils.files, "_write_all", failing_write("checkpoint.pt", errno.ENOSPC, 1))):
        message_of(lambda: run_cfg(env, ovr, run_dir))
    with Patch((den.utils.files, "_write_all", failing_write("checkpoint.pt", errno.ENOSPC, 0))):
        msg = message_of(lambda: run_cfg(env, [*ovr, f"resume={run_dir}"], run_dir))
    assert temporaries(run_dir) == []
    run_cfg(env, [*ovr, f"resume={run_dir}"], run_dir)
    keys = metric_keys(run_dir)
    assert keys == expected_keys(3), f"{len(keys)} rows"
    return msg + " -> resumed: 12 rows, each once"


def stale_temporary_removed(env: Env) -> str:
    """A process killed mid-write leaves .checkpoint.pt.tmp<pid>: the next run of the
    directory deletes it (a full disk does not stay full)."""
    run_dir = finished_run(env, tasks=1)
    stale = run_dir / ".checkpoint.pt.tmp999999"
    stale.write_bytes(b"x" * 1000)
    run_cfg(env, [*FAST, "stream.num_tasks=1", "resume=true"], run_dir)
    assert not stale.exists()
    return "resume=true: stale .checkpoint.pt.tmp999999 deleted, run complete"


# --------------------------------------------------------------------------- concurrency


def fresh_run_into_finished_dir(env: Env) -> str:
    run_dir = finished_run(env)
    before = snapshot(run_dir)
    msg = message_of(lambda: run_cfg(env, [*FAST, "seed=1"], run_dir))
    assert snapshot(run_dir) == before, "the finished run's files changed"
    assert f"resume={run_dir}" in msg and "hydra.run.dir" in msg
    return msg


def lock_held_elsewhere(env: Env) -> str:
    run_dir = env.new("busy")
    fd = os.open(run_dir / ".den.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another open file: another holder
    try:
        msg = message_of(lambda: run_cfg(env, FAST, run_dir))
    finally:
        os.close(fd)
    assert "in use by another run" in msg and not (run_dir / "results.json").exists()
    return msg


def resume_finished_run(env: Env) -> str:
    run_dir = finished_run(env)
    before = json.loads((run_dir / "results.json").read_text())
    run_cfg(env, [*FAST, "resume=true"], run_dir)
    after = json.loads((run_dir / "results.json").read_text())
    assert after["acc_matrix"] == before["acc_matrix"]
    assert metric_keys(run_dir) == expected_keys(2)
    return "resume=true of a complete run: nothing retrained, nothing duplicated (exit 0)"


def messed_up_metrics_rebuilt(env: Env) -> str:
    """Rows of a task the checkpoint lacks (and a half-written last line) are dropped on
    resume; the rows of checkpointed tasks come back from the checkpoint."""
    run_dir = finished_run(env, tasks=1)
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write('{"after_task": 1, "task": 0, "split": "val", "acc": 0.5}\n{"after_ta')
    run_cfg(env, [*FAST, "stream.num_tasks=1", "resume=true"], run_dir)
    assert metric_keys(run_dir) == expected_keys(1)
    return "metrics.jsonl with a stray row and half a line: rebuilt from the checkpoint"


def cli(
    *overrides: str,
    run_dir: Path,
    env_extra: dict | None = None,
    user: bool = False,
    popen: bool = False,
):
    """``python -m den.train`` as a real process (optionally as the unprivileged user)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DEN_DATA_ROOT", "HYDRA_FULL_ERROR")}
    env.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(env_extra or {})
    cmd = [
        sys.executable,
        "-m",
        "den.train",
        *BASE,
        "threads=1",
        *overrides,
        f"hydra.run.dir={run_dir}",
    ]
    if user:
        cmd = [*as_nobody(), *cmd]
        env["HOME"] = str(run_dir.parent)
    kwargs = dict(cwd=CLI_ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if popen:
        return subprocess.Popen(cmd, **kwargs)
    proc = subprocess.run(cmd, timeout=300, **kwargs)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    return proc


def cli_message(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return f"exit {proc.returncode}: " + (lines[-1] if lines else "(no message)")


def two_processes_one_directory(env: Env) -> str:
    run_dir = env.new("race")
    procs = [
        cli(*FAST, f"stream.root={env.mnist}", f"seed={s}", run_dir=run_dir, popen=True)
        for s in (0, 1)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], codes
    loser = next(o for p, o in zip(procs, outs, strict=True) if p.returncode == 2)
    assert "Traceback" not in loser[1]
    seed = json.loads((run_dir / "results.json").read_text())["seed"]
    overrides = (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert f"seed={seed}" in overrides, "the .hydra record is another run's"
    assert metric_keys(run_dir) == expected_keys(2)
    lines = [ln for ln in loser[1].splitlines() if ln.strip()]
    return "exit 2: " + lines[-1]


def schema_as_strategy(env: Env) -> str:
    run_dir = env.new("schema") / "run"
    proc = cli("strategy=den_schema", f"stream.root={env.mnist}", run_dir=run_dir)
    assert proc.returncode == 2 and "strategy=den" in proc.stderr
    assert not run_dir.exists(), "a refused config left a run folder"
    return cli_message(proc)


def config_error_leaves_no_folder(env: Env) -> str:
    run_dir = env.new("cfg") / "run"
    proc = cli("trainer.lr=nan", f"stream.root={env.mnist}", run_dir=run_dir)
    assert proc.returncode == 2 and "trainer.lr" in proc.stderr
    assert not run_dir.exists(), "a refused config left a run folder"
    return cli_message(proc)


# --------------------------------------------------------------------------- signals


def wait_for_log(run_dir: Path, text: str, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        log = run_dir / "train.log"
        if log.exists() and text in log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in train.log")


def signal_in_task_1(signals: tuple[int, ...]) -> Callable[[Env], str]:
    def case(env: Env) -> str:
        run_dir = env.new("sig") / "run"
        proc = cli(
            *FAST,
            f"stream.root={env.mnist}",
            "trainer.max_iters=100000",
            "trainer.patience=0",
            "trainer.batch_size=8",
            run_dir=run_dir,
            popen=True,
        )
        wait_for_log(run_dir, "task 1 of 2", proc)
        time.sleep(0.5)
        for sig in signals:
            proc.send_signal(sig)
            time.sleep(0.05)
        _, stderr = proc.communicate(timeout=120)
        # 128+signal; or killed by the signal itself (-signal: the shell shows 128+signal too)
        # when the second one lands while the interpreter exits after printing its message
        assert proc.returncode in (128 + signals[-1], -signals[-1]), (proc.returncode, stderr)
        assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
        assert not (run_dir / "checkpoint.pt").exists()
        if len(signals) == 1:
            assert "no checkpoint yet" in stderr and "without resume" in stderr
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        return f"exit {128 + abs(proc.returncode) if proc.returncode < 0 else proc.returncode}: {lines[-1]}"

    return case


# --------------------------------------------------------------------------- permissions


def as_nobody() -> list[str]:
    """The command prefix that runs as the unprivileged user (root only)."""
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


@functools.cache
def can_drop_privileges() -> str | None:
    """None when the permission cases can run, else why not. As root they run as ``nobody``
    (root reads everything), which must be able to import den and torch from here."""
    if os.geteuid() != 0:
        return None
    if shutil.which("setpriv") is None:
        return "running as root without setpriv: cannot test permissions as another user"
    probe = subprocess.run(
        [*as_nobody(), sys.executable, "-c", "import den.train"],
        cwd=REPO_ROOT,
        capture_output=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    if probe.returncode != 0:
        return "user nobody cannot run den from this checkout (its folders are not readable)"
    return None


def permission_case(setup: Callable[[Env, Path, Path], tuple[list[str], Path]], expect: str):
    def case(env: Env) -> str:
        reason = can_drop_privileges()
        if reason:
            raise SkipCase(reason)
        # Under /tmp, not pytest's private (0700) folders, so the unprivileged user reaches it
        base = Path(tempfile.mkdtemp(prefix="den-perm-", dir="/tmp"))
        try:
            os.chmod(base, 0o777)
            data = base / "data"
            shutil.copytree(env.mnist, data)
            for p in [data, *data.rglob("*")]:
                os.chmod(p, 0o755 if p.is_dir() else 0o644)
            overrides, run_dir = setup(env, base, data)
            proc = cli(*FAST, *overrides, run_dir=run_dir, user=os.geteuid() == 0)
            assert proc.returncode == 2, proc.stderr
            assert expect in proc.stderr, proc.stderr
            assert not (run_dir / "results.json").exists()
            return cli_message(proc)
        finally:
            for p in [base, *base.rglob("*")]:
                if not p.is_symlink():
                    os.chmod(p, 0o755)
            shutil.rmtree(base, ignore_errors=True)

    return case


class SkipCase(Exception):
    """The case cannot run here (the reason is the message)."""


def unreadable_data_file(env: Env, base: Path, data: Path):
    os.chmod(data / "MNIST" / "raw" / "train-labels-idx1-ubyte", 0o000)
    run_dir = base / "run"
    return [f"stream.root={data}"], run_dir


def read_only_run_dir(env: Env, base: Path, data: Path):
    run_dir = base / "readonly"
    run_dir.mkdir()
    os.chmod(run_dir, 0o555)
    return [f"stream.root={data}"], run_dir


def read_only_parent(env: Env, base: Path, data: Path):
    parent = base / "locked"
    parent.mkdir()
    os.chmod(parent, 0o555)
    return [f"stream.root={data}"], parent / "run"


def unreadable_raw_folder(env: Env, base: Path, data: Path):
    os.chmod(data / "MNIST" / "raw", 0o000)
    return [f"stream.root={data}"], base / "run"


# --------------------------------------------------------------------------- data files


def damaged_mnist(damage: Callable[[Path], None], *overrides: str) -> Callable[[Env], str]:
    def case(env: Env) -> str:
        root = env.new("data")
        shutil.copytree(env.mnist, root, dirs_exist_ok=True)
        damage(root / "MNIST" / "raw")
        return message_of(lambda: run_cfg(env, [*FAST, *overrides], env.new(), root))

    return case


def file_is_directory(raw: Path) -> None:
    (raw / "t10k-images-idx3-ubyte").unlink()
    (raw / "t10k-images-idx3-ubyte").mkdir()


def empty_raw(raw: Path) -> None:
    shutil.rmtree(raw)
    raw.mkdir()


def empty_file(raw: Path) -> None:
    (raw / "train-labels-idx1-ubyte").write_bytes(b"")


def download_retried(env: Env) -> str:
    """After a failed (offline) download left MNIST/raw empty, the next run with
    stream.download=true tries again instead of only telling the user to."""
    import torchvision.datasets as tvd

    root = env.new("offline")
    (root / "MNIST" / "raw").mkdir(parents=True)
    attempts = []

    def offline(self, *args, **kwargs):
        attempts.append(1)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    with Patch((tvd.MNIST, "download", offline)):
        msg = message_of(lambda: run_cfg(env, [*FAST, "stream.download=true"], env.new(), root))
    assert attempts, "no download was attempted"
    return msg


def empty_class_folder(env: Env) -> str:
    root = env.new("images")
    shutil.copytree(env.images, root, dirs_exist_ok=True)
    shutil.rmtree(root / ".den_cache", ignore_errors=True)
    for f in (root / "train" / "bird").iterdir():
        f.unlink()
    msg = message_of(
        lambda: run_cfg(
            env,
            [
                *FAST,
                "stream=split_cifar10",
                "stream.source=imagefolder",
                "model=lenet",
                "stream.val_size=20",
            ],
            env.new(),
            root,
        )
    )
    assert str(root / "train" / "bird") in msg
    return msg


def wandb_timeout_message(env: Env) -> str:
    import warnings

    from omegaconf import OmegaConf

    from den.loggers.wandb import WandbLogger, WandbLoggerConfig

    logger = WandbLogger.__new__(WandbLogger)
    logger.cfg = OmegaConf.structured(WandbLoggerConfig(init_timeout=5.0))
    logger.output_dir = env.new()
    logger.run = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger._give_up(
            "wandb.init",
            TimeoutError(
                "Run initialization has timed out after 5.0 sec. Please try "
                "increasing the timeout with wandb.init(settings=wandb.Settings(...))"
            ),
        )
    text = str(caught[0].message)
    assert "logger.init_timeout" in text and "settings=" not in text
    return text


# --------------------------------------------------------------------------- the table


@dataclass
class Case:
    id: str
    item: int
    kind: str
    run: Callable[[Env], str]
    expect: tuple[str, ...] = ()


def nan(key: str, strategy: str | None = None, value: str = "nan") -> Case:
    ovr = ([f"strategy={strategy}"] if strategy else []) + [f"{key}={value}"]
    return Case(
        f"{strategy or 'den'} {key}={value}", 6, "value", bad_value(*ovr, fast=False), (key,)
    )


CASES: list[Case] = [
    # ---- 6: non-finite floats, every strategy
    nan("strategy.l1"),
    nan("strategy.l2", value="inf"),
    nan("strategy.gl"),
    nan("strategy.lam", value="inf"),
    nan("strategy.tau"),
    nan("strategy.sigma"),
    nan("strategy.sigma_conv", value="-inf"),
    nan("strategy.lam", "ewc"),
    nan("strategy.gamma", "ewc", "inf"),
    nan("strategy.lam", "si"),
    nan("strategy.xi", "si"),
    nan("strategy.lam", "l2"),
    nan("strategy.alpha", "lwf"),
    nan("strategy.temperature", "lwf", "inf"),
    nan("strategy.prune", "packnet"),
    nan("strategy.column_scale", "pnn", "inf"),
    nan("trainer.lr", value="inf"),
    nan("trainer.lr"),
    nan("trainer.momentum"),
    nan("trainer.weight_decay", value="inf"),
    nan("trainer.lr_decay"),
    nan("trainer.min_delta", value="inf"),
    nan("stream.negatives_per_positive"),
    Case(
        "wandb logger.init_timeout=nan",
        6,
        "value",
        bad_value("logger=wandb", "logger.mode=disabled", "logger.init_timeout=nan"),
        ("logger.init_timeout",),
    ),
    # ---- 7: keys the schema does not have, also with +
    Case(
        "+trainer.lrr=0.1", 7, "value", bad_value("+trainer.lrr=0.1"), ("trainer.lrr", "trainer.lr")
    ),
    Case("+foo=1", 7, "value", bad_value("+foo=1"), ("foo",)),
    Case(
        "+strategy.tua=0.1 (den)",
        7,
        "value",
        bad_value("+strategy.tua=0.1", fast=False),
        ("strategy.tua", "strategy.tau"),
    ),
    Case(
        "+stream.num_task=3",
        7,
        "value",
        bad_value("+stream.num_task=3"),
        ("stream.num_task", "stream.num_tasks"),
    ),
    Case(
        "+model.hiden=[10]",
        7,
        "value",
        bad_value("+model.hiden=[10]"),
        ("model.hiden", "model.hidden"),
    ),
    Case("+seeds=3", 7, "value", bad_value("+seeds=3"), ("seeds", "seed")),
    Case("trainer.lrr=0.1 (no +)", 0, "value", bad_value("trainer.lrr=0.1"), ("lrr",)),
    # ---- 10: devices and threads
    Case("device=mps (no MPS)", 10, "value", bad_value("device=mps"), ("device", "MPS")),
    Case("device=cuda:7", 0, "value", bad_value("device=cuda:7"), ("device",)),
    Case("threads=100000", 10, "value", bad_value("threads=100000"), ("threads",)),
    Case("threads=-3", 0, "value", bad_value("threads=-3"), ("threads",)),
    # ---- other values
    Case(
        "trainer.eval_every=0",
        0,
        "value",
        bad_value("trainer.eval_every=0"),
        ("trainer.eval_every",),
    ),
    Case(
        "trainer.log_every=0", 0, "value", bad_value("trainer.log_every=0"), ("trainer.log_every",)
    ),
    Case(
        "trainer.eval_batch_size=0",
        0,
        "value",
        bad_value("trainer.eval_batch_size=0"),
        ("trainer.eval_batch_size",),
    ),
    Case("trainer.lr=0", 0, "value", bad_value("trainer.lr=0"), ("trainer.lr",)),
    Case(
        "stream.num_tasks=-1", 0, "value", bad_value("stream.num_tasks=-1"), ("stream.num_tasks",)
    ),
    Case(
        "trainer.batch_size=big", 0, "value", bad_value("trainer.batch_size=big"), ("batch_size",)
    ),
    Case("stream.num_tasks=1.5", 0, "value", bad_value("stream.num_tasks=1.5"), ("num_tasks",)),
    Case("deterministic=maybe", 0, "value", bad_value("deterministic=maybe"), ("deterministic",)),
    Case(
        "packnet strategy.prune=1.5",
        0,
        "value",
        bad_value("strategy=packnet", "strategy.prune=1.5"),
        ("strategy.prune",),
    ),
    Case(
        "den strategy.expansion_loss=test",
        0,
        "value",
        bad_value("strategy.expansion_loss=test", fast=False),
        ("strategy.expansion_loss",),
    ),
    Case("strategy=den_schema", 13, "value", schema_as_strategy, ("strategy",)),
    Case(
        "config error: no run folder left",
        13,
        "value",
        config_error_leaves_no_folder,
        ("trainer.lr",),
    ),
    # ---- 4, 5: checkpoints
    Case(
        "checkpoint: random bytes",
        4,
        "file",
        bad_checkpoint(lambda p: p.write_bytes(os.urandom(3000))),
        ("checkpoint.pt",),
    ),
    Case(
        "checkpoint: empty file",
        4,
        "file",
        bad_checkpoint(lambda p: p.write_bytes(b"")),
        ("checkpoint.pt",),
    ),
    Case(
        "checkpoint: torch file {'format': 1}",
        4,
        "file",
        bad_checkpoint(lambda p: torch.save({"format": 1}, p)),
        ("not a den checkpoint",),
    ),
    Case(
        "checkpoint: a tensor",
        4,
        "file",
        bad_checkpoint(lambda p: torch.save(torch.ones(3), p)),
        ("not a den checkpoint",),
    ),
    Case(
        "checkpoint: a pickle that runs code", 4, "file", malicious_checkpoint, ("checkpoint.pt",)
    ),
    Case(
        "checkpoint: plain pickle of a dict",
        4,
        "file",
        bad_checkpoint(lambda p: p.write_bytes(pickle.dumps({"format": 1}))),
        ("checkpoint.pt",),
    ),
    Case(
        "resume den run with strategy=er",
        5,
        "file",
        other_strategy_checkpoint("er"),
        ("strategy.name",),
    ),
    Case(
        "resume den run with strategy=pnn",
        5,
        "file",
        other_strategy_checkpoint("pnn"),
        ("strategy.name",),
    ),
    Case(
        "resume den run with strategy=finetune",
        5,
        "file",
        other_strategy_checkpoint("finetune"),
        ("strategy.name",),
    ),
    Case("resume with another seed", 0, "file", changed_seed_checkpoint, ("seed",)),
    Case(
        "resume= a folder without checkpoint",
        0,
        "file",
        lambda env: message_of(
            lambda: run_cfg(env, [*FAST, f"resume={env.new('empty')}"], env.new())
        ),
        ("checkpoint.pt",),
    ),
    Case("resume=/nonexistent", 0, "file", bad_value("resume=/nonexistent/run"), ("resume",)),
    # ---- 8, 13: data files
    Case("download retried after an offline attempt", 8, "file", download_retried, ("MNIST",)),
    Case(
        "MNIST file is a directory",
        13,
        "file",
        damaged_mnist(file_is_directory),
        ("is a directory",),
    ),
    Case(
        "MNIST raw folder empty, download=false",
        0,
        "file",
        damaged_mnist(empty_raw),
        ("MNIST/raw", "stream.download=true"),
    ),
    Case(
        "MNIST labels file empty",
        0,
        "file",
        damaged_mnist(empty_file),
        ("train-labels-idx1-ubyte",),
    ),
    Case("image folder: empty class folder", 13, "file", empty_class_folder, ("class folder",)),
    Case("W&B init time-out advice", 13, "file", wandb_timeout_message, ("logger.init_timeout",)),
    # ---- 2, 3: disk
    *(
        Case(f"{name} writing {file}", 3, "disk", disk_fault(file, code, text), expect)
        for name, file, code, text, expect in (
            ("ENOSPC", "checkpoint.pt", errno.ENOSPC, "No space left", ("checkpoint.pt",)),
            ("ENOSPC", "results.json", errno.ENOSPC, "No space left", ("results.json",)),
            ("EACCES", "checkpoint.pt", errno.EACCES, "Permission denied", ("hydra.run.dir",)),
            ("EROFS", "results.json", errno.EROFS, "Read-only", ("results.json",)),
            ("EDQUOT", "checkpoint.pt", errno.EDQUOT, "quota", ("free space",)),
        )
    ),
    Case(
        "crash between checkpoint and metrics.jsonl",
        2,
        "disk",
        crash_between_checkpoint_and_metrics,
        ("simulated crash",),
    ),
    Case("two failed saves, then resume", 2, "disk", repeated_failures_then_resume, ("12 rows",)),
    Case(
        "stale temporary file from a killed writer",
        3,
        "disk",
        stale_temporary_removed,
        ("deleted",),
    ),
    Case(
        "metrics.jsonl with stray rows, resume", 2, "disk", messed_up_metrics_rebuilt, ("rebuilt",)
    ),
    # ---- 1: one run per directory
    Case(
        "fresh run into a complete run's directory",
        1,
        "concurrency",
        fresh_run_into_finished_dir,
        ("already holds", "resume="),
    ),
    Case("directory locked by another process", 1, "concurrency", lock_held_elsewhere, ("in use",)),
    Case("resume=true of a complete run", 1, "concurrency", resume_finished_run, ("nothing",)),
    Case(
        "two processes, one directory", 1, "concurrency", two_processes_one_directory, ("exit 2",)
    ),
    # ---- 11: signals
    Case(
        "SIGTERM during task 1",
        11,
        "signal",
        signal_in_task_1((signal.SIGTERM,)),
        ("no checkpoint yet",),
    ),
    Case(
        "double Ctrl-C during task 1",
        11,
        "signal",
        signal_in_task_1((signal.SIGINT, signal.SIGINT)),
        ("exit 130",),
    ),
    Case("SIGINT during task 1", 11, "signal", signal_in_task_1((signal.SIGINT,)), ("exit 130",)),
    # ---- 9: permissions (as an unprivileged user)
    Case(
        "unreadable MNIST file (non-root)",
        9,
        "permission",
        permission_case(unreadable_data_file, "train-labels-idx1-ubyte"),
        ("cannot read",),
    ),
    Case(
        "unreadable MNIST folder (non-root)",
        9,
        "permission",
        permission_case(unreadable_raw_folder, "MNIST"),
        ("MNIST",),
    ),
    Case(
        "read-only run directory (non-root)",
        9,
        "permission",
        permission_case(read_only_run_dir, "Permission denied"),
        ("readonly",),
    ),
    Case(
        "run directory under a read-only folder (non-root)",
        9,
        "permission",
        permission_case(read_only_parent, "Permission denied"),
        ("locked",),
    ),
]


def make_env(root: Path) -> Env:
    """Write the tiny datasets the cases read (the writers of tests/conftest.py)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import write_tiny_imagefolder, write_tiny_mnist

    root.mkdir(parents=True, exist_ok=True)
    return Env(
        root=root,
        mnist=write_tiny_mnist(root / "mnist"),
        images=write_tiny_imagefolder(root / "images"),
    )
