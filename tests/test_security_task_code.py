"""Issue 25: hostile task files. An lm-eval task YAML that names Python code (``!function``)
runs it only with ``--trust-task-code`` (or ``bench.trust_task_code``), as Hugging Face asks for
``trust_remote_code``; without it the file is refused in one line before any of its code runs,
when scoring and when exporting, here and on workers. A task file's name may not lead a path out
of its folder (``task: ../../../LMESC``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kakugo_core.errors import KakugoError
from tests.cli_runner import run_cli

FIXTURE = Path(__file__).parent / "fixtures" / "lm_eval_sib200" / "sib200_jav"
UTILS = """\
from pathlib import Path

Path({marker!r}).write_text("the task file's code ran", "utf-8")


def process_docs(dataset):
    return dataset
"""


def _yaml(task: str, data: Path, extra: str = "") -> str:
    """The SIB-200 Javanese topic task of docs/declarative.md over the fixture's rows."""
    return (
        f"task: {json.dumps(task)}\n"
        "dataset_path: json\n"
        "dataset_kwargs:\n  data_files:\n"
        f"    train: {json.dumps(str(data / 'train.jsonl'))}\n"
        f"    test: {json.dumps(str(data / 'test.jsonl'))}\n"
        "test_split: test\nfewshot_split: train\noutput_type: multiple_choice\n"
        'doc_to_text: "Text: {{text}}\\nTopic:"\n'
        'doc_to_choice: ["science/technology", "travel", "politics", "sports", "health", '
        '"entertainment", "geography"]\n'
        "doc_to_target: category\nmetric_list:\n  - metric: acc\n"
        f"{extra}metadata:\n  version: 1.0\n"
    )


@pytest.fixture
def evil(tmp_path: Path) -> Path:
    """``tasks/evil_task.yaml`` with ``process_docs: !function utils.process_docs``; importing
    ``tasks/utils.py`` writes ``marker``."""
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "utils.py").write_text(UTILS.format(marker=str(tmp_path / "marker")), "utf-8")
    (tasks / "evil_task.yaml").write_text(
        _yaml("evil_task", FIXTURE, "process_docs: !function utils.process_docs\n"), "utf-8")
    return tasks


def _bench(tasks: Path, *extra: str) -> list[str]:
    return ["bench", "--include-path", str(tasks), "-b", "evil_task", "-l", "jav_Latn",
            "--n-shot", "0", "--limit", "4", "--no-progress", *extra]


def _one_line(capfd: pytest.CaptureFixture[str]) -> str:
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("mode", ["score", "export", "yaml-file", "config-false", "utf-16"])
def test_task_code_is_refused_without_the_opt_in(evil, tmp_path, tiny_model, capfd, mode):
    if mode == "utf-16":  # YAML may be UTF-16 (with a BOM): lm-eval reads it so, and so must we
        file = evil / "evil_task.yaml"
        file.write_bytes(file.read_text("utf-8").encode("utf-16"))
    argv = {
        "score": _bench(evil, "-m", str(tiny_model), "--db", str(tmp_path / "r.sqlite")),
        "export": _bench(evil, "--export-lm-eval", str(tmp_path / "out")),
        "yaml-file": ["bench", "-b", str(evil / "evil_task.yaml"), "-l", "jav_Latn",
                      "--export-lm-eval", str(tmp_path / "out")],
        "utf-16": _bench(evil, "--export-lm-eval", str(tmp_path / "out")),
        "config-false": _bench(evil, "--export-lm-eval", str(tmp_path / "out"), "--set",
                               "bench.trust_task_code=false"),
    }[mode]
    assert run_cli(*argv) != 0
    line = _one_line(capfd)
    assert str(evil / "evil_task.yaml") in line and "--trust-task-code" in line, line
    assert "!function utils.process_docs" in line, line
    assert not (tmp_path / "marker").exists()  # not one line of utils.py ran
    assert not (tmp_path / "out").exists() and not (tmp_path / "r.sqlite").exists()


