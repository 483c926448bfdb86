"""Strict loading of a run config: JSON -> typed sections, `--set section.key=value`
overrides; unknown keys and wrong types are refused with the list of valid ones."""

import dataclasses
import json
import typing
from pathlib import Path

from tf_distill.config.sections import SECTIONS, TOP_LEVEL_KEYS, Config
from tf_distill.config.validation import validate
from tf_distill.errors import ConfigError


def _section_types(section_cls):
    hints = typing.get_type_hints(section_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(section_cls)}


def _coerce(value, annotation, where):
    """Checks `value` against a field annotation; returns it (ints accepted for floats)."""
    args = typing.get_args(annotation)
    if type(None) in args:
        if value is None:
            return None
        args = tuple(a for a in args if a is not type(None))
        annotation = args[0]
    if len(args) > 1 and typing.get_origin(annotation) is not list:
        # A union such as `bool | str`: the first member the value fits.
        for member in args:
            try:
                return _coerce(value, member, where)
            except ConfigError:
                continue
        names = " or ".join(_type_name(a) for a in args)
        raise ConfigError(f"{where} must be {names}. Received: {value!r}.")
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list of {item.__name__}. Received: {value!r}.")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false. Received: {value!r}.")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer. Received: {value!r}.")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number. Received: {value!r}.")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string. Received: {value!r}.")
        return value
    raise ConfigError(f"{where}: unsupported type {annotation!r}.")  # pragma: no cover


def _type_name(annotation):
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def from_dict(raw):
    """Builds a validated `Config` from a JSON-like dict (missing keys take defaults)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"The config must be a JSON object. Received: {type(raw).__name__}.")
    config = Config()
    valid_top = sorted([*SECTIONS, *TOP_LEVEL_KEYS])
    for key, value in raw.items():
        if key in TOP_LEVEL_KEYS:
            setattr(config, key, _coerce(value, str, key))
            continue
        if key not in SECTIONS:
            raise ConfigError(f"Unknown config section {key!r}. Valid sections: {valid_top}.")
        if not isinstance(value, dict):
            raise ConfigError(f"Config section {key!r} must be an object of keys.")
        section = getattr(config, key)
        types = _section_types(type(section))
        for name, item in value.items():
            if name not in types:
                raise ConfigError(
                    f"Unknown key {key}.{name}. Valid keys of {key!r}: {sorted(types)}."
                )
            setattr(section, name, _coerce(item, types[name], f"{key}.{name}"))
    validate(config)
    return config


def load(path, overrides=()):
    """Reads a JSON config file, applies `section.key=value` overrides, validates."""
    path = Path(path)
    if not path.is_file():
        candidate = Path("configs") / path.name
        if path.parent == Path(".") and candidate.is_file():
            path = candidate
        else:
            raise ConfigError(
                f"Config file {str(path)!r} not found. Pass a path such as configs/small.json."
            )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}."
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config as UTF-8 JSON.") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the config must be a JSON object of sections. "
            f"Received: a JSON {type(raw).__name__}."
        )
    for override in overrides:
        apply_override(raw, override)
    return from_dict(raw)


def apply_override(raw, override):
    """Applies one `section.key=value` (value parsed as JSON, else taken as a string)."""
    if "=" not in override:
        raise ConfigError(
            f"--set expects section.key=value, e.g. training.epochs=3. Received: {override!r}."
        )
    dotted, text = override.split("=", 1)
    parts = dotted.strip().split(".")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if len(parts) == 1 and parts[0] in TOP_LEVEL_KEYS:
        raw[parts[0]] = value
        return
    if len(parts) != 2 or not all(parts):
        raise ConfigError(
            f"--set expects section.key=value, e.g. training.epochs=3. Received: {override!r}."
        )
    section, key = parts
    if section not in SECTIONS:
        raise ConfigError(
            f"Unknown config section {section!r} in --set {override!r}. "
            f"Valid sections: {sorted([*SECTIONS, *TOP_LEVEL_KEYS])}."
        )
    raw.setdefault(section, {})[key] = value
