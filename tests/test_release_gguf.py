"""GGUF exports in releases: written with the `gguf` library, loaded back through transformers'
GGUF loader, tokenized and scored like the safetensors weights; the card's llama.cpp / Ollama
usage; `--gguf` choices and bad input. The Gemma 3 270M round trip is at the end (slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_runner import run_cli as _cli

from kakugo_core.store import ResultsStore
from kakugo_core.toolkit.gguf_export import export_gguf

REPO = Path(__file__).resolve().parent.parent
SIB200_JAV = REPO / "kakugo_core" / "data" / "sib200" / "jav_Latn" / "test.tsv"
#: largest |log p| difference per token against the safetensors weights (tiny Llama, measured
#: 0, 3.2e-4 and 7.2e-3), with room for other BLAS builds
TINY_TOLERANCE = {"F32": 1e-5, "F16": 3e-3, "Q8_0": 5e-2}


def _texts(n: int = 6) -> list[str]:
    rows = SIB200_JAV.read_text("utf-8").splitlines()[1:n + 1]
    return [row.split("\t")[2] for row in rows] + ["Hello  world,\n\nTopic: science/technology"]


@pytest.mark.parametrize("gguf_type", ["F32", "F16", "Q8_0"])
def test_tiny_llama_round_trips(tiny_model: Path, tmp_path: Path, gguf_type: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from plugins.backends._gguf import quant_type

    path = export_gguf(tiny_model, tmp_path / f"tiny-{gguf_type}.gguf", gguf_type)
    assert quant_type(path) == gguf_type
    assert not list(tmp_path.glob("*.partial"))
    tok0 = AutoTokenizer.from_pretrained(tiny_model)
    tok1 = AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
    model0 = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    model1 = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name,
                                                  dtype=torch.float32)
    assert tok1.chat_template == tok0.chat_template
    for text in _texts():
        ids = tok0(text)["input_ids"]
        assert tok1(text)["input_ids"] == ids
        batch = torch.tensor([ids])
        with torch.no_grad():
            a = torch.log_softmax(model0(batch).logits, -1)
            b = torch.log_softmax(model1(batch).logits, -1)
        assert (a - b).abs().max().item() <= TINY_TOLERANCE[gguf_type]


def _release(model: Path, db: Path, out: Path, *extra: str) -> int:
    return _cli("release", "--model", str(model), "--base", "tiny/base", "-l", "jav",
                "--db", str(db), "--out", str(out), "--repo-id", "me/kakugo-tiny-jav", *extra)


def test_release_ships_f16_and_q8_0_with_usage_in_the_card(
    tiny_model: Path, db: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from huggingface_hub import ModelCard

    from plugins.backends._gguf import quant_type

    out = tmp_path / "out"
    assert _release(tiny_model, db, out) == 0
    files = sorted(p.name for p in out.glob("*.gguf"))
    assert files == ["kakugo-tiny-jav-F16.gguf", "kakugo-tiny-jav-Q8_0.gguf"]
    assert [quant_type(out / f) for f in files] == ["F16", "Q8_0"]
    card = ModelCard.load(out / "README.md")
    assert "gguf" in card.data.tags
    assert "ollama run hf.co/me/kakugo-tiny-jav:Q8_0" in card.text
    assert "llama-cli -hf me/kakugo-tiny-jav:Q8_0" in card.text
    for name in files:
        assert f"[`{name}`]({name})" in card.text
    capfd.readouterr()
    # the release folder's GGUF scores through `kakugo bench` like the safetensors weights
    preds = {}
    for model in (tiny_model, out / "kakugo-tiny-jav-F16.gguf"):
        folder = tmp_path / f"p-{model.name}"
        assert _cli("bench", "-m", str(model), "-b", "sib200", "-l", "jav_Latn", "--limit",
                    "14", "--n-shot", "0", "--db", str(tmp_path / "bench.sqlite"),
                    "--predictions-dir", str(folder), "--no-progress") == 0
        (found,) = folder.rglob("*.jsonl")
        preds[model] = [json.loads(line) for line in found.read_text("utf-8").splitlines()]
    a, b = preds.values()
    assert [p["pred"] for p in a] == [p["pred"] for p in b]
    for pa, pb in zip(a, b, strict=True):
        assert pa["logprobs"] == pytest.approx(pb["logprobs"], abs=1e-2)
    capfd.readouterr()


def test_gguf_none_and_bad_types(
    tiny_model: Path, db: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "none"
    assert _release(tiny_model, db, out, "--gguf", "none") == 0
    assert not list(out.glob("*.gguf"))
    assert "ollama" not in (out / "README.md").read_text("utf-8")
    capfd.readouterr()
    bad = tmp_path / "bad"
    assert _release(tiny_model, db, bad, "--gguf", "F16,Q4_K") != 0
    err = capfd.readouterr().err.strip()
    assert "unknown GGUF type 'Q4_K'" in err and len(err.splitlines()) == 1
    assert not bad.exists()
    assert _release(tiny_model, db, bad, "--set", "release.gguf=['Q2']") != 0
    err = capfd.readouterr().err.strip()
    assert "release.gguf" in err and len(err.splitlines()) == 1
    assert not bad.exists()


def test_an_architecture_without_a_converter(
    tiny_model: Path, db: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    # `kakugo` CLI runs earlier in the session stop this logger from propagating to caplog
    monkeypatch.setattr(logging.getLogger("kakugo"), "propagate", True)
    model = tmp_path / "other-arch"
    shutil.copytree(tiny_model, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "model_type": "mpt"}))
    with ResultsStore(db) as store:
        store.put(str(model), "", "sib200", "jav_Latn", 3, "p", [("acc", 0.4, 0.03, 204)])
    # the configured default: released without GGUF files, with a warning that says why
    out = tmp_path / "out"
    assert _release(model, db, out) == 0
    assert not list(out.glob("*.gguf")) and (out / "model.safetensors").is_file()
    assert "no GGUF files in this release" in caplog.text
    capfd.readouterr()
    # asked for by name: an error before anything is written
    refused = tmp_path / "refused"
    assert _release(model, db, refused, "--gguf", "F16") != 0
    err = capfd.readouterr().err.strip()
    assert "GGUF export supports gemma3, gemma3_text, llama models, not 'mpt'" in err
    assert not refused.exists()


# -- a real model: Gemma 3 270M -------------------------------------------------------------
#: Gemma 3 270M, SIB-200 jav_Latn, 40 items 3-shot, choice log-likelihoods against the
#: safetensors weights: measured F16 max |Δ| 0.0051 and Q8_0 0.153, every prediction the same
#: (docs/releases.md); the bounds leave room for other CPUs' sums. The test scores a seeded
#: sample of 20 items, all seven topics (7 choices after 3 shots: 140 log-likelihoods a model).
GEMMA_F16_LOGPROB_TOLERANCE = 0.02
GEMMA_Q8_0_LOGPROB_TOLERANCE = 0.5
GEMMA_Q8_0_MIN_AGREEMENT = 0.95


@pytest.mark.slow
def test_gemma_exports_score_like_the_safetensors_weights(gemma_model: Path,
                                                           tmp_path: Path) -> None:
    from click.testing import CliRunner
    from transformers import AutoTokenizer

    from kakugo_core.cli import cli

    exports = tmp_path / "gguf"
    paths = [export_gguf(gemma_model, exports / f"gemma-{t}.gguf", t) for t in ("F16", "Q8_0")]
    tok0 = AutoTokenizer.from_pretrained(gemma_model)
    tok1 = AutoTokenizer.from_pretrained(exports, gguf_file=paths[0].name)
    texts = _texts(30) + ["  leading spaces,   runs\n\n<start_of_turn>user\nhi", "ꦲꦏ꧀ꦱꦫ 😀"]
    assert [tok1(t)["input_ids"] for t in texts] == [tok0(t)["input_ids"] for t in texts]
    assert tok1.chat_template == tok0.chat_template
    preds = {}
    for model in (gemma_model, *paths):
        folder = tmp_path / f"p-{model.name}"
        result = CliRunner().invoke(cli, [
            "bench", "-m", str(model), "-b", "sib200", "-l", "jav_Latn", "--limit", "20",
            "--n-shot", "3", "--db", str(tmp_path / "r.sqlite"), "--predictions-dir",
            str(folder), "--no-progress"])
        assert result.exit_code == 0, result.output
        (found,) = folder.rglob("*.jsonl")
        preds[model.name] = [json.loads(line) for line in found.read_text("utf-8").splitlines()]
    base, f16, q8 = (preds[k] for k in (gemma_model.name, "gemma-F16.gguf", "gemma-Q8_0.gguf"))
    assert [p["pred"] for p in f16] == [p["pred"] for p in base]
    worst = max(abs(x - y) for pa, pb in zip(base, f16, strict=True)
                for x, y in zip(pa["logprobs"], pb["logprobs"], strict=True))
    assert worst <= GEMMA_F16_LOGPROB_TOLERANCE
    worst = max(abs(x - y) for pa, pb in zip(base, q8, strict=True)
                for x, y in zip(pa["logprobs"], pb["logprobs"], strict=True))
    assert worst <= GEMMA_Q8_0_LOGPROB_TOLERANCE
    agree = sum(a["pred"] == b["pred"] for a, b in zip(base, q8, strict=True)) / len(base)
    assert agree >= GEMMA_Q8_0_MIN_AGREEMENT
