"""Issue 25, items 6 and 7: one `kakugo run` per run folder at a time (a second is refused,
naming the first; a killed run's lock blocks nothing), and a copied run folder benches,
releases and reports from its own results store without re-running anything."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: a small demo: every stage and code path, a fraction of the training and of each benchmark
SMALL = ("--set", "train.epochs=0.2", "--set", "bench.limit=5", "--set", "judge.limit=4")
ENV = {**os.environ, "KAKUGO_LOAD_PLUGINS": "", "HF_HUB_OFFLINE": "1"}


def _kakugo(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "kakugo_core", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)


def _done(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    """Exit code, stdout and stderr; a run still going after ``timeout`` is killed and fails."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{proc.args!r} still ran after {timeout} s")
    return proc.returncode, out, err


def _status(run_dir: Path, stage: str) -> str:
    path = run_dir / stage / "manifest.json"
    return json.loads(path.read_text())["status"] if path.exists() else ""


def _checksums(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file()}


@pytest.mark.timeout(600)
def test_a_second_run_is_refused_while_the_first_trains(tmp_path: Path) -> None:
    """The defect: a second run started while the first trained trained and benched too."""
    run_dir = tmp_path / "demo"
    first = _kakugo(tmp_path, "run", "--demo", "--run-dir", "demo", "--no-progress",
                    "--set", "train.epochs=4.0", "--set", "bench.limit=5")
    try:
        deadline = time.monotonic() + 300
        while _status(run_dir, "train") != "running":
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.3)
        inputs = _checksums(run_dir / "demo-inputs")
        code, _out, err = _done(_kakugo(tmp_path, "run", "--demo", "--run-dir", "demo",
                                        "--no-progress"), timeout=120)
        assert first.poll() is None, "the first run ended before the second was refused"
        lines = err.strip().splitlines()
        assert code != 0 and len(lines) == 1, err
        assert lines[0].startswith("kakugo: error: run folder demo is in use by another "
                                   f"`kakugo run` (pid {first.pid} on "), err
        assert " since 20" in lines[0], err
        assert _checksums(run_dir / "demo-inputs") == inputs  # the demo's base not rebuilt
        assert json.loads((run_dir / "train" / "manifest.json").read_text())["attempts"] == 1
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()

    # a run killed while it holds the lock blocks nothing: the next run gets past the lock
    # (and stops at the next check, the unfinished train stage its bench stage needs)
    assert (run_dir / ".kakugo-run.lock").exists()
    code, _out, err = _done(_kakugo(tmp_path, "run", "jav_Latn", "--run-dir", "demo",
                                    "--stages", "bench", "--no-progress"), timeout=120)
    assert code == 2 and "needs an up-to-date 'train' stage" in err, err


