"""Shared fixtures: no network, no stray plugins, and a tiny offline model per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before anything imports huggingface_hub: never reach the network, never load whatever plugins
# happen to be installed in the test environment.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["KAKUGO_LOAD_PLUGINS"] = ""
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
#: real SIB-200 samples bundled with the package (licence note in SOURCE.md beside them)
SIB200_DIR = REPO / "kakugo_core" / "data" / "sib200"


@pytest.fixture(autouse=True)
def _isolated_plugins(monkeypatch: pytest.MonkeyPatch):
    """Each test starts with a fresh plugin host and no third-party plugins."""
    from kakugo_core.plugins import reset_host

    monkeypatch.setenv("KAKUGO_LOAD_PLUGINS", "")
    monkeypatch.delenv("KAKUGO_STRICT_PLUGINS", raising=False)
    reset_host()
    yield
    reset_host()


@pytest.fixture(scope="session")
def sib200_dir() -> Path:
    return SIB200_DIR


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-layer Llama (head_dim 32) with a BPE tokenizer trained on English and Javanese
    SIB-200 sentences; built once per session."""
    from kakugo_core.testing import build_tiny_model, read_sib200_texts

    texts = read_sib200_texts(SIB200_DIR, ["eng_Latn", "jav_Latn"])
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), texts)


@pytest.fixture(scope="session")
def dataset_builder():
    """``tests/fixtures/kakugo_dataset/build.py``: Kakugo-contract datasets from real SIB-200
    sentences (``build_dataset(sib200_dir, out, n_train, n_validation)``, ``rows(...)``)."""
    import importlib.util

    path = REPO / "tests" / "fixtures" / "kakugo_dataset" / "build.py"
    spec = importlib.util.spec_from_file_location("kakugo_dataset_build", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
