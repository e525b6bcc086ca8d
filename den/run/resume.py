"""Which directory a run continues (``resume=``), and that it continues the same experiment."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from den.config.schema import RunConfig
from den.errors import ConfigError
from den.run.provenance import config_record

# Config sections that must match for a resumed run to continue the same experiment.
RESUME_KEYS = ("stream", "model", "strategy", "trainer", "seed")
# Settings that change what a run prints, not what it learns: a resume may change them.
DISPLAY_ONLY_KEYS = frozenset({"trainer.progress", "trainer.log_every"})
_MISSING = object()


def resume_dir(run: RunConfig, own: str | Path | None = None) -> Path | None:
    """The directory to continue: ``resume=<dir>``, this run's own with ``resume=true``, or
    this run's own only if it holds a checkpoint with ``resume=auto`` (a SLURM job that was
    requeued after preemption continues; a first start starts fresh). ``own``: this run's
    directory (default ``paths.output_dir``)."""
    if not run.resume:
        return None
    own_dir = Path(own if own is not None else run.paths.output_dir)
    if str(run.resume).lower() == "true":
        return own_dir
    if str(run.resume).lower() == "auto":
        return own_dir if (own_dir / "checkpoint.pt").is_file() else None
    path = Path(run.resume).expanduser()
    if not path.is_dir():
        raise ConfigError(
            "resume",
            run.resume,
            "no such run directory",
            "pass the folder that holds checkpoint.pt",
        )
    return path


def check_resume_config(run: RunConfig, saved: dict[str, Any], output_dir: Path) -> None:
    """Refuse to continue the run in ``output_dir`` with a different experiment: the first
    setting of RESUME_KEYS that differs from ``saved`` (the checkpoint's config) is named."""
    now = config_record(run)
    for key in RESUME_KEYS:
        if key not in saved:
            continue
        section = getattr(run, key)
        defaults = schema_defaults(type(section)) if dataclasses.is_dataclass(section) else {}
        differs = first_difference(key, saved[key], now[key], defaults)
        if differs is not None:
            dotted, before, after = differs
            raise ConfigError(
                dotted,
                after,
                f"differs from the run being resumed in {output_dir} ({before!r})",
                "resume with the same overrides as the original run",
            )


def schema_defaults(schema: type) -> dict[str, Any]:
    """Default value of every field of the dataclass ``schema`` that has one."""
    defaults = {}
    for f in dataclasses.fields(schema):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return defaults


def first_difference(
    key: str, saved: Any, now: Any, defaults: dict[str, Any]
) -> tuple[str, Any, Any] | None:
    """(dotted key, saved value, current value) of the first difference, or None.

    A key the saved run does not have (added to the schema since the run started) counts as
    equal when its current value is the schema's default, so runs started by an older
    version resume as long as the new option is left at its default."""
    if not (isinstance(saved, dict) and isinstance(now, dict)):
        return None if saved == now else (key, saved, now)
    # The name first: another strategy differs in its name, not in some option it lacks.
    for name in sorted(set(saved) | set(now), key=lambda n: (n != "name", n)):
        if f"{key}.{name}" in DISPLAY_ONLY_KEYS:
            continue
        old, new = saved.get(name, _MISSING), now.get(name, _MISSING)
        if old is _MISSING and name in defaults and new == defaults[name]:
            continue
        if old != new:
            return (
                f"{key}.{name}",
                None if old is _MISSING else old,
                None if new is _MISSING else new,
            )
    return None
