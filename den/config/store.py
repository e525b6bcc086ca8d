"""What Hydra composes from: the defaults of every schema in its ConfigStore.

:func:`register_configs` is the one call an entry point (or a test composing configs) makes
before Hydra composes. It stores the fixed sections' defaults (``schema/trainer``,
``schema/model``, ``schema/paths`` and the top level's ``schema/run``) and imports every
component package, whose modules register their own defaults as they are imported
(:mod:`den.config.registry`).
"""

from __future__ import annotations

import hashlib
import re

from omegaconf import OmegaConf

from den.config.registry import SCHEMA_GROUP, defaults_of, import_components, store_defaults
from den.config.schema import FIXED_SECTIONS, SECTIONS, RunConfig


def job_name(method: str, seed: object, overrides: str) -> str:
    """``<method>-s<seed>[-<hash>]``: a multirun job's folder and its W&B run name. The hash
    (6 hex digits) is of the job's other overrides, so the seeds of one setting share it and
    two settings of one method differ; the overrides themselves are in ``.hydra/``."""
    setting = re.sub(r"(^|,)\+*(seed|strategy)=[^,]*", "", str(overrides)).strip(",")
    digest = hashlib.sha1(setting.encode()).hexdigest()[:6] if setting else ""
    return f"{str(method)[:24]}-s{seed}" + (f"-{digest}" if digest else "")


def register_configs() -> None:
    """Idempotent: the defaults of every schema, and the ``den_job`` resolver."""
    if not OmegaConf.has_resolver("den_job"):
        OmegaConf.register_new_resolver("den_job", job_name)
    from hydra.core.config_store import ConfigStore

    for section, schema in FIXED_SECTIONS.items():
        store_defaults(SCHEMA_GROUP, section, schema)
    top = {k: v for k, v in defaults_of(RunConfig).items() if k not in SECTIONS}
    ConfigStore.instance().store(group=SCHEMA_GROUP, name="run", node=top, provider="den")
    import_components()