def test_a_lock_held_elsewhere_refuses_and_a_killed_holder_does_not_block(
        tmp_path: Path) -> None:
    """The lock function itself, held by another process, then that process killed."""
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from kakugo_core.pipeline import run_lock\n"
         "with run_lock(Path(sys.argv[1])):\n    print('held', flush=True); sys.stdin.read()",
         str(run_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        code, _out, err = _done(_kakugo(tmp_path, "run", "jav_Latn", "--run-dir", "run",
                                        "--stages", "bench", "--no-progress"), timeout=120)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"is in use by another `kakugo run` (pid {holder.pid} on " in err, err
        assert sorted(p.name for p in run_dir.iterdir()) == [".kakugo-run.lock"]
    finally:
        holder.kill()
        holder.wait()
    code, _out, err = _done(_kakugo(tmp_path, "run", "jav_Latn", "--run-dir", "run",
                                    "--stages", "bench", "--no-progress"), timeout=120)
    assert code == 2 and "needs an up-to-date 'train' stage" in err, err


def test_the_lock_is_reentrant_in_one_process_and_exclusive_across_opens(
        tmp_path: Path) -> None:
    from kakugo_core.pipeline import LOCK_FILE, run_lock

    with run_lock(tmp_path), run_lock(tmp_path / "sub" / ".."):  # the command, run_language
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] and holder["since"]
        import fcntl

        with open(tmp_path / LOCK_FILE) as other, pytest.raises(OSError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(tmp_path / LOCK_FILE) as other:  # released on the way out
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


@pytest.mark.timeout(600)
def test_a_copied_run_folder_is_up_to_date_and_finds_its_results(tmp_path: Path) -> None:
    """The defect: `cp -r demo r && kakugo run --demo --run-dir r` skipped every stage and then
    exited 2: the store keyed the models by the paths the first run was given."""
    from kakugo_core.store import ResultsStore

    code, _out, err = _done(_kakugo(tmp_path, "run", "--demo", "--run-dir", "demo",
                                    "--no-progress", *SMALL), timeout=500)
    assert code == 0, err
    shutil.copytree(tmp_path / "demo", tmp_path / "copy")
    shutil.rmtree(tmp_path / "demo")  # nothing of the original is read

    code, out, err = _done(_kakugo(tmp_path, "run", "--demo", "--run-dir", "copy",
                                   "--no-progress", *SMALL), timeout=300)
    assert code == 0, err
    for stage in ("generate", "dataset", "train", "bench", "release"):
        assert f"{stage}: up to date, skipped" in err, err
    assert "{run}/demo-inputs/base-model (baseline)" in out  # the final leaderboard
    with ResultsStore(tmp_path / "copy" / "results.sqlite", readonly=True) as store:
        assert store.models() == ["{run}/demo-inputs/base-model", "{run}/train/model"]

    # the copy releases again from its own store, with nothing re-scored
    with ResultsStore(tmp_path / "copy" / "results.sqlite", readonly=True) as store:
        rows = len(store.rows())
    code, _out, err = _done(_kakugo(tmp_path, "run", "--demo", "--run-dir", "copy",
                                    "--no-progress", "--force", "release", *SMALL), timeout=300)
    assert code == 0, err
    assert "release: done" in err, err
    with ResultsStore(tmp_path / "copy" / "results.sqlite", readonly=True) as store:
        assert len(store.rows()) == rows
    tables = json.loads((tmp_path / "copy" / "release" / "out" / "results"
                         / "comparison.json").read_text())
    roles = {r["role"] for r in tables["results"]}
    assert roles == {"base", "student"}, tables  # both columns have their results


def test_run_folder_names_are_used_only_for_a_store_in_the_run_folder(tmp_path: Path) -> None:
    """A store shared by several runs would mix their ``{run}/train/model``s: outside the run
    folder the names stay as given; and a standalone `kakugo release` on a run's own store
    finds the student by its folder."""
    from kakugo_core.release import find_store_model
    from kakugo_core.run import run_model, stored_name
    from kakugo_core.store import ResultsStore

    run_dir = tmp_path / "runs" / "jav"
    student = run_dir / "train" / "model"
    ref = run_model(str(student), run_dir)
    assert (ref.name, ref.location) == ("{run}/train/model", str(student.resolve()))
    assert run_model(str(student), None).name == str(student)
    assert run_model("ibm-granite/granite-4.0-micro", run_dir).name == \
        "ibm-granite/granite-4.0-micro"
    # an older run stored the folder as it was given: still found
    assert stored_name({str(student)}, "{run}/train/model", run_dir) == str(student)
    assert stored_name({"{run}/train/model", str(student)}, "{run}/train/model",
                       run_dir) == "{run}/train/model"

    student.mkdir(parents=True)
    with ResultsStore(run_dir / "results.sqlite") as store:
        store.put("{run}/train/model", "", "sib200", "jav_Latn", 3, "p", [("acc", 0.4, 0.03, 9)])
        assert find_store_model(store, student) == "{run}/train/model"
        with pytest.raises(Exception, match="has no results"):
            find_store_model(store, tmp_path / "elsewhere" / "train" / "model")
