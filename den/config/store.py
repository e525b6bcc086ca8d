"""What Hydra composes from: the defaults of every schema in its ConfigStore.

:func:`register_configs` is the one call an entry point (or a test composing configs) makes
before Hydra composes. It stores the fixed sections' defaults (``schema/trainer``,
``schema/model``, ``schema/paths`` and the top level's ``schema/run``) and imports every
component package, whose modules register their own defaults as they are imported
(:mod:`den.config.registry`).
"""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf

from den.config.registry import SCHEMA_GROUP, defaults_of, import_components, store_defaults
from den.config.schema import FIXED_SECTIONS, SECTIONS, RunConfig


def short_name(text: str, limit: int = 100) -> str:
    """``text`` if at most ``limit`` characters, else its start plus a hash of the whole: a
    job's overrides as a directory name that file systems accept (255 bytes) and that stays
    unique (optuna's trials carry long floats)."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    return f"{text[: limit - 11]}-{digest}"


def register_configs() -> None:
    """Idempotent: the defaults of every schema, and the ``den_short`` resolver."""
    if not OmegaConf.has_resolver("den_short"):
        OmegaConf.register_new_resolver("den_short", short_name)
    from hydra.core.config_store import ConfigStore

    for section, schema in FIXED_SECTIONS.items():
        store_defaults(SCHEMA_GROUP, section, schema)
    top = {k: v for k, v in defaults_of(RunConfig).items() if k not in SECTIONS}
    ConfigStore.instance().store(group=SCHEMA_GROUP, name="run", node=top, provider="den")
    import_components()
