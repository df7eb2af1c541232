"""Plugin settings in the configuration: each registered plugin's declared
:class:`~kakugo_core.toolkit.settings.Setting` s become a table ``[<section>.<name>]`` of the
defaults, are validated after every merge, and are handed to the plugin when it is created."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from kakugo_core.errors import ConfigError
from kakugo_core.toolkit.settings import SECTIONS, Setting, declared_settings

Config = dict[str, Any]


def _declared() -> Iterator[tuple[str, str, tuple[Setting, ...]]]:
    """(kind, registered name, settings) for every registered plugin that declares some."""
    from kakugo_core.plugins import get_host

    host = get_host()
    for kind in SECTIONS:
        for reg in host.registry(kind):
            try:
                settings = declared_settings(reg.factory)
            except TypeError as exc:
                raise ConfigError(f"plugin {reg.plugin} ({reg.distribution}): {exc}") from None
            if settings:
                yield kind, reg.name, settings


def add_defaults(config: Config) -> None:
    """Add each plugin's settings with their defaults under its section (keys a table of the
    packaged defaults already has are kept)."""
    for kind, name, settings in _declared():
        table = config.setdefault(SECTIONS[kind], {}).setdefault(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"'{SECTIONS[kind]}.{name}' is a setting of Kakugo and cannot be "
                              f"the settings table of the {kind[:-1]} plugin {name!r}")
        for setting in settings:
            table.setdefault(setting.name, setting.default)


def validate(config: Config) -> None:
    """Check every plugin setting's type and range (one line naming the key)."""
    for kind, name, settings in _declared():
        table = config[SECTIONS[kind]][name]
        for setting in settings:
            key = f"{SECTIONS[kind]}.{name}.{setting.name}"
            table[setting.name] = setting.check(table[setting.name], key)


def settings_for(config: Mapping[str, Any], kind: str, name: str) -> dict[str, Any]:
    """The plugin's settings from a merged configuration, refusing empty required ones."""
    from kakugo_core.plugins import registry

    reg = registry(kind).get(name)
    table = (config.get(SECTIONS[kind]) or {}).get(reg.name) or {}
    return values(declared_settings(reg.factory), table, f"{SECTIONS[kind]}.{reg.name}")


def values(settings: tuple[Setting, ...], table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Each setting's value from ``table`` (its default when absent); an empty required one is
    a one-line error naming ``where.key``."""
    out = {}
    for setting in settings:
        value = table.get(setting.name, setting.default)
        if setting.required and value in ("", [], None):
            raise ConfigError(f"'{where}.{setting.name}' is required ({setting.help}); set it "
                              "with --set or in your configuration file")
        out[setting.name] = value
    return out


def tables(config: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The settings tables of this kind's plugins in a merged configuration, by plugin name."""
    section = config.get(SECTIONS[kind]) or {}
    return {name: dict(section.get(name) or {}) for k, name, _ in _declared() if k == kind}
