"""The plugin host: built-ins, real third-party distributions, broken plugins, clashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kakugo_core import plugins as host_module
from kakugo_core.errors import UnknownPluginError

REPO = Path(__file__).resolve().parent.parent

DOCS = (REPO / "docs" / "plugins.md").read_text()


def _docs_block(after: str, lang: str) -> str:
    """The first fenced ``lang`` block after the line ``after`` in docs/plugins.md."""
    rest = DOCS[DOCS.index(after):]
    start = rest.index(f"```{lang}\n") + len(lang) + 4
    return rest[start:rest.index("```", start)]


#: the plugin author's guide's complete example package, tested as written
GOOD_PLUGIN = _docs_block("`kakugo-hello/kakugo_hello/__init__.py`:", "python")
GOOD_PYPROJECT = _docs_block("`kakugo-hello/pyproject.toml`:", "toml")

BROKEN_PLUGIN = "raise RuntimeError('this plugin is broken on purpose')\n"

CLASHING_PLUGIN = '''
from kakugo_core import hookimpl
from kakugo_core.interfaces import Benchmark


class OtherGreeting(Benchmark):
    def evaluate(self, backend, language, options):
        raise NotImplementedError


@hookimpl
def register_benchmarks(register):
    register("greeting", OtherGreeting)
'''


def _build_distribution(
    root: Path, dist: str, module: str, source: str, pyproject: str | None = None
) -> Path:
    """Write a real plugin project and install it with pip into ``root/site``."""
    project = root / dist
    (project / module).mkdir(parents=True)
    (project / module / "__init__.py").write_text(source)
    (project / "pyproject.toml").write_text(pyproject or textwrap.dedent(f'''
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "0.3.1"

        [project.entry-points.kakugo]
        {module.removeprefix("kakugo_")} = "{module}"
    '''))
    site = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(project)],
        check=True, capture_output=True,
    )
    return site


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real distributions installed into one folder: good, broken and clashing."""
    root = tmp_path_factory.mktemp("plugins")
    _build_distribution(root, "kakugo-hello", "kakugo_hello", GOOD_PLUGIN, GOOD_PYPROJECT)
    _build_distribution(root, "kakugo-broken", "kakugo_broken", BROKEN_PLUGIN)
    return _build_distribution(root, "kakugo-zclash", "kakugo_zclash", CLASHING_PLUGIN)


def _kakugo(args: list[str], site: Path | None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KAKUGO_")}
    if site is not None:
        environ["PYTHONPATH"] = str(site)
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "kakugo_core", *args], capture_output=True, text=True, env=environ,
        cwd=REPO,
    )


def _public_builtin_modules() -> set[str]:
    found = set()
    for path in REPO.glob("*/**/*.py"):
        rel = path.relative_to(REPO).with_suffix("")
        if rel.parts[0] in host_module.BUILTIN_PACKAGES and not any(
                part.startswith("_") for part in rel.parts):
            found.add(".".join(rel.parts))
    return found


def test_builtins_are_registered_like_third_party_plugins() -> None:
    host = host_module.PluginHost(load_entry_points=False)
    assert set(host.infos) == _public_builtin_modules()
    assert all(info.distribution == "kakugo" for info in host.infos.values())
    assert host.failures == []


def test_third_party_plugin_is_listed_and_registered(plugin_site: Path) -> None:
    result = _kakugo(["plugins", "--json"], plugin_site, KAKUGO_LOAD_PLUGINS="kakugo-hello")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    by_name = {p["name"]: p for p in data["plugins"]}
    hello = by_name["hello"]
    assert hello["distribution"] == "kakugo-hello"
    assert hello["version"] == "0.1.0"
    assert hello["hooks"] == ["register_benchmarks", "register_commands"]
    assert hello["registered"] == {"benchmarks": ["greeting"]}
    assert _public_builtin_modules() <= set(by_name)

    result = _kakugo(["hello"], plugin_site, KAKUGO_LOAD_PLUGINS="kakugo-hello")
    assert result.stdout.strip() == "hello from kakugo-hello"


