"""The every-way test: one evaluation, four ways of running it, the same rows.

One evaluation — the built-in SIB-200 at the configuration's 1 shot, a TOML task that fixes its
own ``n_shot = 0`` and an lm-eval YAML task with its own ``num_fewshot: 2``, ``--limit 7
--limit-seed 5``, every path relative (the models, the task files, ``--data-dir``, ``--db``
and so the shard folder, ``--predictions-dir``) — is scored by ``kakugo bench`` in one process,
on a real Ray cluster started by ``ray start`` in another folder and reached through Ray Client
(``ray://``), through the Slurm stand-in (tests/fixtures/slurm/sbatch), and by the plan of
``kakugo run``'s bench stage (:func:`kakugo_core.run.bench_plan`, scored as the stage scores
it). Every way must store identical rows (values, n, standard errors, versions, prompt hashes,
shots) and write byte-identical prediction files. Every process scores on one torch thread, so
sums cannot differ in their last bits between ways.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from kakugo_core.scoring import model_slug
from kakugo_core.store import ResultsStore

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "kakugo_core" / "data" / "sib200"
FIXTURE = Path(__file__).parent / "fixtures" / "lm_eval_sib200"
MODELS = ["models/m1", "run/train/model"]  # relative to the working folder
BENCHMARKS = ["sib200", "topic", "sib200_jav_topic"]
SHOTS = {"sib200": 1, "topic": 0, "sib200_jav_topic": 2}

TOPIC_TOML = """\
name = "topic"
n_shot = 0
languages = ["jav_Latn"]
files = "sib200/{code}/{split}.tsv"
fewshot_split = "train"
id = "index_id"
template = "Text: {text}\\nTopic:"
choices = ["science/technology", "travel", "politics", "sports", "health", "entertainment", \
"geography"]
gold = "category"
metrics = ["acc", "macro_f1"]
"""

TOPIC_YAML = """\
task: sib200_jav_topic
dataset_path: json
dataset_kwargs:
  data_files:
    train: {data}/train.jsonl
    test: {data}/test.jsonl
training_split: train
test_split: test
fewshot_split: train
num_fewshot: 2
output_type: multiple_choice
doc_to_text: "Text: {{{{text}}}}\\nTopic:"
doc_to_choice: ["science/technology", "travel", "politics", "sports", "health", \
"entertainment", "geography"]
doc_to_target: category
metric_list:
  - metric: acc
metadata:
  version: 1.0
  kakugo_language: jav_Latn
"""

CONFIG = """\
[bench]
benchmarks = ["sib200", "tasks/topic.toml", "tasks/lm/sib200_jav_topic.yaml"]
n_shot = 1
batch_size = 8

[judge]
in_run = false
"""

#: kakugo run's bench stage, as the stage runs it (its plan, scored into a store)
RUN_STAGE = """\
import sys
from pathlib import Path
from kakugo_core.config import load_config
from kakugo_core.languages import resolve
from kakugo_core.run import bench_plan
from kakugo_core.scoring import score_plan
from kakugo_core.store import ResultsStore

