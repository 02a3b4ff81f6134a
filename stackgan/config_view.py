"""Which config fields a component reads, and how it is given exactly those.

TFX caches a component on its exec properties and input artifacts. Each component declares
the fields it reads as a `Reads` (`READS` in its component.py); the pipeline passes those and
nothing else, one JSON exec property per section (`data_config`, `train_config`, ...). Changing
a field therefore re-runs the components that read it and those downstream of their outputs;
every other component is served from the cache.

The executor rebuilds a `Config` from those properties (`Reads.config`) in which every field
it was not given raises `UndeclaredConfigFieldError` when read. A component that starts reading
a field without declaring it fails in its tests, instead of silently seeing a default or being
served stale results from the cache.

A section is declared `ALL` (every field, including ones added later), `all_but(...)` (every
field except those named: new fields are then read by default, which errs on the side of
re-running) or a tuple of field names.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from stackgan.config import Config

PROPERTY_SUFFIX = "_config"
_WITHHELD = "_withheld_"
_OWNER = "_owner_"


class UndeclaredConfigFieldError(RuntimeError):
    """A component read a config field its `Reads` does not list. Not an AttributeError, so
    that `getattr(section, name, default)` cannot turn it into a silent default."""


@dataclasses.dataclass(frozen=True)
class AllBut:
    excluded: tuple[str, ...]


ALL = AllBut(())


def all_but(*fields: str) -> AllBut:
    return AllBut(tuple(fields))


def _section_types() -> dict[str, type]:
    return {
        f.name: type(getattr(Config(), f.name))
        for f in dataclasses.fields(Config)
        if dataclasses.is_dataclass(getattr(Config(), f.name))
    }


def _guarded(cls: type) -> type:
    """A subclass of the frozen dataclass `cls` whose withheld fields raise when read."""

    def __getattribute__(self, name):
        state = object.__getattribute__(self, "__dict__")
        withheld = state.get(_WITHHELD, ())
        if name in withheld:
            raise UndeclaredConfigFieldError(
                f"{state.get(_OWNER, 'this component')} reads {withheld[name]}, which its config"
                " Reads (READS in its component.py) does not list; add it there, so that TFX's"
                " cache re-runs the component when it changes"
            )
        return object.__getattribute__(self, name)

    def __repr__(self):
        state = object.__getattribute__(self, "__dict__")
        given = ", ".join(
            f"{f.name}={state[f.name]!r}" for f in dataclasses.fields(cls) if f.name in state
        )
        return f"{cls.__name__}({given}; {len(state.get(_WITHHELD, ()))} fields withheld)"

    name = f"Guarded{cls.__name__}"
    # module-level names, so that instances pickle (Beam ships them to its workers)
    return type(
        name,
        (cls,),
        {
            "__getattribute__": __getattribute__,
            "__repr__": __repr__,
            "__module__": __name__,
            "__qualname__": name,
        },
    )


_GUARDED = {cls: _guarded(cls) for cls in (Config, *_section_types().values())}
globals().update({guarded.__name__: guarded for guarded in _GUARDED.values()})


def _build(cls: type, values: Mapping[str, Any], owner: str, path: str):
    """An instance of the guarded `cls` holding `values`; every other field withheld."""
    obj = object.__new__(_GUARDED[cls])
    state = object.__getattribute__(obj, "__dict__")
    withheld = {}
    for f in dataclasses.fields(cls):
        if f.name in values:
            state[f.name] = values[f.name]
        else:
            withheld[f.name] = f"{path}{f.name}"
    state[_WITHHELD] = withheld
    state[_OWNER] = owner
    return obj


def _decode(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """JSON values -> field values (JSON has lists where the dataclasses keep tuples)."""
    defaults = cls()
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}")
    return {
        name: tuple(value) if isinstance(getattr(defaults, name), tuple) else value
        for name, value in values.items()
    }


@dataclasses.dataclass(frozen=True)
class Reads:
    """The config fields one component reads: section name -> ALL, all_but(...) or names."""

    component: str
    sections: Mapping[str, AllBut | tuple[str, ...]]

    def __post_init__(self):
        types = _section_types()
        for section, spec in self.sections.items():
            if section not in types:
                raise ValueError(f"{self.component}: no config section {section!r}")
            names = spec.excluded if isinstance(spec, AllBut) else spec
            known = {f.name for f in dataclasses.fields(types[section])}
            unknown = sorted(set(names) - known)
            if unknown:
                raise ValueError(f"{self.component}: no fields {unknown} in config.{section}")

    @property
    def property_names(self) -> tuple[str, ...]:
        """The exec property of each section read: `<section>_config`."""
        return tuple(section + PROPERTY_SUFFIX for section in self.sections)

    def fields(self, section: str) -> tuple[str, ...]:
        """The names of the fields of `section` this component reads, in declaration order."""
        spec = self.sections[section]
        names = [f.name for f in dataclasses.fields(_section_types()[section])]
        if isinstance(spec, AllBut):
            return tuple(n for n in names if n not in spec.excluded)
        return tuple(n for n in names if n in spec)

    def values(self, config: Config) -> dict[str, dict[str, Any]]:
        """section -> {field: value} of the fields read (JSON-ready)."""
        out = {}
        for section in self.sections:
            obj = getattr(config, section)
            out[section] = {
                name: list(v) if isinstance(v := getattr(obj, name), tuple) else v
                for name in self.fields(section)
            }
        return out

    def exec_properties(self, config: Config) -> dict[str, str]:
        """`<section>_config` -> JSON of the fields read, for the component's spec."""
        return {
            section + PROPERTY_SUFFIX: json.dumps(values, sort_keys=True)
            for section, values in self.values(config).items()
        }

    def config(self, exec_properties: Mapping[str, Any]) -> Config:
        """The Config an executor works with: the fields given in `exec_properties`; reading
        any other raises UndeclaredConfigFieldError (so does `to_json`, which reads all)."""
        for section in self.sections:
            raw = exec_properties.get(section + PROPERTY_SUFFIX)
            if raw is None:
                raise ValueError(f"{self.component}: no exec property {section}{PROPERTY_SUFFIX}")
            missing = sorted(set(self.fields(section)) - set(json.loads(raw)))
            if missing:
                raise ValueError(
                    f"{self.component}: {section}{PROPERTY_SUFFIX} lacks fields {missing}"
                )
        return from_exec_properties(exec_properties, self.component)

    def restrict(self, config: Config) -> Config:
        """`config` seen as this component sees it (the same as a round trip through its exec
        properties): for tests and for library code called outside TFX."""
        return self.config(self.exec_properties(config))


def from_exec_properties(exec_properties: Mapping[str, Any], component: str) -> Config:
    """The Config an executor works with, from whichever `<section>_config` properties its
    spec has (the component's READS chose them): reading any field not given raises
    UndeclaredConfigFieldError naming `component`."""
    types = _section_types()
    sections = {}
    for name, raw in exec_properties.items():
        section = name.removesuffix(PROPERTY_SUFFIX)
        if name.endswith(PROPERTY_SUFFIX) and section in types:
            values = _decode(types[section], json.loads(raw))
            sections[section] = _build(types[section], values, component, f"{section}.")
    return _build(Config, sections, component, "config.")


def given(section) -> dict[str, Any]:
    """The fields a (possibly restricted) config section holds, as JSON-ready values: for
    records such as run.json and checkpoint keys, which must not read withheld fields."""
    if type(section) in _GUARDED.values():
        state = object.__getattribute__(section, "__dict__")
        names = [f.name for f in dataclasses.fields(section) if f.name in state]
    else:
        names = [f.name for f in dataclasses.fields(section)]
    out = {}
    for name in names:
        value = getattr(section, name)
        if dataclasses.is_dataclass(value):
            value = given(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out
