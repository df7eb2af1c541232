"""Errors that the CLI turns into one clear line and a non-zero exit."""

from __future__ import annotations


class KakugoError(Exception):
    """A user-facing error: its message is one line saying what is wrong and what to do."""

    exit_code = 2


class ConfigError(KakugoError):
    """A configuration file or override is malformed or names an unknown key."""


class UnknownLanguageError(KakugoError):
    """A language name or code that the registry cannot resolve."""


class UnknownPluginError(KakugoError):
    """A teacher, student, benchmark, generator, backend or target name nobody registered."""


class NotCoveredError(KakugoError):
    """A benchmark asked for a language it does not cover."""
