"""One vocabulary: every command and subcommand of the real click tree spells a concept the same
way, reads configuration through --config/--set, and keeps old spellings as hidden aliases that
still work and say what replaced them."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from kakugo_core.cli import cli
from kakugo_core.cli_options import NO_CONFIGURATION, NOTICE, AliasedOption
from kakugo_core.store import ResultsStore
from tests.cli_runner import run_cli

REPO = Path(__file__).resolve().parent.parent

#: concept -> (every spelling that names it, the one allowed)
CONCEPTS = {
    "model": ({"-m", "--model", "--models", "--student"}, ["-m", "--model"]),
    "languages": ({"-l", "--language", "--languages", "--lang"}, ["-l", "--languages"]),
    "benchmarks": ({"-b", "--benchmark", "--benchmarks"}, ["-b", "--benchmarks"]),
    "output": ({"-o", "--out", "--output", "--out-dir", "--output-dir"}, ["-o", "--out"]),
    "overwrite": ({"--overwrite"}, ["--overwrite"]),
    "json": ({"--json"}, ["--json"]),
    "config": ({"--config"}, ["--config"]),
    "set": ({"--set"}, ["--set"]),
}


def commands() -> Iterator[tuple[str, click.Command]]:
    """Every command and subcommand, by its path ("compare export"), from the click tree."""
    def walk(path: str, command: click.Command) -> Iterator[tuple[str, click.Command]]:
        if path:
            yield path, command
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=path or "kakugo")
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, name
                yield from walk(f"{path} {name}".strip(), sub)

    return walk("", cli)


ALL = list(commands())
IDS = [path for path, _ in ALL]


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option)]


def test_the_tree_is_walked_whole() -> None:
    assert {"bench", "judge", "compare export", "leaderboard publish", "store merge",
            "teacher", "tiny-model", "status"} <= set(IDS)


@pytest.mark.parametrize(("path", "command"), ALL, ids=IDS)
def test_each_concept_has_its_one_spelling(path: str, command: click.Command) -> None:
    for option in _options(command):
        spelled = set(option.opts) | set(option.secondary_opts)
        for concept, (spellings, canonical) in CONCEPTS.items():
            if spelled & spellings:
                assert option.opts == canonical, f"{path}: {option.opts} for {concept}"
        if "-o" in spelled:
            assert option.opts == ["-o", "--out"], f"{path}: -o is {option.opts}"
        if option.opts == ["--json"]:
            assert option.is_flag and option.name == "as_json", path


@pytest.mark.parametrize(("path", "command"), ALL, ids=IDS)
def test_every_command_reading_configuration_takes_config_and_set(
        path: str, command: click.Command) -> None:
    names = {o.opts[0] for o in _options(command)}
    if isinstance(command, click.Group) and not command.invoke_without_command:
        return  # a group only dispatches; its subcommands are checked
    if path in NO_CONFIGURATION:
        assert not names & {"--config", "--set"}, path
        function = inspect.getsource(command.callback)  # type: ignore[arg-type]
        assert "load_config" not in function, f"{path} reads the configuration after all"
        return
    assert {"--config", "--set"} <= names, f"{path} has no --config/--set and is not listed " \
                                           "in cli_options.NO_CONFIGURATION"


def test_commands_without_configuration_are_real_commands() -> None:
    assert set(NO_CONFIGURATION) <= set(IDS)


@pytest.mark.parametrize(("path", "command"), ALL, ids=IDS)
def test_old_spellings_are_hidden_and_still_parse(path: str, command: click.Command,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Every old spelling is absent from --help, parses to the option it was renamed to, and
    prints one notice naming the new spelling."""
    help_text = command.get_help(click.Context(command, info_name=path))
    for option in _options(command):
        if not isinstance(option, AliasedOption):
            continue
        for old in option.old:
            assert not re.search(rf"(^|[\s,/]){re.escape(old)}([\s,=/]|$)", help_text,
                                 re.MULTILINE), f"{path}: {old} shows in --help"
            ctx = click.Context(command, info_name=path)
            parser = command.make_parser(ctx)
            args = [old] if option.is_flag else [old, "VALUE"]
            opts, _, _ = parser.parse_args(args)
            value = opts[option.name]
            assert value in ("VALUE", ["VALUE"]) or (option.is_flag and value), (path, old)
            new = "/".join(option.opts)
            assert capsys.readouterr().err == NOTICE.format(old=old, new=new) + "\n"


