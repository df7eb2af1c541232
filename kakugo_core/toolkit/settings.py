"""Plugin settings: a plugin declares its own options (type, default, range, help) and Kakugo
puts them in the configuration under the plugin's section, validates them with one-line errors
naming the key, shows them in ``kakugo config`` and passes them to the plugin.

Declare them on the class you register::

    class CannedTeacher(Teacher):
        settings = (
            Setting("replies_file", str, "", "JSONL file of canned replies", required=True),
            Setting("delay_s", float, 0.0, "seconds to wait before answering", min=0),
        )

They live under ``[teacher.canned]`` (teachers), ``[generate.NAME]`` (generators),
``[train.NAME]`` (students), ``[bench.NAME]`` (benchmarks), ``[backend.NAME]`` (scoring
backends) and ``[release.NAME]`` (release targets), e.g. ``--set teacher.canned.delay_s=0.5``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kakugo_core.errors import ConfigError

#: registry kind -> the configuration section its plugins' settings live under
SECTIONS = {
    "teachers": "teacher",
    "generators": "generate",
    "students": "train",
    "benchmarks": "bench",
    "backends": "backend",
    "release_targets": "release",
}
_TYPES = (str, int, float, bool, list)


@dataclass(frozen=True)
class Setting:
    """One option of a plugin."""

    name: str
    type: type
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: Sequence[Any] = field(default_factory=tuple)
    #: an empty value ("" or []) is refused when the plugin is used
    required: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise TypeError(f"setting {self.name!r}: type must be one of str, int, float, "
                            f"bool, list, not {self.type!r}")

    def check(self, value: Any, key: str) -> Any:
        """``value`` converted to the declared type, or a :class:`ConfigError` naming ``key``."""
        kind = self.type
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if not ok:
            raise ConfigError(f"'{key}' must be {kind.__name__}, got {type(value).__name__} "
                              f"{value!r}")
        if self.min is not None and value < self.min:
            raise ConfigError(f"'{key}' must be at least {self.min}, got {value!r}")
        if self.max is not None and value > self.max:
            raise ConfigError(f"'{key}' must be at most {self.max}, got {value!r}")
        if self.choices and value not in self.choices:
            raise ConfigError(f"'{key}' must be one of {', '.join(map(repr, self.choices))}, "
                              f"got {value!r}")
        return value

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (for ``kakugo plugins --json``)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type.__name__,
                               "default": self.default, "help": self.help}
        for attr in ("min", "max"):
            if getattr(self, attr) is not None:
                out[attr] = getattr(self, attr)
        if self.choices:
            out["choices"] = list(self.choices)
        if self.required:
            out["required"] = True
        return out


def declared_settings(factory: Any) -> tuple[Setting, ...]:
    """The settings a registered factory declares (none when it declares none)."""
    settings = getattr(factory, "settings", ()) or ()
    if not all(isinstance(s, Setting) for s in settings):
        raise TypeError(f"{factory!r}.settings must be a sequence of Setting")
    return tuple(settings)


__all__ = ["SECTIONS", "Setting", "declared_settings"]
