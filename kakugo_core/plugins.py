"""The plugin host: loads built-in and third-party plugins and keeps one registry per kind.

Built-in plugins are the public modules of the packages ``plugins`` (grouped in ``teachers``,
``generators``, ``students`` and ``backends``), ``benchmarks`` and
``releases`` (names starting with ``_`` are private helpers and are not registered). Third-party
plugins are entry points in the group ``kakugo``. Each is loaded in isolation: one whose import or
registration raises is reported in a single warning line and skipped, unless
``KAKUGO_STRICT_PLUGINS=1``. ``KAKUGO_LOAD_PLUGINS=a,b`` loads only those distributions (empty:
none).

A name claimed twice keeps its first owner (built-ins first, then distributions in alphabetical
order); the later one stays reachable as ``plugin:name`` and the clash is reported.

A factory must be a class subclassing its kind's interface (:data:`INTERFACES`) or a plain
callable, whose product is checked when it is created; anything else is refused at load with one
warning line. An exception from plugin code at run time (:func:`plugin_call`) becomes one
:class:`PluginError` line naming the plugin, its distribution and the call.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, TypeVar

import pluggy

from kakugo_core import hookspecs
from kakugo_core.errors import KakugoError, UnknownPluginError

log = logging.getLogger("kakugo")
T = TypeVar("T")

ENTRY_POINT_GROUP = "kakugo"
BUILTIN_PACKAGES = ("plugins", "benchmarks", "releases")
BUILTIN_DISTRIBUTION = "kakugo"

#: kind -> (hook name, singular noun used in messages)
KINDS: dict[str, tuple[str, str]] = {
    "teachers": ("register_teachers", "teacher"),
    "students": ("register_students", "student"),
    "benchmarks": ("register_benchmarks", "benchmark"),
    "generators": ("register_generators", "generator"),
    "backends": ("register_backends", "backend"),
    "release_targets": ("register_release_targets", "release target"),
}


@dataclass(frozen=True)
class Registration:
    """One name registered by one plugin."""

    kind: str
    name: str
    factory: Any
    aliases: tuple[str, ...]
    plugin: str
    distribution: str


@dataclass
class PluginInfo:
    """What ``kakugo plugins`` shows about one loaded plugin."""

    name: str
    distribution: str
    version: str
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    #: registered name -> its aliases
    aliases: dict[str, list[str]] = field(default_factory=dict)
    #: what is wrong with the plugin without stopping it (unknown hooks, unmarked hooks, clashes)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be imported or whose hook raised."""

    plugin: str
    distribution: str
    error: str


def interface(kind: str) -> type:
    """The abstract class a plugin of ``kind`` implements (e.g. ``Benchmark``)."""
    from kakugo_core import interfaces

    return {
        "teachers": interfaces.Teacher, "students": interfaces.Student,
        "benchmarks": interfaces.Benchmark, "generators": interfaces.Generator,
        "backends": interfaces.Backend, "release_targets": interfaces.ReleaseTarget,
    }[kind]


def refusal(kind: str, factory: Any) -> str | None:
    """Why ``factory`` cannot be registered as a ``kind``, or None: a class must subclass the
    kind's interface; a plain callable is checked when it creates (:meth:`Registry.create`)."""
    expected = interface(kind)
    if isinstance(factory, type):
        if issubclass(factory, expected):
            return None
        return f"{factory.__module__}.{factory.__qualname__} is not a {expected.__name__} subclass"
    if callable(factory):
        return None
    return f"{type(factory).__name__} {factory!r:.60} is neither a class nor callable"


class PluginError(KakugoError):
    """Plugin code raised at run time; the message names the plugin, its distribution and the
    call, and ``__cause__`` keeps the original exception (``-v`` prints its traceback)."""


def describe(kind: str, name: str) -> str:
    """``benchmark 'x' (plugin kakugo-foo 1.0)``: a registered name and where it came from."""
    noun = KINDS[kind][1]
    try:
        reg = registry(kind).get(name)
    except KakugoError:
        return f"{noun} {name!r}"
    info = get_host().infos.get(reg.plugin)
    version = f" {info.version}" if info and info.version else ""
    return f"{noun} {name!r} (plugin {reg.distribution}{version})"


@contextmanager
def plugin_call(kind: str, name: str, call: str) -> Iterator[None]:
    """Run plugin code: an exception from it becomes one :class:`PluginError` line naming the
    plugin and ``call``. A ``KakugoError`` (a plugin's deliberate message), KeyboardInterrupt
    and SystemExit pass through unchanged."""
    try:
        yield
    except KakugoError:
        raise
    except Exception as exc:
        detail = one_line(f"{type(exc).__name__}: {exc}", limit=300)
        raise PluginError(f"{describe(kind, name)} failed in {call}: {detail} "
                          "(-v shows the traceback)") from exc


