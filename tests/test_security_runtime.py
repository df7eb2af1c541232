"""Issue 25, at run time: a plugin's bug is one line naming the plugin (``-v`` shows the
traceback) and keeps the cells already stored; a factory of the wrong kind is refused at load;
reads are bounded (no /dev/zero, FIFO or oversized configuration); a too-long output name fails
before any scoring; a full disk names the file; SIGTERM and Ctrl-C say what was kept."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kakugo_core import plugins as host_module
from kakugo_core.errors import KakugoError

REPO = Path(__file__).resolve().parent.parent

#: a third-party plugin with bugs on purpose, installed with pip like any other
BUGGY_PLUGIN = '''
import os
import time

from kakugo_core import hookimpl
from kakugo_core.errors import KakugoError
from kakugo_core.interfaces import Backend, Benchmark, BenchmarkResult, Score, Student


class _Bench(Benchmark):
    def language_code(self, language):
        return language.id

    def _ok(self, language):
        return BenchmarkResult(self.name, language.id, 0, "h", [Score("acc", 0.5, None, 1)],
                               predictions=[{"id": "1"}])


class Boom(_Bench):
    """Scores Javanese, divides by zero on any other language."""

    def evaluate(self, backend, language, options):
        if language.id == "jav_Latn":
            return self._ok(language)
        return 1 / 0


class Deliberate(_Bench):
    def evaluate(self, backend, language, options):
        raise KakugoError("deliberate: the plugin says what to do")


class Sleepy(_Bench):
    """Scores Javanese, then waits (for a signal) on any other language."""

    def evaluate(self, backend, language, options):
        if language.id != "jav_Latn":
            time.sleep(120)
        return self._ok(language)


class Explode(Student):
    def train(self, base_model, dataset_dir, out_dir, options):
        raise ValueError("bad learning rate")


def bad_backend(model, **options):
    raise RuntimeError("cannot load " + os.path.basename(model))


def dict_backend(model, **options):
    return {"model": model}


@hookimpl
def register_benchmarks(register):
    register("boom", Boom)
    register("deliberate", Deliberate)
    register("sleepy", Sleepy)


@hookimpl
def register_backends(register):
    register("bad-backend", bad_backend)
    register("dict-backend", dict_backend)


@hookimpl
def register_students(register):
    register("explode", Explode)
'''

#: factories of the wrong kind: refused at load, the good one beside them kept
WRONG_KIND_PLUGIN = '''
from kakugo_core import hookimpl
from kakugo_core.interfaces import Benchmark


class Fine(Benchmark):
    def evaluate(self, backend, language, options):
        raise NotImplementedError


@hookimpl
def register_benchmarks(register):
    register("dictx", dict)
    register("fine", Fine)


@hookimpl
def register_backends(register):
    register("not-callable", 42)
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "kakugo-{name}"
version = "1.0"

[project.entry-points.kakugo]
{name} = "kakugo_{name}"
'''

BOOM_LINE = ("kakugo: error: benchmark 'boom' (plugin kakugo-buggy 1.0) failed in evaluate: "
             "ZeroDivisionError: division by zero (-v shows the traceback)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("buggy")
    for name, source in (("buggy", BUGGY_PLUGIN), ("wrongkind", WRONG_KIND_PLUGIN)):
        (root / f"kakugo-{name}" / f"kakugo_{name}").mkdir(parents=True)
        (root / f"kakugo-{name}" / f"kakugo_{name}" / "__init__.py").write_text(source)
        (root / f"kakugo-{name}" / "pyproject.toml").write_text(PYPROJECT.format(name=name))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(root / "site"), str(root / "kakugo-buggy"),
         str(root / "kakugo-wrongkind")], check=True, capture_output=True, timeout=600)
    return root / "site"


def _env(site: Path | None, cwd: Path, load: str = "kakugo-buggy") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAKUGO_")}
    env.update(PYTHONPATH=os.pathsep.join([str(site), str(REPO)]) if site else str(REPO),
               KAKUGO_LOAD_PLUGINS=load if site else "",
               KAKUGO_DB=str(cwd / "default.sqlite"), HF_HUB_OFFLINE="1")
    return env


def kakugo(site: Path | None, cwd: Path, *args: str, timeout: float = 600,
           load: str = "kakugo-buggy") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kakugo_core", *args], capture_output=True,
                          text=True, env=_env(site, cwd, load), cwd=cwd, timeout=timeout)


def bench(model: Path | str, benchmark: str, *extra: str) -> list[str]:
    return ["bench", "-m", str(model), "-b", benchmark, "-l", "jav_Latn,sun_Latn",
            "--db", "r.sqlite", "--no-progress", *extra]


def stored(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as con:
        return sorted(set(con.execute("SELECT benchmark, language FROM results")))


def lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# -- plugin isolation at run time -------------------------------------------------------------
def test_evaluate_error_is_one_line_and_done_cells_are_kept(site: Path, tmp_path: Path,
                                                            tiny_model: Path) -> None:
    done = kakugo(site, tmp_path, *bench(tiny_model, "boom"))
    assert done.returncode == 2, done.stderr
    assert lines(done.stderr) == [BOOM_LINE]
    assert stored(tmp_path / "r.sqlite") == [("boom", "jav_Latn")]


def test_verbose_shows_the_plugins_traceback(site: Path, tmp_path: Path,
                                             tiny_model: Path) -> None:
    done = kakugo(site, tmp_path, "-v", *bench(tiny_model, "boom"))
    assert done.returncode == 2
    assert "Traceback" in done.stderr and "return 1 / 0" in done.stderr
    assert lines(done.stderr)[-1] == BOOM_LINE


def test_a_plugins_own_kakugo_error_passes_through(site: Path, tmp_path: Path,
                                                   tiny_model: Path) -> None:
    done = kakugo(site, tmp_path, *bench(tiny_model, "deliberate"))
    assert done.returncode == 2
    assert lines(done.stderr) == ["kakugo: error: deliberate: the plugin says what to do"]


@pytest.mark.parametrize(("backend", "expect"), [
    ("bad-backend", "backend 'bad-backend' (plugin kakugo-buggy 1.0) failed in its factory: "
                    "RuntimeError: cannot load "),
    ("dict-backend", "backend 'dict-backend' (plugin kakugo-buggy 1.0) made a dict, not a "
                     "Backend"),
])
def test_backend_factory_errors_are_one_line(site: Path, tmp_path: Path, tiny_model: Path,
                                             backend: str, expect: str) -> None:
    done = kakugo(site, tmp_path, *bench(tiny_model, "sib200", "--limit", "2", "--backend",
                                         backend))
    assert done.returncode == 2, done.stderr
    (line,) = lines(done.stderr)
    assert line.startswith(f"kakugo: error: {expect}"), line
    assert stored(tmp_path / "r.sqlite") == []


def test_wrong_kind_of_factory_is_refused_at_load(site: Path, tmp_path: Path) -> None:
    listed = kakugo(site, tmp_path, "plugins", "--json", load="kakugo-wrongkind")
    assert listed.returncode == 0, listed.stderr
    warnings = lines(listed.stderr)
    assert len(warnings) == 2, warnings  # dictx and not-callable, one line each
    assert any("benchmark 'dictx' refused: builtins.dict is not a Benchmark subclass" in w
               for w in warnings)
    assert any("backend 'not-callable' refused: int 42 is neither a class nor callable" in w
               for w in warnings)
    wrong = next(p for p in json.loads(listed.stdout)["plugins"] if p["name"] == "wrongkind")
    assert wrong["registered"] == {"benchmarks": ["fine"]}
    assert len(wrong["problems"]) == 2
    refused = kakugo(site, tmp_path, "bench", "-m", "x", "-b", "dictx", "-l", "jav",
                     load="kakugo-wrongkind")
    assert refused.returncode == 2
    assert lines(refused.stderr)[-1].startswith("kakugo: error: unknown benchmark 'dictx'")


def test_student_error_names_the_plugin(site: Path, monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    from kakugo_core.training import TrainRequest, train

    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("KAKUGO_LOAD_PLUGINS", "kakugo-buggy")
    host_module.reset_host()
    try:
        with pytest.raises(host_module.PluginError) as caught:
            train(TrainRequest("base", str(tmp_path), str(tmp_path / "out"), "explode", {}))
    finally:
        host_module.reset_host()
    assert str(caught.value) == ("student 'explode' (plugin kakugo-buggy 1.0) failed in train: "
                                 "ValueError: bad learning rate (-v shows the traceback)")
    assert isinstance(caught.value.__cause__, ValueError)


def test_plugin_iter_names_the_generator_and_lets_interrupts_through() -> None:
    def rows():
        yield {"id": "a"}
        raise OSError("teacher socket closed")

    got = []
    with pytest.raises(host_module.PluginError, match=r"^generator 'topic' \(plugin kakugo "
                       r".*\) failed in generate: OSError: teacher socket closed"):
        for row in host_module.plugin_iter("generators", "topic", "generate", rows()):
            got.append(row)
    assert got == [{"id": "a"}]  # what came before the error was handed on

    def interrupted():
        raise KeyboardInterrupt
        yield  # pragma: no cover

    with pytest.raises(KeyboardInterrupt):
        list(host_module.plugin_iter("generators", "topic", "generate", interrupted()))
    with pytest.raises(SystemExit), host_module.plugin_call("students", "hf", "train"):
        raise SystemExit(3)


# -- bounded reads ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "huge"])
def test_configuration_must_be_a_small_regular_file(tmp_path: Path, kind: str) -> None:
    from kakugo_core.config import MAX_CONFIG_BYTES

    path = tmp_path / "c.toml"
    if kind == "dev-zero":
        path = Path("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    started = time.monotonic()
    done = kakugo(None, tmp_path, "config", "--config", str(path), timeout=60)
    assert time.monotonic() - started < 60
    assert done.returncode == 2
    (line,) = lines(done.stderr)
    expect = "over the 1048576-byte limit" if kind == "huge" else "not a regular file"
    assert line.startswith(f"kakugo: error: {path}: ") and expect in line, line


def test_data_files_must_be_regular_and_their_digest_is_unchanged(tmp_path: Path) -> None:
    from kakugo_core.toolkit.data import read_rows, read_rows_with_digest, rows_digest

    fifo = tmp_path / "test.tsv"
    os.mkfifo(fifo)
    with pytest.raises(KakugoError, match="is a FIFO, not a regular file"):
        read_rows(fifo, ["id"])
    with pytest.raises(KakugoError, match="is a directory, not a regular file"):
        read_rows(tmp_path, ["id"])
    data = tmp_path / "d.jsonl"
    data.write_text('\ufeff{"id": 1, "t": "é"}\n\n{"id": 2, "t": [1, 2]}\r\n', "utf-8")
    rows, digest = read_rows_with_digest(data, ["id"])
    assert rows == [{"id": 1, "t": "é"}, {"id": 2, "t": [1, 2]}]
    assert digest == rows_digest(rows)  # stored source labels stay valid


def test_a_data_file_is_parsed_once_until_it_changes(tmp_path: Path) -> None:
    from kakugo_core.toolkit.data import load_split

    folder = tmp_path / "b" / "jav_Latn"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text('{"id": 1}\n')

    def load() -> tuple[list[dict], str]:
        split = load_split("b", "jav_Latn", "test", ["id"], data_dir=tmp_path, hub_id="",
                           hub_config="", hub_split="", revision="main")
        return split.rows, split.source

    first, source = load()
    again, same = load()
    assert again == first and again is not first and same == source
    again.append({"id": 9})  # a caller's list is its own
    assert load()[0] == [{"id": 1}]
    (folder / "test.jsonl").write_text('{"id": 1}\n{"id": 2}\n')
    changed, other = load()
    assert changed == [{"id": 1}, {"id": 2}] and other != source


# -- late failures ----------------------------------------------------------------------------
def test_too_long_output_name_fails_before_scoring(tmp_path: Path, tiny_model: Path) -> None:
    long_model = tmp_path / ("m" * 200)
    long_model.symlink_to(tiny_model, target_is_directory=True)
    started = time.monotonic()
    done = kakugo(None, tmp_path, "bench", "-m", str(long_model), "-b", "sib200", "-l", "jav",
                  "--limit", "2", "--n-shot", "0", "--db", "r.sqlite", "--no-progress",
                  "--predictions-dir", "preds")
    assert done.returncode == 2
    (line,) = lines(done.stderr)
    assert "over this file system's limit of" in line and "shorter model path" in line, line
    assert stored(tmp_path / "r.sqlite") == []
    assert not (tmp_path / "preds").exists() or not any((tmp_path / "preds").iterdir())
    assert time.monotonic() - started < 60


def test_full_disk_names_the_file(tmp_path: Path) -> None:
    from kakugo_core.generation import RowWriter

    (tmp_path / "prompts.jsonl").symlink_to("/dev/full")  # every write: ENOSPC
    writer = RowWriter(tmp_path)
    with pytest.raises(KakugoError) as caught:
        writer.write("prompts.jsonl", {"id": "a"})
    writer.close()
    assert str(caught.value).startswith(f"cannot write {tmp_path / 'prompts.jsonl'}: "
                                        "No space left on device")


@pytest.mark.parametrize(("sig", "code", "said"), [
    (signal.SIGTERM, 143, "kakugo: stopped by SIGTERM; finished work is kept"),
    (signal.SIGINT, 130, "kakugo: interrupted; finished work is kept"),
])
def test_signal_says_what_was_kept(site: Path, tmp_path: Path, tiny_model: Path,
                                   sig: signal.Signals, code: int, said: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "kakugo_core", *bench(tiny_model, "sleepy")],
                            env=_env(site, tmp_path), cwd=tmp_path, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 300
        while stored(tmp_path / "r.sqlite") != [("sleepy", "jav_Latn")]:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr
    (line,) = lines(stderr)
    assert line.startswith(said), line
    assert stored(tmp_path / "r.sqlite") == [("sleepy", "jav_Latn")]


def test_docs_describe_the_runtime_error() -> None:
    guide = (REPO / "docs" / "plugins.md").read_text("utf-8")
    assert BOOM_LINE.removeprefix("kakugo: error: ").split(" failed")[0].replace(
        "boom", "x").replace("kakugo-buggy 1.0", "kakugo-foo 1.0") in guide
    assert textwrap.dedent("not a Benchmark subclass") in guide


def test_main_puts_the_sigterm_handler_back(capsys: pytest.CaptureFixture[str]) -> None:
    from kakugo_core import cli

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit):
        cli.main(["languages", "--no-such-option"])
    capsys.readouterr()
    assert signal.getsignal(signal.SIGTERM) is before
