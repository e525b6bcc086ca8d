"""The command line as Hydra should see it, checked in den's error format first.

``python -m den.train`` passes its arguments through :func:`prepare_command_line` before Hydra
parses them:

- a group choice (``strategy=ewcc``, ``+experiment=pmnsit``) that names no file under
  ``conf/<group>/`` is refused here, with the choices and the closest one;
- a setting (``trainer.max_iters=50``, ``seed=1``) becomes ``++key=value`` (set, or add if
  missing), so a misspelled key reaches den's one validation, which names the closest valid
  key, instead of Hydra's advice to add a ``+``;
- a preset (``debug=smoke``) is applied last, after the experiment (which Hydra appends to the
  defaults list), whatever the order it was typed in.

Hydra's own flags (``-m``, ``--cfg job``...) and ``hydra.*`` settings pass unchanged. With a
``hydra.searchpath`` override, group choices may come from other folders and are left to Hydra.
"""

from __future__ import annotations

from pathlib import Path

from den.config.registry import choices_hint
from den.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"
# Config groups whose options are applied after everything else (``conf/<group>/``).
PRESET_GROUPS = ("debug",)


def prepare_command_line(args: list[str], config_dir: Path = CONFIG_DIR) -> list[str]:
    """``args`` with settings as ``++key=value`` and presets last; raises :class:`ConfigError`
    for a group choice that names no config."""
    check_groups = not any(a.partition("=")[0].lstrip("+") == "hydra.searchpath" for a in args)
    presets: list[str] = []
    rest: list[str] = []
    last_override = -1  # where the presets go: after the last override, before later flags
    for arg in args:
        key, sep, value = arg.partition("=")
        name = key.lstrip("+~")
        if not sep or arg.startswith("-"):
            rest.append(arg)
            continue
        if key.startswith("~") or name.startswith("hydra"):
            rest.append(arg)
        elif (config_dir / name).is_dir():  # a config group
            if check_groups:
                check_choice(name, value, config_dir)
            if name in PRESET_GROUPS:
                presets.append(f"+{name}={value}")
                continue
            rest.append(arg)
        else:
            rest.append(arg if key.startswith("+") else f"++{arg}")
        last_override = len(rest) - 1
    return [*rest[: last_override + 1], *presets, *rest[last_override + 1 :]]


def check_choice(group: str, value: str, config_dir: Path) -> None:
    """Every option of ``group=value`` (a comma list in a sweep) names a config file."""
    options = sorted(p.stem for p in (config_dir / group).glob("*.yaml"))
    for choice in value.split(","):
        choice = choice.strip()
        if choice in ("null", "") or choice in options or not _plain(choice):
            continue
        raise ConfigError(
            group,
            choice,
            f"no {group} of that name in conf/{group}/",
            choices_hint(choice, options).replace("did you mean ", f"did you mean {group}="),
        )


def _plain(choice: str) -> bool:
    """A plain option name (not Hydra's sweep syntax such as ``choice(a,b)`` or globs)."""
    return all(c.isalnum() or c in "_-./" for c in choice)