def plugin_iter(kind: str, name: str, call: str, items: Iterable[T]) -> Iterator[T]:
    """The items of a plugin's iterator, each ``next`` guarded by :func:`plugin_call` (what the
    caller does with an item is not the plugin's fault)."""
    iterator = iter(items)
    while True:
        with plugin_call(kind, name, call):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


class Registry:
    """Names of one kind (e.g. benchmarks) to their registrations."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.noun = KINDS[kind][1]
        self._by_name: dict[str, Registration] = {}
        self._qualified: dict[str, Registration] = {}

    def add(self, reg: Registration) -> Registration | None:
        """Add a registration; return the earlier owner when a name or alias clashes."""
        self._qualified[f"{reg.plugin}:{reg.name}"] = reg
        clash = None
        for key in (reg.name, *reg.aliases):
            owner = self._by_name.get(key)
            if owner is None:
                self._by_name[key] = reg
            elif owner is not reg:
                clash = clash or owner
        return clash

    def names(self) -> list[str]:
        """Primary names, sorted."""
        return sorted({r.name for r in self._by_name.values()})

    def __iter__(self) -> Iterator[Registration]:
        seen: dict[int, Registration] = {}
        for reg in self._by_name.values():
            seen.setdefault(id(reg), reg)
        return iter(sorted(seen.values(), key=lambda r: r.name))

    def __contains__(self, name: str) -> bool:
        return name in self._by_name or name in self._qualified

    def get(self, name: str) -> Registration:
        """The registration for a name, alias or ``plugin:name``, or a clear error."""
        reg = self._by_name.get(name) or self._qualified.get(name)
        if reg is None:
            known = sorted(self._by_name)
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownPluginError(
                f"unknown {self.noun} {name!r}.{hint} Known: {', '.join(known) or 'none'}"
                f" (see `kakugo plugins`)."
            )
        return reg

    def storage_name(self, reg: Registration) -> str:
        """The name results of ``reg`` are stored under: its own name when it owns it, else the
        qualified ``plugin:name`` (a clashing plugin's results never take the owner's name)."""
        return reg.name if self._by_name.get(reg.name) is reg else f"{reg.plugin}:{reg.name}"

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Instantiate the factory registered under ``name``: an exception from it, or what a
        plain callable (not a class: classes are checked at registration) made that is not
        this kind's interface, is one :class:`PluginError` line."""
        reg = self.get(name)
        with plugin_call(self.kind, name, "its factory"):
            made = reg.factory(*args, **kwargs)
        expected = interface(self.kind)
        if not isinstance(reg.factory, type) and not isinstance(made, expected):
            raise PluginError(f"{describe(self.kind, name)} made a {type(made).__name__}, not a "
                              f"{expected.__name__}; fix the factory it registers")
        return made


