"""Every command in README.md's ```bash blocks runs, so that a renamed option, config or
removed script fails the suite.

The rule, by the command's first words:

- ``python -m den.train`` and ``python -m den.bench`` (the entry points that train or time):
  composed only, with ``--cfg job`` appended (Hydra builds the whole config, launcher and
  sweeper included, and trains nothing); a multirun (``-m``) is composed for its first job:
  ``-m`` dropped and the first value of each comma list kept.
- ``python -m den.compare``, ``den.choose``, ``den.pareto`` (reports, seconds on the committed
  records): run fully, from the repository root, with ``outputs/`` in their arguments moved
  into a temporary folder; they must exit 0.
- ``python -m den.dashboard``: run with ``--dry-run`` appended (it builds the W&B workspace and
  prints it; saving it needs the network and an API key).
- ``make ...``: skipped (``make run`` is the full 10-task run, ``make test`` is this suite).
- ``--wandb``: skipped (it reads the W&B servers, which needs the network and an API key).

Any other command fails the test: extend the rule here when the README gains a new kind.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
COMPOSE_ONLY = ("den.train", "den.bench")
RUN_FULLY = ("den.compare", "den.choose", "den.pareto")


def bash_commands(markdown: Path) -> list[str]:
    """The commands of a markdown file's ```bash blocks: continuation lines joined, comments
    (whole lines, or after `` #``) dropped."""
    commands, in_block, current = [], False, ""
    for raw in markdown.read_text().splitlines():
        if raw.startswith("```"):
            in_block = raw.strip() == "```bash" and not in_block
            continue
        if not in_block or raw.lstrip().startswith("#"):
            continue
        text = raw.split(" #", 1)[0].strip()
        if not text:
            continue
        continued = text.endswith("\\")
        text = text.rstrip("\\").strip()
        current = f"{current} {text}" if current else text
        if not continued:
            commands.append(current)
            current = ""
    return commands


def first_job(args: list[str]) -> list[str]:
    """A multirun's overrides for its first job: ``-m`` dropped, ``a=x,y`` -> ``a=x`` (commas
    inside brackets, as in ``k_layers=[40,0]``, kept)."""
    out = []
    for arg in args:
        if arg in ("-m", "--multirun"):
            continue
        if "=" in arg:
            key, value = arg.split("=", 1)
            depth, cut = 0, len(value)
            for i, char in enumerate(value):
                depth += char in "[{("
                depth -= char in "]})"
                if char == "," and depth == 0:
                    cut = i
                    break
            arg = f"{key}={value[:cut]}"
        out.append(arg)
    return out


COMMANDS = bash_commands(README)


def test_the_readme_has_commands_of_every_kind():
    tools = {shlex.split(c)[2] for c in COMMANDS if c.startswith("python -m ")}
    assert {"den.train", "den.compare", "den.choose", "den.pareto"} <= tools
    assert any(c.startswith("make run") for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=[c[:70] for c in COMMANDS])
def test_readme_command(command, tmp_path):
    argv = shlex.split(command)
    if argv[0] == "make":
        pytest.skip("make targets: `make run` is the full run, `make test` is this suite")
    if "--wandb" in argv:
        pytest.skip("reads runs from the W&B servers: needs the network and an API key")
    assert argv[:2] == ["python", "-m"], f"no rule for {command!r}: extend this test's rule"
    tool, args = argv[2], argv[3:]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    if tool in COMPOSE_ONLY:
        cmd = [sys.executable, "-m", tool, *first_job(args), "--cfg", "job"]
    elif tool == "den.dashboard":
        cmd = [sys.executable, "-m", tool, *args, "--dry-run"]
    elif tool in RUN_FULLY:
        out = tmp_path / "outputs"
        moved = [
            str(out / a.removeprefix("outputs/")) if a.startswith("outputs/") else a for a in args
        ]
        cmd = [sys.executable, "-m", tool, *moved]
    else:
        pytest.fail(f"no rule for `python -m {tool}`: extend this test's rule")
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
    if tool in COMPOSE_ONLY:
        assert "strategy:" in proc.stdout or "steps:" in proc.stdout  # a composed config