def test_code_in_an_included_file_is_refused(evil, tmp_path, capfd):
    (evil / "evil_task.yaml").rename(evil / "base.txt")  # not indexed itself: only included
    (evil / "clean.yaml").write_text("include: base.txt\ntask: clean_task\n", "utf-8")
    argv = ["bench", "--include-path", str(evil), "-b", "clean_task", "-l", "jav_Latn",
            "--export-lm-eval", str(tmp_path / "out")]
    assert run_cli(*argv) != 0
    assert "base.txt" in _one_line(capfd)
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("trust", [False, True])
def test_a_metric_script_runs_only_with_the_opt_in(tmp_path, capfd, trust):
    """A metric lm-eval does not know is handed to Hugging Face ``evaluate.load``, which runs
    a metric script (a local file here, or one from the Hub)."""
    script = tmp_path / "tasks" / "evil_metric.py"
    script.parent.mkdir()
    script.write_text(f"open({str(tmp_path / 'marker')!r}, 'w').write('ran')\n", "utf-8")
    yaml = _yaml("metric_task", FIXTURE).replace("  - metric: acc\n",
                                                 f"  - metric: {json.dumps(str(script))}\n")
    (script.parent / "metric_task.yaml").write_text(yaml, "utf-8")
    argv = ["bench", "--include-path", str(script.parent), "-b", "metric_task", "-l",
            "jav_Latn", "--export-lm-eval", str(tmp_path / "out"),
            *(["--trust-task-code"] if trust else [])]
    code = run_cli(*argv)
    if trust:  # the route is real: lm-eval runs the script (then finds no metric in it)
        assert (tmp_path / "marker").is_file(), capfd.readouterr()
        return
    assert code != 0
    line = _one_line(capfd)
    assert "metric_list" in line and "--trust-task-code" in line, line
    assert not (tmp_path / "marker").exists()


def test_task_code_runs_with_the_opt_in(evil, tmp_path, tiny_model, capfd):
    from kakugo_core.store import ResultsStore

    db = tmp_path / "r.sqlite"
    assert run_cli(*_bench(evil, "-m", str(tiny_model), "--db", str(db), "--predictions-dir",
                           str(tmp_path / "p"), "--trust-task-code")) == 0, capfd.readouterr()
    assert (tmp_path / "marker").is_file()
    with ResultsStore(db) as store:
        rows = store.rows()
    assert {(r.benchmark, r.language) for r in rows} == {("evil_task", "jav_Latn")}
    (slug,) = (tmp_path / "p").iterdir()
    assert len((slug / "evil_task" / "jav_Latn.jsonl").read_text("utf-8").splitlines()) == 4


def test_the_configuration_key_opts_in_too(evil, tmp_path, capfd):
    out = tmp_path / "out"
    assert run_cli(*_bench(evil, "--export-lm-eval", str(out), "--set",
                           "bench.trust_task_code=true")) == 0, capfd.readouterr()
    assert (tmp_path / "marker").is_file() and list(out.glob("*.yaml"))


@pytest.mark.parametrize("trust", [False, True])
def test_a_template_reaches_python_only_with_the_opt_in(tmp_path, capfd, trust):
    """lm-eval renders ``doc_to_text`` with an unsandboxed Jinja environment, where a template
    reaches ``os``; without the opt-in Kakugo renders it in Jinja's sandbox."""
    ran = tmp_path / "jinja-ran"
    (tmp_path / "tasks").mkdir()
    yaml = _yaml("jinja_task", FIXTURE).replace(
        'doc_to_text: "Text: {{text}}\\nTopic:"',
        f"doc_to_text: \"{{{{ lipsum.__globals__['os'].makedirs('{ran}', exist_ok=True) }}}}"
        '{{text}}"')
    assert "lipsum" in yaml
    (tmp_path / "tasks" / "jinja_task.yaml").write_text(yaml, "utf-8")
    argv = ["bench", "--include-path", str(tmp_path / "tasks"), "-b", "jinja_task", "-l",
            "jav_Latn", "--export-lm-eval", str(tmp_path / "out"),
            *(["--trust-task-code"] if trust else [])]
    if trust:
        assert run_cli(*argv) == 0, capfd.readouterr()
        assert ran.is_dir()
        return
    assert run_cli(*argv) != 0
    line = _one_line(capfd)
    assert "a template reaches into Python" in line and "--trust-task-code" in line, line
    assert not ran.exists() and not (tmp_path / "out").exists()