def test_registry_resolves_names_aliases_and_suggests(plugin_site: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(plugin_site))
    monkeypatch.setenv("KAKUGO_LOAD_PLUGINS", "kakugo-hello")
    reg = host_module.registry("benchmarks")
    assert reg.get("hello").name == "greeting"
    assert reg.get("hello:greeting").distribution == "kakugo-hello"
    assert reg.create("greeting").name == "greeting"
    with pytest.raises(UnknownPluginError, match="Did you mean greeting"):
        reg.get("greting")


def test_broken_plugin_warns_in_one_line_and_the_rest_works(plugin_site: Path) -> None:
    result = _kakugo(["plugins", "--json"], plugin_site,
                     KAKUGO_LOAD_PLUGINS="kakugo-hello,kakugo-broken")
    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if "broken" in line]
    assert len(warnings) == 1
    assert "kakugo-broken" in warnings[0] and "this plugin is broken on purpose" in warnings[0]
    data = json.loads(result.stdout)
    assert "hello" in {p["name"] for p in data["plugins"]}
    assert data["failures"][0]["distribution"] == "kakugo-broken"

    ok = _kakugo(["languages", "jv", "--json"], plugin_site, KAKUGO_LOAD_PLUGINS="kakugo-broken")
    assert ok.returncode == 0 and json.loads(ok.stdout)["id"] == "jav_Latn"


def test_strict_mode_reraises(plugin_site: Path) -> None:
    result = _kakugo(["plugins"], plugin_site, KAKUGO_LOAD_PLUGINS="kakugo-broken",
                     KAKUGO_STRICT_PLUGINS="1")
    assert result.returncode != 0
    assert "this plugin is broken on purpose" in result.stderr


def test_clash_keeps_first_and_reports(plugin_site: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(plugin_site))
    monkeypatch.setenv("KAKUGO_LOAD_PLUGINS", "kakugo-zclash,kakugo-hello")
    host = host_module.get_host()
    reg = host.registry("benchmarks")
    assert reg.get("greeting").distribution == "kakugo-hello"  # alphabetical: before zclash
    assert reg.get("zclash:greeting").factory.__name__ == "OtherGreeting"
    assert len(host.clashes) == 1 and "zclash:greeting" in host.clashes[0]


def test_load_plugins_empty_means_none(plugin_site: Path) -> None:
    result = _kakugo(["plugins", "--json"], plugin_site, KAKUGO_LOAD_PLUGINS="")
    names = {p["name"] for p in json.loads(result.stdout)["plugins"]}
    assert names == _public_builtin_modules()


MISSPELLED_HOOK = '''
from kakugo_core import hookimpl


@hookimpl
def register_benchmark(register):
    register("never", dict)


def register_teachers(register):  # not marked: pluggy would ignore it silently
    register("never-either", dict)
'''

EXITS_AT_IMPORT = "import sys\nsys.exit('kakugo-exits gave up')\n"

WRONG_ARGUMENT = '''
from kakugo_core import hookimpl


@hookimpl
def register_benchmarks(registr):
    registr("never", dict)
'''

#: a third-party "sib200" that claims a perfect score: it must never be shown as SIB-200
FAKE_SIB200 = '''
from kakugo_core import hookimpl
from kakugo_core.interfaces import Benchmark, BenchmarkResult, Score


class FakeSib200(Benchmark):
    name = "sib200"
    coverage_key = "sib200"

    def evaluate(self, backend, language, options):
        return BenchmarkResult(self.name, language.id, 0, "fake", [Score("acc", 0.99, 0.0, 40)])


@hookimpl
def register_benchmarks(register):
    register("sib200", FakeSib200)
'''


@pytest.fixture(scope="module")
def odd_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("odd-plugins")
    _build_distribution(root, "kakugo-typo", "kakugo_typo", MISSPELLED_HOOK)
    _build_distribution(root, "kakugo-exits", "kakugo_exits", EXITS_AT_IMPORT)
    _build_distribution(root, "kakugo-wrongarg", "kakugo_wrongarg", WRONG_ARGUMENT)
    return _build_distribution(root, "kakugo-fake", "kakugo_fake", FAKE_SIB200)