def test_hidden_aliases_work_end_to_end(tmp_path: Path, capfd, monkeypatch) -> None:
    """``leaderboard --models a --output f`` and ``languages`` with the new spellings: the old
    ones still do their job, each with one notice."""
    monkeypatch.chdir(tmp_path)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        for model in ("alpha", "beta"):
            store.put(model, "r1", "sib200", "jav_Latn", 0, "h", [("acc", 0.5, 0.03, 204)],
                      {"kakugo": "0.1.0", "backend": "transformers"})
    assert run_cli("leaderboard", "--db", "r.sqlite", "--format", "csv", "--models", "alpha",
                   "--output", "old.csv") == 0
    err = capfd.readouterr().err.splitlines()
    assert err[:2] == ["kakugo: note: --models is now -m/--model",
                       "kakugo: note: --output is now -o/--out"]
    assert run_cli("leaderboard", "--db", "r.sqlite", "--format", "csv", "-m", "alpha",
                   "-o", "new.csv") == 0
    assert "note" not in capfd.readouterr().err
    assert (tmp_path / "old.csv").read_text() == (tmp_path / "new.csv").read_text()
    assert "beta" not in (tmp_path / "new.csv").read_text()


def test_judge_opponent_no_longer_takes_o(capfd) -> None:
    help_text = run_cli("judge", "--help")
    assert help_text == 0
    out = capfd.readouterr().out
    assert "--opponent" in out and not re.search(r"-o,|-o\s", out)


def test_one_language_commands_take_the_positional_or_l(tmp_path, monkeypatch, capfd) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli("languages", "-l", "Javanese,yo", "--json") == 0
    out = capfd.readouterr().out
    assert '"jav_Latn"' in out and '"yor_Latn"' in out
    assert run_cli("generate", "jav", "-l", "sun", "--work-dir", "g") == 2
    assert "once" in capfd.readouterr().err
    assert run_cli("judge", "-m", "a", "--opponent", "b", "-p", "p.jsonl", "-l", "jav,sun") == 2
    assert "one language" in capfd.readouterr().err


def test_limit_is_the_same_seeded_sample_in_judge_and_compare(tmp_path: Path) -> None:
    """``--limit`` in judge and compare draws bench's seeded sample, not the first N rows."""
    import json

    from kakugo_core.config import load_config
    from kakugo_core.judging import judge_options, load_prompts
    from kakugo_core.toolkit.sampling import sample_items

    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"q{i}"}) + "\n" for i in range(40)))
    every = load_prompts(path)
    assert [p.text for p in every] == [f"q{i}" for i in range(40)]
    for seed in (0, 7):
        sample = load_prompts(path, 6, seed)
        assert sample == sample_items(every, 6, seed)
        assert sample != every[:6]
    assert load_prompts(path, 6, 0) != load_prompts(path, 6, 7)
    assert load_prompts(path, 6) == every[:6]  # the toolkit's callers without a seed: unchanged
    options = judge_options(load_config(), prompts=path, opponent="b", backend="transformers",
                            backend_options={}, limit=6, limit_seed=7)
    assert (options["limit"], options["limit_seed"]) == (6, 7)
    judge_help = {o.opts[0]: o.help for o in _options(dict(ALL)["judge"])}
    compare_help = {o.opts[0]: o.help for o in _options(dict(ALL)["compare export"])}
    assert judge_help["--limit-seed"] == compare_help["--limit-seed"]
    assert "seeded random sample" in judge_help["--limit"]  # type: ignore[operator]
    assert "seeded random sample" in compare_help["--limit"]  # type: ignore[operator]


def test_readme_lists_every_command() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `kakugo "))
    for path, _command in ALL:
        top = path.split()[0]
        assert f"`kakugo {top}" in table, f"kakugo {top} is missing from the README's table"
