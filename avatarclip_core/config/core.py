from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
import warnings
from pathlib import Path
from typing import Any, TypeVar

import yaml

from avatarclip_core.config.aliases import renamed_key
from avatarclip_core.config.ranges import Range
from avatarclip_core.errors import UserInputError

T = TypeVar("T")


class ConfigError(UserInputError):
    """A config key or value that does not fit the typed config (a user error)."""


def presets_dir() -> Path:
    """configs/ at the project root; AVATAR_CONFIGS_DIR points elsewhere (installed deployments)."""
    env = os.environ.get("AVATAR_CONFIGS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "configs"


def preset_names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, include_extras=True)  # keep Annotated ranges
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _convert(value: Any, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        converted = _convert(value, args[0], key)
        for meta in annotation.__metadata__:
            problem = meta.violation(converted) if isinstance(meta, Range) and converted is not None else None
            if problem:
                raise ConfigError(f"{key} {problem}; got {value!r}")
        return converted
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: cannot use {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, args))}; got {value!r}")
        return value
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} needs a list; got {value!r}")
        inner = args[0] if args else Any
        items = [_convert(v, inner, key) if inner is not Any else v for v in value]
        return tuple(items) if origin is tuple else items
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key} needs true or false; got {value!r}")
    if annotation in (int, float):
        try:
            converted = annotation(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} needs a{'n integer' if annotation is int else ' number'}; got {value!r}") from None
        if annotation is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{key} needs an integer; got {value!r}")
        if annotation is float and not math.isfinite(converted):  # 'nan' and 'inf' parse as floats
            raise ConfigError(f"{key} needs a finite number; got {value!r}")
        return converted
    if annotation is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key} needs text; got {value!r}")
        return str(value)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} is a section; set its fields as {key}.<field>=...")
        return apply_overrides(annotation(), value, prefix=key + ".")
    if annotation is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} needs a mapping; got {value!r}")
        return dict(value)
    return value


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def apply_overrides(config: T, overrides: dict[str, Any], prefix: str = "") -> T:
    """Return a copy of `config` with dotted keys set (nested dicts are flattened first)."""
    config = dataclasses.replace(config)
    items = [(dotted, _canonical_path(config, dotted.split(".")), value) for dotted, value in _flatten(overrides).items()]
    given: dict[tuple[str, ...], str] = {}  # canonical path -> the key as given (old and new name both given?)
    for dotted, path, _ in items:
        if tuple(path) in given:
            new = prefix + ".".join(path)
            raise ConfigError(f"both '{prefix}{given[tuple(path)]}' and '{prefix}{dotted}' set {new} "
                              f"(one is its old name); give only '{new}'")
        given[tuple(path)] = dotted
    for dotted, path, value in items:
        if dotted.split(".") != path:
            warnings.warn(f"config key '{prefix}{dotted}' is deprecated; use '{prefix}{'.'.join(path)}'",
                          DeprecationWarning, stacklevel=2)
        _set(config, path, value, prefix)
    return config


def _canonical_path(node: Any, path: list[str]) -> list[str]:
    """`path` with renamed keys (config/aliases.py) replaced by their new names; an unknown key is
    left for `_set` to report."""
    out = []
    for i, name in enumerate(path):
        if not dataclasses.is_dataclass(node):
            return out + path[i:]
        names = {f.name for f in dataclasses.fields(node)}
        new = renamed_key(type(node).__name__, name) if name not in names else None
        out.append(new if new in names else name)
        node = getattr(node, out[-1], None)
    return out


def _set(node: Any, path: list[str], value: Any, prefix: str) -> None:
    name = path[0]
    full = prefix + ".".join(path)
    types_ = _field_types(type(node))
    if name not in types_:
        known = ", ".join(sorted(types_))
        raise ConfigError(f"unknown config key '{prefix}{name}' (known here: {known})")
    annotation = types_[name]
    if len(path) == 1:
        setattr(node, name, _convert(value, annotation, full))
        return
    child = getattr(node, name)
    if not dataclasses.is_dataclass(child):
        raise ConfigError(f"'{prefix}{name}' is not a section")
    child = dataclasses.replace(child)
    setattr(node, name, child)
    _set(child, path[1:], value, prefix + name + ".")


def parse_override(text: str) -> tuple[str, str]:
    """'a.b=c' -> ('a.b', 'c')."""
    if "=" not in text:
        raise ConfigError(f"expected NAME=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"expected NAME=VALUE, got {text!r}")
    return key, value.strip()


def load_config(cls: type[T], preset: str | None = None, overrides: dict[str, Any] | None = None, section: str | None = None) -> T:
    """Build `cls()`, apply preset YAML (optionally one `section` of it, dotted for nesting:
    "text.neus"), then overrides."""
    config = cls()
    if preset:
        config = apply_overrides(config, preset_section(preset, section))
    if overrides:
        config = apply_overrides(config, overrides)
    return config


def preset_section(preset: str, section: str | None = None) -> dict[str, Any]:
    """The values configs/<preset>.yaml gives one section (dotted for nesting: "text.neus"), as
    nested dicts; no dataclass needed (the job kinds read devices from it without torch)."""
    path = presets_dir() / f"{preset}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset '{preset}' (available: {', '.join(preset_names())})")
    data = yaml.safe_load(path.read_text()) or {}
    for part in (section.split(".") if section else []):
        data = (data.get(part) or {}) if isinstance(data, dict) else {}
    return data if isinstance(data, dict) else {}


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def describe_fields(cls: type, prefix: str = "") -> list[tuple[str, str, Any]]:
    """(dotted key, type name, default) for every leaf field: used by `--help`."""
    rows = []
    instance = cls()
    for name, annotation in _field_types(cls).items():
        value = getattr(instance, name)
        if dataclasses.is_dataclass(value):
            rows += describe_fields(type(value), prefix + name + ".")
        else:
            type_name = _type_name(annotation)
            rows.append((prefix + name, type_name, value))
    return rows


def _type_name(annotation: Any) -> str:
    """'int', 'float > 0', 'int | None', ... for `--help`."""
    if typing.get_origin(annotation) is typing.Annotated:
        ranges = [m.describe() for m in annotation.__metadata__ if isinstance(m, Range)]
        return " ".join([_type_name(typing.get_args(annotation)[0]), *ranges])
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
