"""`kakugo bench -m` on a GGUF file (Gemma 3 270M Q4_K_M from PyPI): scored through
transformers' GGUF loading, the quantization type and the file's content hash stored with the
result, the type shown on the leaderboard; log-likelihoods equal to the converted folder's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kakugo_core.cli import cli

pytestmark = pytest.mark.slow


def test_gguf_file_is_found_and_its_type_read(gemma_model):
    from plugins.backends._gguf import file_revision, find_gguf, quant_type

    gguf = next(gemma_model.parent.glob("*.gguf"))
    assert find_gguf(gguf) == gguf
    assert find_gguf(gemma_model) is None  # a transformers folder is not a GGUF model
    assert quant_type(gguf) == "Q4_K_M"
    assert file_revision(gguf).startswith("sha256:a5fd3b62230aa5ec")  # the package's sha256


def test_find_gguf_refuses_an_ambiguous_folder(tmp_path):
    from kakugo_core.errors import KakugoError
    from plugins.backends._gguf import find_gguf

    for name in ("a.gguf", "b.gguf"):
        (tmp_path / name).write_bytes(b"GGUF")
    with pytest.raises(KakugoError, match="several GGUF files"):
        find_gguf(tmp_path)


def _predictions(folder: Path) -> list[dict]:
    (path,) = folder.rglob("*.jsonl")
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_bench_scores_a_folder_holding_a_gguf(gemma_model, tmp_path):
    from kakugo_core.store import ResultsStore

    gguf = next(gemma_model.parent.glob("*.gguf"))
    holder = tmp_path / "gemma-gguf"
    holder.mkdir()
    (holder / gguf.name).symlink_to(gguf)
    db = tmp_path / "r.sqlite"
    common = ["-b", "sib200", "-l", "jav_Latn", "--limit", "4", "--n-shot", "0",
              "--db", str(db)]
    for model, preds in ((holder, "p-gguf"), (gemma_model, "p-folder")):
        result = CliRunner().invoke(cli, ["bench", "-m", str(model), *common,
                                          "--predictions-dir", str(tmp_path / preds)])
        assert result.exit_code == 0, result.output
    rows = {r.model: r for r in ResultsStore(db).rows()}
    stored = rows[str(holder)]
    assert stored.versions["gguf_quant"] == "Q4_K_M"
    assert stored.revision.startswith("sha256:a5fd3b62230aa5ec")
    assert "gguf_quant" not in rows[str(gemma_model)].versions
    a, b = _predictions(tmp_path / "p-gguf"), _predictions(tmp_path / "p-folder")
    assert [p["pred"] for p in a] == [p["pred"] for p in b]
    for pa, pb in zip(a, b, strict=True):
        assert pa["logprobs"] == pytest.approx(pb["logprobs"], abs=1e-4)
    board = CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--format", "markdown"])
    assert board.exit_code == 0, board.output
    assert f"{holder} [Q4_K_M]" in board.output.replace("\\", "")
