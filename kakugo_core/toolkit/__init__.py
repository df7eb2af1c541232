"""The plugin author's toolkit: everything the built-in plugins stand on, public and versioned.

One module per concern:

- :mod:`kakugo_core.toolkit.benchmarks`: building benchmarks (``MultipleChoiceBenchmark``,
  ``MCItem``, ``PreparedTask``, ``prompt_hash``, ``common_options``; ``card_metadata`` added
  in 1.2);
- :mod:`kakugo_core.toolkit.data`: data sources (``load_split``: ``--data-dir`` files, bundled
  files, the Hub at a pinned commit; ``read_rows``);
- :mod:`kakugo_core.toolkit.fewshot`: seeded few-shot choice that never includes the scored item;
- :mod:`kakugo_core.toolkit.metrics`: accuracy, macro-F1 and bootstrap standard errors, and
  the Wilson score interval of a share of items (``wilson_interval``, ``wilson_stderr``,
  ``PROPORTION_METRICS``; added in 1.2);
- :mod:`kakugo_core.toolkit.declarative`: benchmarks described by a TOML file
  (``load_spec``, ``benchmark_class``, ``register_declarative``; docs/declarative.md);
- :mod:`kakugo_core.toolkit.release_files`, :mod:`~kakugo_core.toolkit.cards`,
  :mod:`~kakugo_core.toolkit.comparison`, :mod:`~kakugo_core.toolkit.plots` and
  :mod:`~kakugo_core.toolkit.hub`: release targets' helpers (staging folders atomically, model
  cards, comparison tables, plots, Hub tokens and errors);
- :mod:`kakugo_core.toolkit.gguf_export`: a model folder as a GGUF file for llama.cpp and
  Ollama (``export_gguf``; added in 1.1);
- :mod:`kakugo_core.toolkit.judging`: ``load_prompts`` takes a ``seed`` for the seeded
  ``--limit`` sample (added in 1.3).

``TOOLKIT_VERSION`` follows semantic versioning: names are only added in minor versions; a
removal or an incompatible change bumps the major version. A plugin can require a version with
:func:`require`.
"""

from __future__ import annotations

from kakugo_core.errors import KakugoError

TOOLKIT_VERSION = "1.3"


def require(major: int, minor: int = 0) -> None:
    """Raise a clear error unless this toolkit is ``major.x`` with ``x >= minor``."""
    have_major, have_minor = (int(p) for p in TOOLKIT_VERSION.split("."))
    if have_major != major or have_minor < minor:
        raise KakugoError(
            f"this plugin needs Kakugo's toolkit {major}.{minor}+, but this Kakugo has "
            f"{TOOLKIT_VERSION}; install a matching kakugo"
        )


__all__ = ["TOOLKIT_VERSION", "require"]
