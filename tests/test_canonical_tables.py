"""Every canonical study's table regenerates byte for byte from its committed records, with
the commands its README gives.

Each ``experiments/<study>/README.md`` has a ```bash block with the regeneration commands:
``python -m den.<tool> ... --out outputs/experiments/<study>...`` lines, then ``cmp
<regenerated> <committed>`` lines. The test runs those commands from the repository root
with ``outputs/experiments`` replaced by a temporary folder and compares the files each
``cmp`` line names. A study whose table is a measurement (the speed benchmark) is checked
instead for being what ``den.bench`` prints from its committed records.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from test_readme_commands import bash_commands

from conftest import REPO_ROOT

EXPERIMENTS = REPO_ROOT / "experiments"
STUDIES = (
    "pmnist_baselines",
    "split_cifar10",
    "cifar10_binary",
    "pmnist_pareto",
    "mnist_variation",
    "pmnist_stl_level",
    "den_growth",
)


def regeneration(study: str) -> tuple[list[list[str]], list[tuple[str, str]]]:
    """(the den.* commands that write into outputs/, the cmp pairs) of a study's README."""
    commands, pairs = [], []
    for line in bash_commands(EXPERIMENTS / study / "README.md"):
        argv = shlex.split(line)
        if argv[:2] == ["python", "-m"] and argv[2].startswith("den.") and "--out" in argv:
            commands.append(argv)
        elif argv[0] == "cmp":
            pairs.append((argv[1], argv[2]))
    return commands, pairs


def test_every_study_folder_is_checked():
    folders = {p.name for p in EXPERIMENTS.iterdir() if p.is_dir()}
    assert folders == {*STUDIES, "bench", "threads"}


@pytest.mark.parametrize("study", STUDIES)
def test_table_regenerates_byte_for_byte(study, tmp_path):
    commands, pairs = regeneration(study)
    assert commands and pairs, f"experiments/{study}/README.md gives no regeneration command"
    out = tmp_path / "outputs" / "experiments"

    def moved(arg: str) -> str:
        return (
            str(out) + arg.removeprefix("outputs/experiments")
            if arg.startswith("outputs/experiments")
            else arg
        )

    env = {**os.environ, "WANDB_MODE": "disabled"}
    for argv in commands:
        cmd = [sys.executable, *[moved(a) for a in argv[1:]]]
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stderr[-2000:]}"
    for regenerated, committed in pairs:
        assert committed.startswith(f"experiments/{study}/")
        assert Path(moved(regenerated)).read_bytes() == (REPO_ROOT / committed).read_bytes(), (
            f"{committed} differs from what `{' '.join(commands[0])}` writes"
        )


def test_bench_table_is_what_den_bench_printed_from_its_records():
    from den.bench import print_table

    here = EXPERIMENTS / "bench"
    rows = json.loads((here / "bench.json").read_text())
    extra = json.loads((here / "bench_extra.json").read_text())
    assert print_table(rows, extra) + "\n" == (here / "bench.md").read_text()
    readme = (here / "README.md").read_text()
    assert (here / "bench.md").read_text().strip() in readme  # the README shows that table
    assert re.search(r"python -m den\.bench threads=1 steps=300 repeats=9", readme)
    assert extra["threads"] == 1 and extra["steps"] == 300 and extra["repeats"] == 9


def test_threads_table_is_what_den_bench_printed_from_its_record():
    from den.bench_threads import threads_tables

    here = EXPERIMENTS / "threads"
    readme = (here / "README.md").read_text()
    assert "-m den.bench mode=threads load.repeats=3" in (here / "run.sh").read_text()
    if not (here / "threads.json").exists():
        pytest.skip("no record yet: bash experiments/threads/run.sh on a quiet machine")
    record = json.loads((here / "threads.json").read_text())
    table = (here / "threads.md").read_text()
    assert threads_tables(record) + "\n" == table
    assert table.strip() in readme  # the README shows that table
    assert record["settings"]["repeats"] == 3


def test_den_pmnist_accurate_is_the_setting_the_study_chose():
    """``strategy=den_pmnist_accurate`` composes to the strategy config of the chosen
    candidate's committed runs (every seed), so the named setting is the measured one."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from den.config.store import register_configs

    here = EXPERIMENTS / "pmnist_stl_level"
    row = next(ln for ln in (here / "choice.md").read_text().splitlines() if "(chosen)" in ln)
    name = re.findall(r"`([^`]+)`", row)[0]  # the chosen candidate's run folder
    runs = [here / "runs" / "candidates" / name]
    runs += sorted((here / "runs" / "seeds").glob(f"{name}_seed*"))
    assert len(runs) == 3
    register_configs()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=pmnist", "strategy=den_pmnist_accurate"])
    named = OmegaConf.to_container(cfg.strategy, resolve=True)
    for run in runs:
        recorded = json.loads((run / "results.json").read_text())["config"]["strategy"]
        assert recorded == named, run.name
