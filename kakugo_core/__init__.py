"""Kakugo's core: the runner that plugins build on.

The public API for plugin authors:

- :data:`hookimpl` to mark hook implementations;
- the interfaces in :mod:`kakugo_core.interfaces`;
- :func:`kakugo_core.languages.resolve` and :class:`kakugo_core.languages.Language`;
- :mod:`kakugo_core.config`, :mod:`kakugo_core.errors` and :mod:`kakugo_core.plugins`.
"""

from kakugo_core.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
