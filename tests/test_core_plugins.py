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
GOOD_PLUGIN = _docs_block("`kakugo_hello/__init__.py`:", "python")
GOOD_PYPROJECT = _docs_block("`pyproject.toml`:", "toml")

BROKEN_PLUGIN = "raise RuntimeError('this plugin is broken on purpose')\n"

CLASHING_PLUGIN = '''
from kakugo_core import hookimpl


@hookimpl
def register_benchmarks(register):
    register("greeting", dict)
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
    assert reg.get("zclash:greeting").factory is dict
    assert len(host.clashes) == 1 and "zclash:greeting" in host.clashes[0]


def test_load_plugins_empty_means_none(plugin_site: Path) -> None:
    result = _kakugo(["plugins", "--json"], plugin_site, KAKUGO_LOAD_PLUGINS="")
    names = {p["name"] for p in json.loads(result.stdout)["plugins"]}
    assert names == _public_builtin_modules()
