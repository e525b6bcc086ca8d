"""One way to extend: a strategy, a stream kind or a logger is one Python file in its package
plus one YAML file under conf/, and nothing else changes (docs/DEVELOPING.md, "Extending").

Each test copies den/ and conf/ into a temporary project, adds the two files of a toy
component there and runs ``python -m den.train`` on it with tiny MNIST; the copy is what
Python imports (the working directory comes first on ``sys.path``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO_ROOT

BASE = [
    "stream.num_tasks=2",
    "stream.val_size=50",
    "stream.download=false",
    "model.hidden=[16]",
    "trainer.max_iters=5",
    "trainer.progress=false",
    "threads=1",
]

TOY_STRATEGY = '''
"""A toy strategy: only the heads learn, the trunk stays as initialised."""

from dataclasses import dataclass

from den.config.registry import STRATEGIES
from den.config.schema import StrategyConfig
from den.errors import ConfigError
from den.strategies.base import Strategy, TaskReport


@dataclass
class HeadsOnlyConfig(StrategyConfig):
    name: str = "heads_only"
    lr_scale: float = 1.0  # a setting of its own


@STRATEGIES.register("heads_only", HeadsOnlyConfig)
class HeadsOnlyStrategy(Strategy):
    @classmethod
    def check_config(cls, cfg, run=None):
        if cfg.lr_scale <= 0:
            raise ConfigError("strategy.lr_scale", cfg.lr_scale, "must be > 0", "use e.g. 1.0")

    def learn(self, task):
        t = task.task_id
        self.net.add_head(task.num_classes, t)
        train, val = self.task_data(task)
        head = list(self.net.head_parameters(t))
        result = self.fit("heads", head, self.data_loss(self.net, t), train, val, t)
        return TaskReport(phases={"heads": result.as_dict()})
'''

TOY_STREAM = '''
"""A toy stream kind: every task holds all classes, task t's labels shifted by t * shift."""

from dataclasses import dataclass

from den.config.registry import STREAMS
from den.config.schema import StreamConfig
from den.data.streams.base import split_limits, subset


@dataclass
class LabelShiftStreamConfig(StreamConfig):
    kind: str = "label_shift"
    shift: int = 1  # a setting of its own


@STREAMS.register("label_shift", LabelShiftStreamConfig)
def label_shift_tasks(cfg, pools, gen):
    classes = list(range(pools.raw.num_classes))
    tasks = []
    for t in range(cfg.num_tasks):
        chosen = {
            split: subset(pools.index[split], n, gen, key, t)
            for split, (key, n) in split_limits(cfg).items()
        }
        offset = t * cfg.shift

        def relabel(y, offset=offset):
            return (y + offset) % len(classes)

        tasks.append(pools.indexed_task(t, classes, chosen, relabel))
    return tasks
'''

TOY_LOGGER = '''
"""A toy logger: one JSON line per task in a file of the run directory."""

import json
from dataclasses import dataclass

from den.config.registry import LOGGERS
from den.config.schema import LoggerConfig
from den.loggers.base import Logger


@dataclass
class TaskLinesConfig(LoggerConfig):
    name: str = "task_lines"
    filename: str = "tasks.jsonl"  # a setting of its own


@LOGGERS.register("task_lines", TaskLinesConfig)
class TaskLinesLogger(Logger):
    def log_task(self, task_index, metrics):
        row = {"task": task_index + 1, "avg_acc": metrics["avg_acc"]}
        with (self.output_dir / self.cfg.filename).open("a") as f:
            f.write(json.dumps(row) + "\\n")
