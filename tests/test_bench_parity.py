"""Parity with lm-eval 0.4.x on real items (SIB-200, and Belebele-format items built from real
FLORES sentences): identical per-item log-likelihoods, predictions and accuracy.

Two independent routes into lm-eval: (1) Kakugo's requests as lm-eval ``Instance`` objects fed to
``lm_eval.models.huggingface.HFLM`` (the ``lm-eval`` backend), and (2) the benchmark exported as
an lm-eval task (YAML + JSONL) and run by ``lm_eval.simple_evaluate`` itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kakugo_core.languages import resolve
from kakugo_core.plugins import create

pytestmark = pytest.mark.slow
N_ITEMS = 30
FIXTURES = Path(__file__).parent / "fixtures"
#: (benchmark, language, extra options); the untrained tiny model always picks the one-token
#: SIB-200 label, so Belebele (one-token choices A-D) is where its predictions vary
CASES = [("sib200", "jav_Latn", {}), ("belebele", "jav_Latn", {"data_dir": str(FIXTURES)})]


@pytest.fixture(scope="module")
def backends(tiny_model):
    ours = create("backends", "transformers", str(tiny_model), batch_size=8)
    theirs = create("backends", "lm-eval", str(tiny_model), batch_size=8)
    yield ours, theirs
    ours.close()
    theirs.close()


@pytest.mark.parametrize("n_shot", [0, 3])
@pytest.mark.parametrize(("benchmark", "language", "extra"), CASES)
def test_predictions_equal_lm_eval_hflm(backends, benchmark, language, extra, n_shot):
    ours, theirs = backends
    bench = create("benchmarks", benchmark)
    options = {"n_shot": n_shot, "limit": N_ITEMS, **extra}
    a = bench.evaluate(ours, resolve(language), options)
    b = bench.evaluate(theirs, resolve(language), options)
    assert len(a.predictions) == min(N_ITEMS, 14 if benchmark == "belebele" else N_ITEMS)
    if benchmark == "belebele":
        assert len({p["pred"] for p in a.predictions}) > 1  # not a constant answer
    assert [p["pred"] for p in a.predictions] == [p["pred"] for p in b.predictions]
    for pa, pb in zip(a.predictions, b.predictions, strict=True):
        assert pa["logprobs"] == pytest.approx(pb["logprobs"], abs=1e-4)
    assert a.scores[0].value == b.scores[0].value


@pytest.mark.parametrize(("benchmark", "language", "extra", "n_shot"), [(*CASES[1], 3)])
def test_exported_task_run_by_lm_eval_gives_the_same_predictions(
    backends, tmp_path, benchmark, language, extra, n_shot
):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from kakugo_core.lm_eval_tasks import export_task

    ours, theirs = backends
    bench = create("benchmarks", benchmark)
    options = {"n_shot": n_shot, "limit": N_ITEMS, **extra}
    yaml_path = export_task(bench, resolve(language), tmp_path, options)
    task_name = yaml_path.stem
    out = lm_eval.simple_evaluate(
        model=theirs.lm, tasks=[task_name], task_manager=TaskManager(include_path=str(tmp_path)),
        log_samples=True, verbosity="ERROR",
    )
    samples = sorted(out["samples"][task_name], key=lambda s: s["doc_id"])
    theirs_pred = [max(range(len(s["filtered_resps"])), key=lambda k: s["filtered_resps"][k][0])
                   for s in samples]
    mine = bench.evaluate(ours, resolve(language), options)
    assert [p["pred"] for p in mine.predictions] == theirs_pred
    assert out["results"][task_name]["acc,none"] == pytest.approx(mine.scores[0].value)
    docs = [json.loads(line) for line in
            (tmp_path / f"{task_name}.jsonl").read_text("utf-8").splitlines()]
    assert [d["query"] for d in docs] == [s["doc"]["query"] for s in samples]
