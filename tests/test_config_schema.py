"""The config schema is the single source of truth: each YAML holds exactly its schema's keys
with the schema's defaults, choice fields are enums, and den.config imports no strategy."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from enum import Enum

import pytest
from omegaconf import OmegaConf

from den.config import LoggerConfig, TrainerConfig, WandbLoggerConfig
from den.strategies.registry import STRATEGY_SCHEMAS

from conftest import REPO_ROOT

CONF = REPO_ROOT / "conf"


def defaults_of(schema: type) -> dict:
    out = {}
    for f in dataclasses.fields(schema):
        if f.default is not dataclasses.MISSING and f.default != "???":  # "???" = required
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def plain(value):
    return value.value if isinstance(value, Enum) else value


def yaml_values(path) -> dict:
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    data.pop("defaults", None)
    return data


SCHEMA_YAMLS = [
    *[(f"strategy/{name}.yaml", schema) for name, schema in STRATEGY_SCHEMAS.items()],
    ("trainer/default.yaml", TrainerConfig),
    ("logger/wandb.yaml", WandbLoggerConfig),
    ("logger/none.yaml", LoggerConfig),
]


@pytest.mark.parametrize(("path", "schema"), SCHEMA_YAMLS, ids=[p for p, _ in SCHEMA_YAMLS])
def test_yaml_defaults_agree_with_the_schema(path, schema):
    """A default written twice (dataclass and YAML) must be the same value; a YAML key the
    schema lacks, or a schema field the YAML leaves out, is a mistake too."""
    values = yaml_values(CONF / path)
    defaults = defaults_of(schema)
    fields = {f.name for f in dataclasses.fields(schema)}
    assert set(values) <= fields, f"{path}: keys not in {schema.__name__}"
    assert set(values) >= set(defaults) - {"name"} or schema is LoggerConfig, (
        f"{path} leaves out {sorted(set(defaults) - set(values))}"
    )
    for key, value in values.items():
        if key in defaults:
            assert value == plain(defaults[key]), (
                f"{path}: {key}={value!r}, schema {defaults[key]!r}"
            )


def test_choice_fields_are_enums():
    import typing

    import den.config as config

    for schema, key in [
        (config.StreamConfig, "kind"),
        (config.StreamConfig, "source"),
        (config.StreamConfig, "normalize"),
        (config.StreamConfig, "augment"),
        (config.ModelConfig, "arch"),
        (config.ModelConfig, "init"),
        (config.TrainerConfig, "optimizer"),
        (config.WandbLoggerConfig, "mode"),
    ]:
        hint = typing.get_type_hints(schema)[key]
        kinds = typing.get_args(hint) or (hint,)
        assert any(isinstance(k, type) and issubclass(k, Enum) for k in kinds), (schema, key)


def test_den_config_imports_no_strategy():
    code = (
        "import sys, den.config; "
        "print(sorted(m for m in sys.modules if m.startswith('den.strategies')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
    source = (REPO_ROOT / "den" / "config.py").read_text()
    assert "from den.strategies" not in source and "import den.strategies" not in source
