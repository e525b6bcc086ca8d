"""Registries: the one way to add a strategy, a stream kind, a dataset or a logger.

A component is a class or function plus the dataclass of its settings (the only place their
defaults are written). It registers itself where it is defined::

    @STRATEGIES.register("ewc", EWCConfig)
    class EWCStrategy(Strategy): ...

Registering also puts the settings' defaults into Hydra's ConfigStore as
``schema/<group>/<name>``, which the component's YAML file extends
(``conf/strategy/ewc.yaml``: ``defaults: [/schema/strategy/ewc@_here_]``). So adding a
component is one Python file in its package (every module of ``den.strategies``,
``den.data.streams``, ``den.data.datasets`` and ``den.loggers`` is imported by
:func:`import_components`) and one YAML file under ``conf/<group>/``.

The ConfigStore holds the defaults as plain values, not as a typed schema: Hydra only
composes, and :mod:`den.config.validate` types and checks the result once, so a wrong key,
type or name always gets den's one error format.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Generic, TypeVar

from omegaconf import OmegaConf

from den.errors import ConfigError

T = TypeVar("T")

SCHEMA_GROUP = "schema"


@dataclass(frozen=True)
class Component(Generic[T]):
    """One registered component: its name, the class or function, and its settings' schema."""

    name: str
    target: T
    schema: type | None


class Registry(Generic[T]):
    """Names of one kind of component (``group``), chosen by the dotted config key ``key``."""

    def __init__(self, group: str, key: str, has_settings: bool = True) -> None:
        self.group = group
        self.key = key
        self.has_settings = has_settings
        self._components: dict[str, Component[T]] = {}

    def register(self, name: str, schema: type | None = None) -> Callable[[T], T]:
        """Decorator: make ``target`` the component ``name`` with settings ``schema`` (a
        dataclass; none for a registry whose components have no settings of their own)."""
        if self.has_settings != is_dataclass(schema):
            raise TypeError(f"{self.group} {name!r}: schema must be a dataclass, or None")

        def add(target: T) -> T:
            self._components[name] = Component(name, target, schema)
            if schema is not None:
                store_defaults(f"{SCHEMA_GROUP}/{self.group}", name, schema)
            return target

        return add

    def names(self) -> list[str]:
        import_components()
        return sorted(self._components)

    def __contains__(self, name: object) -> bool:
        import_components()
        return name in self._components

    def __iter__(self) -> Iterator[Component[T]]:
        import_components()
        return iter(list(self._components.values()))

    def get(self, name: str) -> Component[T]:
        """The component ``name``; a :class:`ConfigError` naming the choices otherwise."""
        if name not in self._components:
            import_components()
        if name not in self._components:
            raise ConfigError(
                self.key,
                name,
                f"no {self.group} of that name",
                choices_hint(str(name), self.names()),
            )
        return self._components[name]


def choices_hint(value: str, choices: list[str]) -> str:
    """``did you mean X? use one of a, b, c`` (the first part when a choice is close: the
    longest choice that ``value`` extends, as ``den`` for ``den_schema``, else the most
    similar)."""
    extended = [c for c in choices if str(value).startswith(c + "_")]
    close = [max(extended, key=len)] if extended else []
    close = close or difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"{hint}use one of {', '.join(choices)}"


def defaults_of(schema: type) -> dict[str, Any]:
    """Every field of ``schema`` with its default as plain data (``???`` where it has none)."""
    node = OmegaConf.structured(schema)
    return {f.name: OmegaConf.to_container(node, enum_to_str=True)[f.name] for f in fields(schema)}


def store_defaults(group: str, name: str, schema: type) -> None:
    """Put the defaults of ``schema`` into Hydra's ConfigStore as ``group/name`` (untyped)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group=group, name=name, node=defaults_of(schema), provider="den")


STRATEGIES: Registry[Any] = Registry("strategy", "strategy.name")
STREAMS: Registry[Any] = Registry("stream", "stream.kind")
DATASETS: Registry[Any] = Registry("dataset", "stream.dataset", has_settings=False)
LOGGERS: Registry[Any] = Registry("logger", "logger.name")

COMPONENT_PACKAGES = ("den.strategies", "den.data.streams", "den.data.datasets", "den.loggers")


_imported: set[str] = set()


def import_components(packages: tuple[str, ...] = COMPONENT_PACKAGES) -> None:
    """Import every module of the component packages: each registers what it defines.
    Idempotent; also done on a registry's first lookup, so no caller has to remember it."""
    for package_name in packages:
        if package_name in _imported:
            continue
        _imported.add(package_name)
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            importlib.import_module(info.name)