def _strict() -> bool:
    return os.environ.get("KAKUGO_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


def _dist_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


class PluginHost:
    """Owns the pluggy manager, the registries and what went wrong while loading."""

    def __init__(self, load_builtins: bool = True, load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager("kakugo")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []
        self.clashes: list[str] = []
        self.registries = {kind: Registry(kind) for kind in KINDS}
        if load_builtins:
            self._load_builtins()
        if load_entry_points:
            self._load_entry_points()
        self._collect()

    # -- loading ---------------------------------------------------------------------------
    def _fail(self, plugin: str, dist: str, exc: BaseException) -> None:
        message = one_line(f"{type(exc).__name__}: {exc}")
        self.failures.append(PluginFailure(plugin, dist, message))
        log.warning("plugin %r from %s failed to load and was skipped: %s", plugin, dist, message)
        if _strict():
            raise exc

    def _problem(self, info: PluginInfo, message: str) -> None:
        info.problems.append(message)
        log.warning("plugin %r from %s: %s", info.name, info.distribution, message)

    def _refuse(self, info: PluginInfo, message: str) -> None:
        """One registration refused: a warning line and a problem; the rest of the plugin works
        (``KAKUGO_STRICT_PLUGINS=1`` stops instead)."""
        self._problem(info, message)
        if _strict():
            raise KakugoError(f"plugin {info.name!r} from {info.distribution}: {message}")

    def _check_hooks(self, module: Any, info: PluginInfo) -> None:
        """Report hook implementations no spec knows (``register_benchmark``) and functions
        named like a hook but not marked ``@hookimpl`` (pluggy would ignore both silently)."""
        known = sorted(n for n, c in vars(self.pm.hook).items() if c.spec is not None)
        for caller in self.pm.get_hookcallers(module) or []:
            if caller.spec is None:
                close = difflib.get_close_matches(caller.name, known, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]}?" if close else ""
                self._problem(info, f"implements unknown hook {caller.name!r}, which Kakugo "
                                    f"never calls{hint}")
        marked = {c.name for c in self.pm.get_hookcallers(module) or []}
        for hook_name in known:
            candidate = getattr(module, hook_name, None)
            if callable(candidate) and hook_name not in marked:
                self._problem(info, f"defines {hook_name}() without @hookimpl, so it is "
                                    "never called (from kakugo_core import hookimpl)")

    def register_module(self, module: Any, name: str, distribution: str, version: str) -> None:
        """Register an imported module (or any object with hookimpls) as a plugin."""
        self.pm.register(module, name=name)
        info = self.infos[name] = PluginInfo(name, distribution, version)
        self._check_hooks(module, info)

    def _load_builtins(self) -> None:
        version = _dist_version(BUILTIN_DISTRIBUTION)
        for package_name in BUILTIN_PACKAGES:
            for full in _public_modules(package_name):
                try:
                    module = importlib.import_module(full)
                except Exception as exc:  # a broken built-in must not take the CLI down
                    self._fail(full, BUILTIN_DISTRIBUTION, exc)
                    continue
                self.register_module(module, full, BUILTIN_DISTRIBUTION, version)

    def _selected_distributions(self) -> set[str] | None:
        raw = os.environ.get("KAKUGO_LOAD_PLUGINS")
        if raw is None:
            return None
        return {_normalise(p) for p in raw.split(",") if p.strip()}

    def _load_entry_points(self) -> None:
        selected = self._selected_distributions()
        eps = sorted(
            metadata.entry_points(group=ENTRY_POINT_GROUP),
            key=lambda ep: ((ep.dist.name if ep.dist else ""), ep.name),
        )
        for ep in eps:
            dist = ep.dist.name if ep.dist else "unknown"
            if selected is not None and _normalise(dist) not in selected:
                continue
            name = ep.name
            if name in self.infos:
                if self.infos[name].distribution == dist:
                    continue  # the same distribution seen twice on sys.path
                name = f"{dist}.{ep.name}"
            try:
                module = ep.load()
                self.register_module(module, name, dist, ep.dist.version if ep.dist else "")
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # SystemExit too: a plugin must not end the CLI
                self._fail(name, dist, exc)

    # -- registries ------------------------------------------------------------------------
    def _collect(self) -> None:
        for kind, (hook_name, _noun) in KINDS.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():  # in registration order
                self._call_registration(kind, impl)
        for name, info in self.infos.items():
            plugin = self.pm.get_plugin(name)
            if plugin is None:
                continue
            info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])

    def _call_registration(self, kind: str, impl: Any) -> None:
        info = self.infos[impl.plugin_name]
        registry = self.registries[kind]

        def register(name: str, factory: Any, aliases: tuple[str, ...] | list[str] = ()) -> None:
            why = refusal(kind, factory)
            if why is not None:
                self._refuse(info, f"{registry.noun} {name!r} refused: {why}")
                return
            reg = Registration(kind, name, factory, tuple(aliases), info.name, info.distribution)
            owner = registry.add(reg)
            info.registered.setdefault(kind, []).append(name)
            if aliases:
                info.aliases[name] = list(aliases)
            if owner is not None:
                msg = (
                    f"{registry.noun} {name!r} from {info.distribution} ({info.name}) clashes with "
                    f"{owner.distribution} ({owner.plugin}); keeping the first, the other is "
                    f"'{info.name}:{name}'"
                )
                self.clashes.append(msg)
                info.problems.append(msg)
                log.warning(msg)

        try:
            impl.function(register=register)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            self._fail(info.name, info.distribution, exc)

    def add_commands(self, cli: Any) -> None:
        """Let every plugin add its click commands."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            info = self.infos[impl.plugin_name]
            try:
                impl.function(cli=cli)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                self._fail(info.name, info.distribution, exc)

    def registry(self, kind: str) -> Registry:
        """The registry of one kind: teachers, students, benchmarks, generators, backends,
        release_targets."""
        return self.registries[kind]


def one_line(message: str, limit: int = 400) -> str:
    """All lines of a message joined into one (pluggy's validation errors put the cause last),
    shortened to ``limit`` characters."""
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _public_modules(package_name: str) -> list[str]:
    """The public modules of a built-in package and of its public sub-packages (e.g.
    ``plugins.teachers.openai_teacher``), sorted; names starting with ``_`` are helpers."""
    package = importlib.import_module(package_name)
    found = []
    for mod in pkgutil.iter_modules(package.__path__):
        if mod.name.startswith("_"):
            continue
        full = f"{package_name}.{mod.name}"
        found.extend(_public_modules(full) if mod.ispkg else [full])
    return sorted(found)


def _normalise(dist: str) -> str:
    return dist.strip().lower().replace("_", "-").replace(".", "-")


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _HOST
    if _HOST is None:
        _HOST = PluginHost()
    return _HOST


def reset_host() -> None:
    """Forget the loaded plugins (tests, or after installing a plugin in-process)."""
    global _HOST
    _HOST = None


def registry(kind: str) -> Registry:
    """Shortcut for ``get_host().registry(kind)``."""
    return get_host().registry(kind)


def create(kind: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """Instantiate a registered plugin object, e.g. ``create("benchmarks", "sib200")``."""
    return registry(kind).create(name, *args, **kwargs)


Factory = Callable[..., Any]
