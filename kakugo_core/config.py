"""Configuration: packaged defaults, a user TOML file on top, ``--set`` overrides on top of that.

Only keys present in the defaults are accepted, with a compatible type, so a typo is a one-line
error naming the file and the key rather than a silently ignored setting.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from kakugo_core.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Config = dict[str, Any]


def defaults() -> Config:
    """The packaged defaults (the Kakugo paper's numbers)."""
    text = resources.files("kakugo_core").joinpath("data/defaults.toml").read_text("utf-8")
    return tomllib.loads(text)


def _type_ok(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _free_tables(node: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Dotted names of the tables that are empty in the defaults: they take any key."""
    out: set[str] = set()
    for key, value in node.items():
        if isinstance(value, dict):
            out |= {f"{prefix}{key}"} if not value else _free_tables(value, f"{prefix}{key}.")
    return out


FREE_TABLES = _free_tables(defaults())


def _merge(base: Config, update: Mapping[str, Any], source: str, prefix: str = "") -> None:
    """Merge ``update`` into ``base``; a table that is empty in the defaults (FREE_TABLES)
    takes non-negative integers under any key, every other only the keys the defaults have."""
    free = prefix.rstrip(".") in FREE_TABLES
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if free:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{source}: '{dotted}' must be a non-negative int, "
                                  f"got {type(value).__name__} {value!r}")
            base[key] = value
            continue
        if key not in base:
            raise ConfigError(f"{source}: unknown key '{dotted}' (see `kakugo config`)")
        current = base[key]
        if isinstance(current, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{dotted}' must be a table")
            _merge(current, value, source, dotted + ".")
        elif not _type_ok(current, value):
            raise ConfigError(
                f"{source}: '{dotted}' must be {type(current).__name__}, "
                f"got {type(value).__name__} {value!r}"
            )
        else:
            base[key] = float(value) if isinstance(current, float) else value


def read_file(path: str | Path) -> Config:
    """Parse a TOML file; a missing or malformed one is a :class:`ConfigError`."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def parse_override(text: str) -> Config:
    """``section.key=value`` (the value in TOML syntax, bare words taken as strings) as a
    nested mapping."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    dotted, raw = (part.strip() for part in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    nested: Config = {}
    cursor = nested
    parts = dotted.split(".")
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    return nested


def load_config(
    path: str | Path | None = None, overrides: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None, presets: Iterable[str] = (),
) -> Config:
    """Defaults (with every plugin's declared settings), then ``presets`` (``--set``-style
    lines of a preset such as the demo's), then ``path``, then ``--set`` overrides, then
    ``extra`` (from dedicated flags); plugin settings are checked last."""
    from kakugo_core import plugin_settings

    config = defaults()
    plugin_settings.add_defaults(config)
    for text in presets:
        _merge(config, parse_override(text), f"preset {text}")
    if path:
        _merge(config, read_file(path), str(path))
    for text in overrides:
        _merge(config, parse_override(text), f"--set {text}")
    if extra:
        _merge(config, dict(extra), "command-line flags")
    plugin_settings.validate(config)
    return config


def section(config: Config, dotted: str) -> Config:
    """A deep copy of one section, e.g. ``section(cfg, "generate.topic")``."""
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return copy.deepcopy(node)