def test_workers_apply_the_plans_rule(evil, tmp_path):
    """A plan sent to Ray/Slurm workers carries the opt-in; a worker loads the task files again
    under the same rule."""
    from kakugo_core.config import load_config
    from kakugo_core.evaluation import EvaluationPlan, build_plan

    plan = build_plan(load_config(None, []), models=[], languages=["jav_Latn"],
                      benchmarks=["evil_task"], include_paths=[str(evil)], trust_task_code=True)
    assert (tmp_path / "marker").is_file()
    data = plan.to_json()
    assert data["trust_task_code"] is True
    assert [b.name for b in EvaluationPlan.from_json(data).benchmark_objects()] == ["evil_task"]
    with pytest.raises(KakugoError, match="evil_task.yaml: runs Python code"):
        EvaluationPlan.from_json({**data, "trust_task_code": False}).benchmark_objects()


def test_a_task_name_cannot_leave_the_predictions_folder(tmp_path, tiny_model, capfd,
                                                         monkeypatch):
    """``task: ../../../LMESC`` run from d1/d2/d3 with --predictions-dir p would write
    d1/d2/LMESC/jav_Latn.jsonl and store results under that name: refused in one line."""
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "escape.yaml").write_text(_yaml("../../../LMESC", FIXTURE), "utf-8")
    cwd = tmp_path / "d1" / "d2" / "d3"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    db = cwd / "r.sqlite"
    code = run_cli("bench", "-m", str(tiny_model), "-b", str(tasks / "escape.yaml"), "-l",
                   "jav_Latn", "--limit", "4", "--n-shot", "0", "--db", str(db),
                   "--predictions-dir", "p", "--no-progress")
    assert code != 0
    line = _one_line(capfd)
    assert "escape.yaml: task: '../../../LMESC'" in line, line
    assert sorted(p.name for p in (tmp_path / "d1").rglob("*")) == ["d2", "d3"]


def test_inside_refuses_paths_that_leave_their_folder(tmp_path):
    from kakugo_core.files import inside

    assert inside(tmp_path, "m", "b", "jav_Latn.jsonl") == tmp_path.resolve() / "m/b/jav_Latn.jsonl"
    for parts in (("..", "x.jsonl"), ("m", "../../x"), ("/etc/passwd",), ("m", "..")):
        with pytest.raises(KakugoError, match="outside"):
            inside(tmp_path, *parts)
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(KakugoError, match="outside"):
        inside(tmp_path, "link", "x.jsonl")


def test_toml_and_yaml_names_follow_one_rule(tmp_path):
    """The TOML ``name`` rule and the YAML ``task`` rule are one function."""
    from kakugo_core.toolkit.declarative import check_name, load_spec

    spec = tmp_path / "t.toml"
    spec.write_text('name = "../x"\nlanguages = ["jav_Latn"]\ntemplate = "{text}"\n'
                    'gold = "category"\nchoices = ["a"]\n', "utf-8")
    with pytest.raises(KakugoError, match=r"t\.toml: name: '\.\./x' must be letters"):
        load_spec(spec)
    for bad in ("../LMESC", "a/b", ".hidden", "", "a\\b"):
        with pytest.raises(KakugoError):
            check_name(bad, "here")
    assert check_name("sib200_jav-topic.v1", "here") == "sib200_jav-topic.v1"


def test_data_only_yaml_still_loads_without_the_opt_in(tmp_path):
    from kakugo_core.lm_eval_yaml import load_tasks

    (tmp_path / "plain.yaml").write_text(_yaml("plain_task", FIXTURE), "utf-8")
    (tmp_path / "copy.yml").write_text(_yaml("plain_copy", FIXTURE), "utf-8")
    assert [t.name for t in load_tasks("plain_task", [tmp_path])] == ["plain_task"]
