"""Config validation at the edge: frozen dataclasses built from plain dicts (design note §2.4).

``from_dict(cls, data, path)`` checks unknown keys and value types and raises
:class:`ConfigError` whose message names the offending dotted key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value is missing, unknown or invalid; the message names the key."""


def check(cond: bool, key: str, msg: str) -> None:
    """Raise :class:`ConfigError` mentioning ``key`` unless ``cond`` holds."""
    if not cond:
        raise ConfigError(f"{key}: {msg}")


_SCALARS: dict[Any, tuple[tuple[type, ...], str]] = {
    bool: ((bool,), "expected true/false"),
    int: ((int,), "expected an integer"),
    float: ((int, float), "expected a number"),
    str: ((str,), "expected a string"),
}


def _coerce_union(tp: Any, value: Any, key: str) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    errors = []
    for a in args:
        if a is type(None):
            continue
        try:
            return _coerce(a, value, key)
        except ConfigError as e:
            errors.append(str(e))
    raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")


def _coerce_tuple(tp: Any, value: Any, key: str) -> tuple:
    check(isinstance(value, (list, tuple)), key, f"expected a list, got {value!r}")
    args = typing.get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    check(len(value) == len(args), key, f"expected {len(args)} items, got {len(value)}")
    return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(
        zip(args, value, strict=True)))


def _coerce_scalar(tp: Any, value: Any, key: str) -> Any:
    types_ok, msg = _SCALARS[tp]
    ok = isinstance(value, types_ok) and (tp is bool or not isinstance(value, bool))
    check(ok, key, f"{msg}, got {value!r}")
    return tp(value)


def _coerce(tp: Any, value: Any, key: str, default: Any = None) -> Any:
    """``value`` as type ``tp``; a nested mapping is merged into ``default`` (the field's
    default dataclass instance) so a partial mapping keeps the parent's defaults."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(tp, value, key)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        check(value in allowed, key, f"must be one of {list(allowed)}, got {value!r}")
        return value
    if origin is dict:
        check(isinstance(value, Mapping), key, f"expected a mapping, got {value!r}")
        return dict(value)
    if origin is tuple:
        return _coerce_tuple(tp, value, key)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        check(isinstance(value, Mapping), key, f"expected a mapping, got {value!r}")
        if isinstance(default, tp):
            value = _deep_merge(to_dict(default), value)
        return from_dict(tp, value, key)
    if tp in _SCALARS:
        return _coerce_scalar(tp, value, key)
    if tp is Any:
        return value
    raise ConfigError(f"{key}: unsupported field type {tp!r}")


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = (_deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict)
                  else v)
    return out


def _field_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def from_dict(cls: type[T], data: Mapping[str, Any] | None, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, validating keys and types recursively."""
    data = {} if data is None else data
    prefix = f"{path}." if path else ""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or '<root>'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (known: {sorted(fields)})")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, prefix + name, _field_default(fields[name]))
    try:
        return cls(**kwargs)
    except ConfigError as e:
        msg = str(e)
        raise ConfigError(prefix + msg if path and not msg.startswith(prefix) else msg) from None


def to_dict(obj: Any) -> Any:
    """Plain (JSON/YAML-able) form of a config dataclass."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [to_dict(v) for v in obj]
    return obj


def config_hash(obj: Any) -> str:
    """Short stable hash of a config (goes into run ids)."""
    blob = json.dumps(to_dict(obj), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data['a']['b'] = value`` for ``dotted == 'a.b'`` (creating mappings)."""
    parts = dotted.split(".")
    cur = data
    for p in parts[:-1]:
        nxt = cur.get(p)
        if nxt is None:
            nxt = cur[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"{dotted}: {p!r} is not a mapping")
        cur = nxt
    cur[parts[-1]] = value


def read_config(path: str | Path | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The raw config tree: YAML from ``path`` (or empty) with dotted ``key=value``
    overrides applied (values parsed as YAML). Validation is the caller's ``from_dict``."""
    import yaml

    raw: dict[str, Any] = {}
    if path is not None:
        with open(path) as fh:
            raw = yaml.safe_load(fh) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"--set {ov!r}: expected key=value")
        k, v = ov.split("=", 1)
        set_dotted(raw, k.strip(), yaml.safe_load(v))
    return raw