def test_misspelled_and_unmarked_hooks_are_reported(odd_site: Path) -> None:
    result = _kakugo(["plugins", "--json"], odd_site, KAKUGO_LOAD_PLUGINS="kakugo-typo")
    assert result.returncode == 0, result.stderr
    typo = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}["typo"]
    problems = " | ".join(typo["problems"])
    assert "unknown hook 'register_benchmark'" in problems
    assert "did you mean register_benchmarks?" in problems
    assert "register_teachers() without @hookimpl" in problems
    assert "kakugo-typo" in result.stderr and "register_benchmark" in result.stderr
    table = _kakugo(["plugins"], odd_site, KAKUGO_LOAD_PLUGINS="kakugo-typo", COLUMNS="200")
    assert "unknown hook 'register_benchmark'" in table.stdout


def test_a_plugin_exiting_at_import_cannot_take_the_cli_down(odd_site: Path) -> None:
    result = _kakugo(["--help"], odd_site, KAKUGO_LOAD_PLUGINS="kakugo-exits")
    assert result.returncode == 0
    assert "Usage" in result.stdout
    warning = [line for line in result.stderr.splitlines() if "kakugo-exits" in line]
    assert len(warning) == 1 and "SystemExit: kakugo-exits gave up" in warning[0]
    listed = _kakugo(["languages", "jv", "--json"], odd_site, KAKUGO_LOAD_PLUGINS="kakugo-exits")
    assert listed.returncode == 0 and json.loads(listed.stdout)["id"] == "jav_Latn"


def test_a_validation_error_keeps_the_line_that_says_what_is_wrong(odd_site: Path) -> None:
    result = _kakugo(["plugins", "--json"], odd_site, KAKUGO_LOAD_PLUGINS="kakugo-wrongarg")
    assert result.returncode == 0
    (failure,) = json.loads(result.stdout)["failures"]
    assert failure["distribution"] == "kakugo-wrongarg"
    assert "registr" in failure["error"]
    assert "can not be found in the hookspec" in failure["error"]
    assert len([ln for ln in result.stderr.splitlines() if "kakugo-wrongarg" in ln]) == 1


def test_a_clashing_benchmark_is_stored_and_ranked_under_its_own_name(
        odd_site: Path, tmp_path: Path, tiny_model: Path) -> None:
    db = tmp_path / "r.sqlite"
    for name in ("sib200", "fake:sib200"):
        run = _kakugo(["bench", "-m", str(tiny_model), "-b", name, "-l", "jav_Latn", "--limit",
                       "14", "--n-shot", "0", "--db", str(db), "--no-progress"], odd_site,
                      KAKUGO_LOAD_PLUGINS="kakugo-fake")
        assert run.returncode == 0, run.stderr
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = {(b, round(v, 2), json.loads(ver)["benchmark_plugin"]) for b, v, ver in
                conn.execute("SELECT benchmark, value, versions FROM results WHERE metric='acc'")}
    assert ("fake:sib200", 0.99, "kakugo-fake") in rows
    real = [r for r in rows if r[0] == "sib200"]
    assert len(real) == 1 and real[0][2] == "kakugo" and real[0][1] < 0.99
    board = _kakugo(["leaderboard", "--db", str(db), "--format", "json"], odd_site,
                    KAKUGO_LOAD_PLUGINS="kakugo-fake")
    assert board.returncode == 0, board.stderr
    assert "fake:sib200" in board.stdout


def test_leaderboard_splits_one_name_from_two_distributions() -> None:
    from kakugo_core.leaderboard import select_evaluations
    from kakugo_core.store import ResultRow

    def row(dist: str, value: float) -> ResultRow:
        return ResultRow("m", "r", "topics", "jav_Latn", 0, "h-" + dist, "acc", value, 0.01, 40,
                         "2026-11-30T00:00:00+00:00", {"benchmark_plugin": dist})

    chosen = select_evaluations([row("kakugo-a", 0.5), row("kakugo-b", 0.99)])
    assert set(chosen) == {("m", "kakugo-a:topics", "jav_Latn"), ("m", "kakugo-b:topics",
                                                                  "jav_Latn")}
