"""Hook specifications: the contract between Kakugo and its plugins.

Every registration hook takes a ``register`` callback, so the host owns names, aliases and
clashes. Hooks may gain arguments over time; they never lose one.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("kakugo")
hookimpl = pluggy.HookimplMarker("kakugo")


@hookspec
def register_teachers(register: Any) -> None:
    """Register teacher factories: ``register(name, factory, aliases=())``."""


@hookspec
def register_students(register: Any) -> None:
    """Register student (training strategy) factories."""


@hookspec
def register_benchmarks(register: Any) -> None:
    """Register benchmark factories."""


@hookspec
def register_generators(register: Any) -> None:
    """Register data-generator factories."""


@hookspec
def register_backends(register: Any) -> None:
    """Register scoring-backend factories."""


@hookspec
def register_release_targets(register: Any) -> None:
    """Register release-target factories."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add click commands to the ``kakugo`` command group."""
