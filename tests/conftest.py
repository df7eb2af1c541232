"""Shared fixtures: no network, no stray plugins, and a tiny offline model per session."""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

# Before anything imports huggingface_hub: never reach the network, never load whatever plugins
# happen to be installed in the test environment.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["KAKUGO_LOAD_PLUGINS"] = ""
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent

#: call plumbing between a library's deprecated API and its caller (``nn.Module.__call__``)
_PLUMBING = {"torch"}
_OURS = re.compile(r"(kakugo_core|plugins|benchmarks|releases)(\..*)?$")


def _package(frame: Any) -> str:
    return str(frame.f_globals.get("__name__", "")).split(".")[0]


def _attributing(original: Any) -> Any:
    """``warnings.warn`` that attributes a library's DeprecationWarning / FutureWarning to the
    code that called the deprecated API (transformers warns from inside its own wrappers):
    the first frame outside the warning library and torch's call plumbing. When that is our
    code, pyproject's ``filterwarnings`` makes it an error; when it is another library (peft
    using a deprecated transformers API), it stays that library's warning."""

    def warn(message: Any, category: Any = None, stacklevel: int = 1, *args: Any,
             **kwargs: Any) -> None:
        cat = category or (type(message) if isinstance(message, Warning) else UserWarning)
        level = stacklevel
        if isinstance(cat, type) and issubclass(cat, (DeprecationWarning, FutureWarning)):
            try:
                frame = sys._getframe(level)
                origin = _package(frame)
                while frame is not None and (_package(frame) in _PLUMBING or
                                             _package(frame) == origin):
                    frame, level = frame.f_back, level + 1
                if frame is None or not _OURS.match(str(frame.f_globals.get("__name__", ""))):
                    level = stacklevel
            except ValueError:
                level = stacklevel
        original(message, category, level + 1, *args, **kwargs)

    warn.__wrapped__ = original  # type: ignore[attr-defined]
    return warn


warnings.warn = _attributing(warnings.warn)
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


@pytest.fixture(scope="session")
def gemma_model() -> Path:
    """Gemma 3 270M (a real pretrained multilingual model with 512-token sliding-window layers)
    as a transformers folder, converted once from the GGUF that the ``real-models`` extra
    installs (see ``tests/real_models.py``). Skips with the reason when it cannot be had, and
    fails instead under CI=true, where the extra is installed."""
    import real_models

    try:
        return real_models.gemma_folder()
    except real_models.Unavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"real model unavailable in CI: {exc}")
        pytest.skip(f"real model unavailable: {exc}")


@pytest.fixture
def db(tmp_path: Path, tiny_model: Path) -> Path:
    """A results store in which the tiny model and ``tiny/base`` have SIB-200 jav_Latn scores
    (what a release needs to build its card)."""
    from kakugo_core.store import ResultsStore

    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        store.put(str(tiny_model), "", "sib200", "jav_Latn", 3, "p", [("acc", 0.4, 0.03, 204)])
        store.put("tiny/base", "", "sib200", "jav_Latn", 3, "p", [("acc", 0.3, 0.03, 204)])
    return path