'''


def project_copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    for part in ("den", "conf", "hydra_plugins"):
        shutil.copytree(
            REPO_ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__")
        )
    return project


def add_files(project: Path, files: dict[str, str]) -> list[str]:
    """Write the component's files; returns the paths added, relative to the project."""
    for relative, text in files.items():
        (project / relative).write_text(textwrap.dedent(text).lstrip())
    return sorted(files)


def run_den(project: Path, root: Path, out: Path, *overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DEN_DATA_ROOT"}
    env.update(WANDB_MODE="disabled", PYTHONPATH=str(project))
    args = [*BASE, f"stream.root={root}", f"hydra.run.dir={out}", *overrides]
    proc = subprocess.run(
        [sys.executable, "-m", "den.train", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


def changed_files(project: Path) -> list[str]:
    """Files of the project copy that differ from (or are missing in) the repository."""
    changed = []
    for path in sorted(project.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(project)
        original = REPO_ROOT / relative
        if not original.is_file() or original.read_bytes() != path.read_bytes():
            changed.append(str(relative))
    return changed


@pytest.mark.parametrize(
    ("kind", "files", "overrides"),
    [
        (
            "strategy",
            {
                "den/strategies/heads_only.py": TOY_STRATEGY,
                "conf/strategy/heads_only.yaml": """
                    # Only the heads learn (a toy strategy).
                    defaults:
                      - /schema/strategy/heads_only@_here_
                """,
            },
            ["strategy=heads_only", "strategy.lr_scale=0.5", "logger=none"],
        ),
        (
            "stream",
            {
                "den/data/streams/label_shift.py": TOY_STREAM,
                "conf/stream/shifted_mnist.yaml": """
                    # MNIST with the labels of task t shifted by t * shift (a toy stream).
                    defaults:
                      - /schema/stream/label_shift@_here_
                    name: shifted_mnist
                    dataset: mnist
                    shift: 3
                """,
            },
            ["stream=shifted_mnist", "strategy=finetune", "logger=none"],
        ),
        (
            "logger",
            {
                "den/loggers/task_lines.py": TOY_LOGGER,
                "conf/logger/task_lines.yaml": """
                    # One JSON line per task (a toy logger).
                    defaults:
                      - /schema/logger/task_lines@_here_
                """,
            },
            ["logger=task_lines", "strategy=finetune"],
        ),
    ],
    ids=["strategy", "stream", "logger"],
)
def test_a_component_is_one_python_file_and_one_yaml_file(
    kind, files, overrides, tmp_path, tiny_mnist_root
):
    project = project_copy(tmp_path)
    added = add_files(project, files)
    assert changed_files(project) == added  # two files, nothing edited elsewhere
    assert len(added) == 2
    out = tmp_path / "run"
    results = run_den(project, tiny_mnist_root, out, *overrides)
    assert results["status"] == "complete" and results["tasks_done"] == 2
    config = results["config"]
    if kind == "strategy":
        assert config["strategy"] == {"name": "heads_only", "lr_scale": 0.5}
        assert results["method"] == "heads_only"
        trunk = results["params_per_task"]
        assert [t["report"]["phases"]["heads"]["steps"] for t in results["tasks"]] == [5, 5]
        assert trunk[1] > trunk[0]  # a head was added, nothing else changed size
    if kind == "stream":
        assert config["stream"]["kind"] == "label_shift" and config["stream"]["shift"] == 3
        assert results["stream"] == "shifted_mnist"
    if kind == "logger":
        assert config["logger"] == {"name": "task_lines", "filename": "tasks.jsonl"}
        rows = [json.loads(line) for line in (out / "tasks.jsonl").read_text().splitlines()]
        assert [r["task"] for r in rows] == [1, 2]


def test_a_new_component_s_own_check_runs_in_the_one_validation(tmp_path, tiny_mnist_root):
    project = project_copy(tmp_path)
    add_files(
        project,
        {
            "den/strategies/heads_only.py": TOY_STRATEGY,
            "conf/strategy/heads_only.yaml": "defaults:\n  - /schema/strategy/heads_only@_here_\n",
        },
    )
    env = {k: v for k, v in os.environ.items() if k != "DEN_DATA_ROOT"}
    env.update(WANDB_MODE="disabled", PYTHONPATH=str(project))
    out = tmp_path / "run"
    args = [*BASE, f"stream.root={tiny_mnist_root}", f"hydra.run.dir={out}"]
    proc = subprocess.run(
        [sys.executable, "-m", "den.train", *args, "strategy=heads_only", "strategy.lr_scale=-1"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "strategy.lr_scale=-1" in proc.stderr and "must be > 0" in proc.stderr
    assert not out.exists()  # refused before Hydra wrote anything