config = load_config("eval.toml", ["bench.limit=7", "bench.limit_seed=5", "bench.data_dir='data'"])
plan = bench_plan(config, resolve("jav_Latn"), sys.argv[1:], Path("runstage/preds"), print)
with ResultsStore("runstage/results.sqlite") as store:
    score_plan(plan, store, progress=False)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "KAKUGO_LOAD_PLUGINS": "",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("RAY_ADDRESS", None)
    return {**env, **extra}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working folder: two tiny models, the task files, the data, the configuration."""
    from kakugo_core.testing import build_tiny_model, read_sib200_texts

    root = tmp_path_factory.mktemp("every-way")
    texts = read_sib200_texts(BUNDLED, ["eng_Latn", "jav_Latn"])
    for seed, rel in enumerate(MODELS):
        build_tiny_model(root / rel, texts, seed=seed)
    (root / "tasks" / "lm").mkdir(parents=True)
    (root / "tasks" / "topic.toml").write_text(TOPIC_TOML, "utf-8")
    shutil.copytree(BUNDLED / "jav_Latn", root / "tasks" / "sib200" / "jav_Latn")
    data = root / "tasks" / "lm" / "sib200_jav"
    shutil.copytree(FIXTURE / "sib200_jav", data)
    (root / "tasks" / "lm" / "sib200_jav_topic.yaml").write_text(
        TOPIC_YAML.format(data=data), "utf-8")
    shutil.copytree(BUNDLED / "jav_Latn", root / "data" / "sib200" / "jav_Latn")
    (root / "eval.toml").write_text(CONFIG, "utf-8")
    return root


def _bench(work: Path, out: str, *extra: str, env: dict[str, str] | None = None,
           ) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "kakugo_core", "bench", "--config", "eval.toml",
           "-l", "jav_Latn", "--limit", "7", "--limit-seed", "5", "--data-dir", "data",
           "--db", f"{out}/results.sqlite", "--predictions-dir", f"{out}/preds",
           "--no-progress", *extra]
    for model in MODELS:
        cmd += ["-m", model]
    proc = subprocess.run(cmd, cwd=work, env=env or _env(), capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _rows(db: Path) -> dict[tuple, tuple]:
    with ResultsStore(db, readonly=True) as store:
        return {(r.model, r.revision, r.benchmark, r.language, r.n_shot, r.prompt_hash,
                 r.metric, r.engine): (r.value, r.stderr, r.n, r.versions)
                for r in store.rows()}


def _predictions(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.jsonl"))}


def _ray_head(folder: Path, temp: str) -> tuple[subprocess.Popen[str] | None, str, str]:
    """``ray start --head --block`` in ``folder`` (not the working folder): the process (ending
    it stops this cluster and no other), its Ray Client address, or None and Ray's own words
    when it did not start (Ray gives its agents 15-30 s: a loaded machine can miss that)."""
    folder.mkdir()
    client = _free_port()
    ray = Path(sys.executable).with_name("ray")
    # its own temporary folder ``temp`` (short: Ray's socket paths must fit 107 bytes), so the
    # `ray_current_cluster` file it writes cannot send a later `ray.init()` to this cluster
    cmd = [str(ray) if ray.exists() else "ray", "start", "--head", "--block",
           f"--temp-dir={temp}", "--node-ip-address=127.0.0.1", f"--port={_free_port()}",
           f"--ray-client-server-port={client}", "--num-cpus=1", "--include-dashboard=false",
           "--disable-usage-stats"]
    head = subprocess.Popen(cmd, cwd=folder, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and head.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", client)) == 0:
                return head, f"ray://127.0.0.1:{client}", ""
        time.sleep(1)
    head.terminate()
    out = head.communicate(timeout=120)[0]
    return None, "", (out.strip().splitlines() or ["did not start in 300 s"])[-1]


@pytest.mark.slow
def test_one_plan_gives_the_same_rows_every_way(work: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    pytest.importorskip("grpc", reason="Ray Client (ray://) needs kakugo[ray], ray[client]")
    _bench(work, "local")
    local = _rows(work / "local" / "results.sqlite")
    # what was planned: every benchmark on its own shots, 7 items each, the seed-5 sample
    assert {(k[2], k[4]) for k in local} == set(SHOTS.items())
    assert {v[2] for v in local.values()} == {7}
    assert {k[0] for k in local} == set(MODELS)

    temp = tempfile.mkdtemp(prefix="kr", dir="/tmp")
    try:
        head, address, why = _ray_head(tmp_path / "ray-head", temp)
        if head is not None:
            try:
                _bench(work, "ray", "--executor", "ray", env=_env(RAY_ADDRESS=address))
            finally:
                head.terminate()
                head.communicate(timeout=120)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    sbatch = f"{sys.executable} {REPO / 'tests' / 'fixtures' / 'slurm' / 'sbatch'}"
    _bench(work, "slurm", "--executor", "slurm", env=_env(KAKUGO_SBATCH=sbatch))
    stage = subprocess.run([sys.executable, "-c", RUN_STAGE, *MODELS], cwd=work, env=_env(),
                           capture_output=True, text=True, timeout=1800)
    assert stage.returncode == 0, stage.stderr[-3000:]

    for way in ("ray", "slurm", "runstage") if address else ("slurm", "runstage"):
        assert _rows(work / way / "results.sqlite") == local, way
        assert _predictions(work / way / "preds") == _predictions(work / "local" / "preds"), way
    expected = {f"{model_slug(m)}/{b}/jav_Latn.jsonl" for m in MODELS for b in BENCHMARKS}
    assert set(_predictions(work / "local" / "preds")) == expected
    plan = json.loads((work / "slurm" / "results.sqlite.shards" / "plan.json").read_text())
    assert plan["plan"]["limit_seed"] == 5 and plan["plan"]["limit"] == 7
    assert all(Path(m["location"]).is_absolute() for m in plan["plan"]["models"])
    if not address:  # said, not hidden: the other three ways were compared above
        pytest.skip(f"the Ray way was not run: `ray start` failed on this machine ({why})")


def test_the_seed_and_the_task_files_reach_the_plan(work: Path, monkeypatch) -> None:
    """Without scoring: the plan holds the seed, the file shots and absolute paths, survives a
    JSON round trip, and a task file changed after planning is refused on the worker side."""
    from kakugo_core.config import load_config
    from kakugo_core.errors import KakugoError
    from kakugo_core.evaluation import EvaluationPlan, build_plan
    from kakugo_core.scoring import plan_cells

    monkeypatch.chdir(work)
    config = load_config("eval.toml")
    plan = build_plan(config, models=MODELS, languages=["Javanese"], limit=7, limit_seed=5,
                      data_dir="data")
    again = EvaluationPlan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again == plan and again.digest() == plan.digest()
    cells = {c.benchmark.name: (c.n_shot, c.prompt_hash, c.n_items) for c in plan_cells(again)}
    assert {k: v[0] for k, v in cells.items()} == SHOTS
    assert {v[2] for v in cells.values()} == {7}
    seed0 = build_plan(config, models=MODELS, languages=["jav_Latn"], limit=7, limit_seed=0,
                       data_dir="data")
    other = {c.benchmark.name: c.prompt_hash for c in plan_cells(seed0)}
    assert all(other[name] != cells[name][1] for name in cells)  # the seed is in the hash
    assert plan.data_dir == str(work / "data")
    assert [m.location for m in plan.models] == [str(work / m) for m in MODELS]

    toml = work / "tasks" / "topic.toml"
    original = toml.read_text("utf-8")
    try:
        toml.write_text(original.replace("n_shot = 0", "n_shot = 1"), "utf-8")
        fresh = EvaluationPlan.from_json(plan.to_json())
        with pytest.raises(KakugoError, match="changed since the evaluation was planned"):
            fresh.benchmark_objects()
    finally:
        toml.write_text(original, "utf-8")
