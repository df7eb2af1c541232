"""One vocabulary: the options every command spells the same way, each defined once here.

``-m/--model`` (repeatable where several models make sense), ``-l/--languages`` (comma-separated
or repeated), ``-b/--benchmarks``, ``-o/--out`` for a command's output path, ``--overwrite``,
``--json``, ``--config``/``--set``, and ``--limit``/``--limit-seed`` for a seeded sample. An old
spelling keeps working as a hidden alias (``old=``) that prints one notice on stderr.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: the notice an old spelling prints (once per use) on stderr
NOTICE = "kakugo: note: {old} is now {new}"

#: commands that read no configuration, and why (they get no --config/--set)
NO_CONFIGURATION = {
    "languages": "the language table is bundled; no setting changes it",
    "plugins": "lists what is installed (KAKUGO_LOAD_PLUGINS picks), whatever a file says",
    "status": "reads the run folder's manifests, which record the configuration the run used",
    "store merge": "merges the files it is given; no setting applies",
    "tiny-model": "every setting is a flag; nothing in the configuration is about it",
}

MODEL_HELP = "a Hub id or a local model folder"
LANGUAGES_HELP = "names, ISO 639-1/639-3 codes or FLORES ids"
OVERWRITE_HELP = ("Replace an output folder that holds files Kakugo did not make (never one of "
                  "the command's inputs).")


class AliasedOption(click.Option):
    """An option that also accepts old spellings (``old``): hidden from --help and error
    hints, each use printing one notice on stderr."""

    def __init__(self, *args: Any, old: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.old = tuple(old)

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        if not self.old:
            return
        action = "append" if self.multiple else "store"
        const = None
        if self.is_flag:
            action += "_const"
            const = getattr(self, "flag_activation_value", self.flag_value)
        parser.add_option(obj=self, opts=self.old, dest=self.name, action=action,
                          nargs=self.nargs, const=const)
        new = "/".join(self.opts)
        for old in self.old:
            entry = parser._long_opt.get(old) or parser._short_opt.get(old)
            entry.process = _noting(entry.process, NOTICE.format(old=old, new=new))


def _noting(process: Callable[[Any, Any], None], notice: str) -> Callable[[Any, Any], None]:
    def noted(value: Any, state: Any) -> None:
        click.echo(notice, err=True)
        process(value, state)

    return noted


def _option(*decls: str, old: Sequence[str] = (), **kwargs: Any) -> Callable[[F], F]:
    return click.option(*decls, cls=AliasedOption, old=old, **kwargs)


def split_csv(values: Sequence[str] | str | None) -> list[str]:
    """Repeatable, comma-separated values as one list."""
    if values is None:
        return []
    if isinstance(values, str):
        values = (values,)
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def model_option(what: str, *, multiple: bool = False, dest: str | None = None,
                 required: bool = False, old: Sequence[str] = (),
                 metavar: str = "MODEL") -> Callable[[F], F]:
    """``-m/--model``: ``what`` the model is for; repeatable when ``multiple``."""
    extra = "; repeat for several" if multiple else ""
    return _option("-m", "--model", dest or ("models" if multiple else "model"), old=old,
                   multiple=multiple, required=required, metavar=metavar,
                   help=f"{what} ({MODEL_HELP}{extra}).")


def languages_option(what: str = "Languages", *, one: bool = False, dest: str = "languages",
                     old: Sequence[str] = ()) -> Callable[[F], F]:
    """``-l/--languages``: comma-separated or repeated; ``one`` for commands that take one."""
    text = (f"{what}: a name, ISO 639-1/639-3 code or FLORES id." if one
            else f"{what}: {LANGUAGES_HELP}, comma-separated or repeated.")
    return _option("-l", "--languages", dest, old=old, multiple=True,
                   metavar="LANG" if one else "A,B", help=text)


def one_language(values: Sequence[str], positional: str | None = None,
                 *, required: bool = True) -> str | None:
    """The single language of a command that takes one, from its positional argument or
    ``-l/--languages``; a usage error for none (when ``required``), several, or both."""
    names = split_csv(values)
    if positional is not None and names:
        raise click.UsageError("give the language once: as the argument or with -l/--languages")
    if positional is not None:
        names = [positional]
    if len(names) > 1:
        raise click.UsageError(f"this command takes one language, got {len(names)}: "
                               f"{', '.join(names)}")
    if not names:
        if required:
            raise click.UsageError("give a language with -l/--languages (a name, ISO code or "
                                   "FLORES id)")
        return None
    return names[0]


def benchmarks_option(what: str = "Benchmarks", *, dest: str = "benchmarks",
                      old: Sequence[str] = ()) -> Callable[[F], F]:
    """``-b/--benchmarks``: comma-separated or repeated benchmark names."""
    return _option("-b", "--benchmarks", dest, old=old, multiple=True, metavar="A,B",
                   help=f"{what}: comma-separated or repeated benchmark names.")


def out_option(what: str, *, kind: Literal["file", "folder", "either"], dest: str = "out",
               required: bool = False, old: Sequence[str] = ()) -> Callable[[F], F]:
    """``-o/--out``: the command's output ``file`` or ``folder``, checked by
    :func:`kakugo_core.files.prepare_output` (one rule, one message) before anything is
    written."""
    metavar = {"file": "FILE", "folder": "DIR", "either": "PATH"}[kind]
    return _option("-o", "--out", dest, old=old, required=required, type=click.Path(),
                   metavar=metavar, help=f"{what}.")


def overwrite_option(what: str = OVERWRITE_HELP) -> Callable[[F], F]:
    """``--overwrite``: replace an output folder Kakugo did not make."""
    return click.option("--overwrite", is_flag=True, help=what)


def json_option(what: str = "Print JSON instead of a table.") -> Callable[[F], F]:
    """``--json``: machine-readable output (the parameter is ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=what)


def config_options(func: F) -> F:
    """``--config FILE`` and ``--set SECTION.KEY=VALUE`` (parameters ``config_file`` and
    ``overrides``)."""
    func = click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
                        help="Override one configuration key; repeatable (see `kakugo "
                             "config`).")(func)
    return click.option("--config", "config_file", type=click.Path(dir_okay=False),
                        metavar="FILE", help="User TOML file overriding the defaults.")(func)


def limit_options(what: str = "items", default: str = "bench.limit") -> Callable[[F], F]:
    """``--limit N`` and ``--limit-seed S``: a seeded random sample of N ``what``, stratified by
    label where the items have labels (:mod:`kakugo_core.toolkit.sampling`)."""
    def decorate(func: F) -> F:
        func = click.option("--limit-seed", type=int, default=None,
                            help="Seed of the --limit sample (default: bench.limit_seed, "
                                 "0).")(func)
        return click.option("--limit", type=click.IntRange(min=0), default=None,
                            help=f"Use a seeded random sample of N {what} (0: all), kept in "
                                 f"their order and stratified by label where they have labels "
                                 f"(default: {default}).")(func)

    return decorate
