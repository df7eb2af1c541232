"""The ``kakugo`` command line: a click group whose commands load lazily.

Built-in commands live in ``kakugo_core.commands``; plugins add theirs through the
``register_commands`` hook. A :class:`~kakugo_core.errors.KakugoError` and a usage error (a
missing or unknown option) become one ``kakugo: error: ...`` line on stderr and a non-zero exit.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from kakugo_core import __version__
from kakugo_core.errors import KakugoError

#: command name -> "module:attribute"; modules import only what they need, when run
BUILTIN_COMMANDS: dict[str, str] = {
    "bench": "kakugo_core.commands.bench:bench",
    "compare": "kakugo_core.commands.compare:compare",
    "config": "kakugo_core.commands.config:config_command",
    "dataset": "kakugo_core.commands.dataset:dataset",
    "generate": "kakugo_core.commands.generate:generate",
    "judge": "kakugo_core.commands.judge:judge",
    "languages": "kakugo_core.commands.languages:languages",
    "leaderboard": "kakugo_core.commands.leaderboard_group:leaderboard",
    "plugins": "kakugo_core.commands.plugins:plugins",
    "release": "kakugo_core.commands.release:release",
    "run": "kakugo_core.commands.run:run_command",
    "status": "kakugo_core.commands.run:status_command",
    "store": "kakugo_core.commands.store:store_group",
    "teacher": "kakugo_core.commands.teacher:teacher_command",
    "tiny-model": "kakugo_core.commands.tiny_model:tiny_model",
    "train": "kakugo_core.commands.train:train_command",
}


class LazyGroup(click.Group):
    """A group that imports a built-in command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(BUILTIN_COMMANDS) | set(super().list_commands(ctx)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in BUILTIN_COMMANDS:
            module_name, attr = BUILTIN_COMMANDS[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, cmd_name)


class _OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from kakugo_core.secrets import redact

        return redact(f"kakugo: {record.levelname.lower()}: {record.getMessage()}")


#: third-party noise a person does not need (datasets' "Saving the dataset" and transformers'
#: "Writing model shards" bars, their advisory warnings): off unless -v; set before those
#: libraries are imported, and inherited by launched training processes
QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning",
}
NOISY_MODULES = r"(transformers|torch|datasets|accelerate|peft|huggingface_hub|lm_eval)(\.|$)"


def quiet_third_party(verbose: bool) -> None:
    """Silence other libraries' progress bars and warnings, unless ``verbose``."""
    import os
    import warnings

    if verbose:
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for category in (FutureWarning, UserWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=NOISY_MODULES)


def _setup_logging(verbose: bool) -> None:
    logger = logging.getLogger("kakugo")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_OneLineFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kakugo")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def cli(verbose: bool) -> None:
    """Kakugo: from the name of a low-resource language to a small model that speaks it.

    A teacher model writes training data in the language, a small student is fine-tuned on it,
    base and student are benchmarked, and the student is released with a model card.
    """
    _setup_logging(verbose)
    quiet_third_party(verbose)


def _add_plugin_commands() -> None:
    from kakugo_core.plugins import get_host

    get_host().add_commands(cli)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is so that ``finally`` blocks and atomic writes finish
    their clean-up as for Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def _verbose() -> bool:
    return logging.getLogger("kakugo").isEnabledFor(logging.DEBUG)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point; SIGTERM stops it like Ctrl-C (the handler before is put
    back on return, for programs that call this in-process)."""
    import signal

    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (an embedding program): keep its handler
        return _main(argv)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> Any:
    _setup_logging(False)
    try:
        _add_plugin_commands()
        return cli.main(args=argv, prog_name="kakugo", standalone_mode=False)
    except KakugoError as exc:
        from kakugo_core.secrets import redact

        if exc.__cause__ is not None and _verbose():  # a plugin's error: its traceback on -v
            import traceback

            cause = exc.__cause__
            lines = traceback.format_exception(type(cause), cause, cause.__traceback__)
            click.echo(redact("".join(lines)).rstrip("\n"), err=True)
        click.echo(redact(f"kakugo: error: {exc}"), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:  # click turns Ctrl-C (and our SIGTERM) into Abort
        _stopped(exc.__context__)
    except click.UsageError as exc:  # one line, like every other error
        from kakugo_core.secrets import redact

        command = exc.ctx.command_path if exc.ctx else "kakugo"
        message = " ".join(exc.format_message().split()).rstrip(".")
        click.echo(redact(f"kakugo: error: {message} (see `{command} --help`)"), err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        from kakugo_core.secrets import redact

        message = " ".join(exc.format_message().split())
        click.echo(redact(f"kakugo: error: {message}"), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:  # a read-only folder, a full disk, a permission: never a traceback
        from kakugo_core.secrets import redact

        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(redact(f"kakugo: error: {where}{exc.strerror or exc}"), err=True)
        sys.exit(KakugoError.exit_code)
    except KeyboardInterrupt as exc:
        _stopped(exc)


def _stopped(cause: BaseException | None) -> None:
    """One line for Ctrl-C (exit 130) or SIGTERM (143), saying what was kept; a prompt aborted
    without an interrupt is ``aborted``."""
    if not isinstance(cause, KeyboardInterrupt):
        click.echo("kakugo: aborted", err=True)
        sys.exit(130)
    how, code = ("stopped by SIGTERM", 143) if isinstance(cause, Terminated) else (
        "interrupted", 130)
    click.echo(f"kakugo: {how}; finished work is kept (scores are stored cell by cell, files "
               "are written whole), nothing half-written; run again to resume", err=True)
    sys.exit(code)
