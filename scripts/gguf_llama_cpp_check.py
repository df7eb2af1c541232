"""Do the GGUF files a release ships load and run in llama.cpp itself, as they do in transformers?

Exports the tiny test Llama and Gemma 3 270M (the test suite's cached conversion; ``pip install
-e ".[real-models]"``) to F16 and Q8_0 with ``kakugo_core.toolkit.gguf_export`` (what
``kakugo release`` writes), scores Javanese SIB-200 sentences, odd whitespace, Javanese script,
emoji and a chat-template prompt with transformers on the safetensors weights, then loads each
GGUF in llama.cpp (through its Python binding, llama-cpp-python) and compares token ids, per-token
log-probabilities and the next-token argmax. Prints a Markdown table and writes
``<work>/llama_cpp_check.json``.

llama-cpp-python is built from source (PyPI has no Linux wheel): 12-14 minutes on 2 cores,
in its own virtual environment, once.

    python scripts/gguf_llama_cpp_check.py [--work /tmp/kakugo-llama-cpp] [--llama-python PY]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
TYPES = ("F16", "Q8_0")
EXTRA_TEXTS = ["Halo,  donya!\n\nIki  tes.", "ꦲꦏ꧀ꦱꦫꦗꦮ aksara Jawa", "emoji 🙂 ok",
               "  leading spaces and\ttabs"]

#: runs under the llama-cpp-python interpreter: reads the reference, writes what llama.cpp gives
LLAMA_SIDE = r'''
import json, os, sys
import numpy as np
import llama_cpp
from llama_cpp import Llama

ref = json.load(open(sys.argv[1]))
out = {"llama_cpp_python": llama_cpp.__version__, "files": {}}
for name, entry in ref.items():
    for qtype, path in entry["files"].items():
        llm = Llama(model_path=path, n_ctx=2048, n_batch=2048, logits_all=True, verbose=False,
                    n_threads=os.cpu_count() or 1)
        rows = []
        for item in entry["items"]:
            ids = llm.tokenize(item["text"].encode(), add_bos=not item["chat"], special=True)
            llm.reset()
            llm.eval(item["ids"])  # the reference ids, so that positions line up
            logits = np.array(llm.scores[: len(item["ids"])], dtype=np.float64)
            logits -= logits.max(-1, keepdims=True)
            logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
            nxt = item["ids"][1:]
            rows.append({"ids": ids,
                         "logprobs": [float(logp[i, t]) for i, t in enumerate(nxt)],
                         "argmax": [int(a) for a in logp.argmax(-1)]})
        out["files"][f"{name}/{qtype}"] = {
            "rows": rows, "chat_template": bool(llm.metadata.get("tokenizer.chat_template"))}
        del llm
json.dump(out, open(sys.argv[2], "w"))
'''


def llama_python(work: Path) -> Path:
    """An interpreter with llama-cpp-python, built once into ``work/llama-venv``."""
    env_dir = work / "llama-venv"
    python = env_dir / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import llama_cpp"],
                                          capture_output=True).returncode == 0:
        return python
    print(f"building {LLAMA_CPP_PYTHON} into {env_dir} (12-14 minutes on 2 cores)",
          flush=True)
    venv.create(env_dir, with_pip=True)
    env = {**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 1),
           "CMAKE_ARGS": "-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF "
                         "-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF"}
    subprocess.run([str(python), "-m", "pip", "install", "-q", LLAMA_CPP_PYTHON, "numpy"],
                   check=True, env=env)
    return python


def models(work: Path) -> dict[str, tuple[Path, Path | None]]:
    """name -> (transformers folder, the GGUF it was converted from, if any)."""
    from kakugo_core.testing import build_tiny_model, read_sib200_texts

    tiny = work / "tiny"
    if not (tiny / "config.json").exists():
        texts = read_sib200_texts(ROOT / "kakugo_core" / "data" / "sib200",
                                  ["eng_Latn", "jav_Latn"])
        build_tiny_model(tiny, texts)
    sys.path.insert(0, str(ROOT / "tests"))
    from real_models import Unavailable, gemma_folder, gemma_gguf

    try:
        return {"tiny-llama": (tiny, None), "gemma-3-270m": (gemma_folder(), gemma_gguf())}
    except Unavailable as exc:
        print(f"Gemma 3 270M unavailable ({exc}); checking the tiny Llama only", flush=True)
        return {"tiny-llama": (tiny, None)}


def reference(work: Path, n_sentences: int) -> dict:
    """Token ids, per-token log-probs and argmaxes from transformers, and the GGUF exports."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kakugo_core.testing import read_sib200_texts
    from kakugo_core.toolkit.gguf_export import export_gguf

    jav = read_sib200_texts(ROOT / "kakugo_core" / "data" / "sib200", ["jav_Latn"])
    texts = jav[:n_sentences] + EXTRA_TEXTS
    out = {}
    for name, (folder, source) in models(work).items():
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        chat = tokenizer.apply_chat_template(
            [{"role": "user", "content": "Sugeng enjing, kepiye kabare?"}], tokenize=False,
            add_generation_prompt=True)
        items = []
        for text in [*texts, chat]:
            is_chat = text is chat
            ids = tokenizer(text, add_special_tokens=not is_chat).input_ids
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
            items.append({"text": text, "chat": is_chat, "ids": ids,
                          "logprobs": [logp[i, t].item() for i, t in enumerate(ids[1:])],
                          "argmax": logp.argmax(-1).tolist()})
        files = {}
        for qtype in TYPES:
            path = work / f"{name}-{qtype}.gguf"
            if not path.exists():
                export_gguf(folder, path, qtype)
            files[qtype] = str(path)
        if source is not None:
            # the file the folder was dequantized from: the same weights, so what llama.cpp's
            # own arithmetic (8-bit activations in quantized matmuls) changes, export aside
            files[f"{source.name} (source, not an export)"] = str(source)
        out[name] = {"items": items, "files": files}
        print(f"reference: {name}, {len(items)} texts", flush=True)
    return out


def compare(ref: dict, got: dict) -> list[dict]:
    rows = []
    for name, entry in ref.items():
        for qtype in entry["files"]:
            found = got["files"][f"{name}/{qtype}"]
            pairs = list(zip(entry["items"], found["rows"], strict=True))
            deltas = [abs(a - b) for r, g in pairs
                      for a, b in zip(r["logprobs"], g["logprobs"], strict=True)]
            top = [a == b for r, g in pairs for a, b in zip(r["argmax"], g["argmax"], strict=True)]
            rows.append({"model": name, "type": qtype,
                         "tokenization": f"{sum(r['ids'] == g['ids'] for r, g in pairs)}"
                                         f"/{len(pairs)}",
                         "tokens": len(deltas), "max_abs_dlogp": max(deltas),
                         "mean_abs_dlogp": sum(deltas) / len(deltas),
                         "argmax_agree": sum(top) / len(top),
                         "chat_template": found["chat_template"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/kakugo-llama-cpp"))
    parser.add_argument("--llama-python", type=Path,
                        help="a Python that has llama-cpp-python (default: build one in WORK)")
    parser.add_argument("--sentences", type=int, default=20,
                        help="Javanese SIB-200 sentences to score (default 20)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    python = args.llama_python or llama_python(args.work)
    ref = reference(args.work, args.sentences)
    (args.work / "reference.json").write_text(json.dumps(ref))
    side = args.work / "llama_side.py"
    side.write_text(LLAMA_SIDE)
    got_path = args.work / "llama_cpp.json"
    subprocess.run([str(python), str(side), str(args.work / "reference.json"), str(got_path)],
                   check=True)
    got = json.loads(got_path.read_text())
    rows = compare(ref, got)
    (args.work / "llama_cpp_check.json").write_text(json.dumps(
        {"llama_cpp_python": got["llama_cpp_python"], "rows": rows}, indent=1) + "\n")
    print(f"\nllama-cpp-python {got['llama_cpp_python']} against transformers "
          "(safetensors weights, float32)\n")
    print("| model | type | tokenization equal | tokens | max \\|Δ log p\\| | mean \\|Δ log p\\| "
          "| next-token argmax equal | chat template |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['model']} | {r['type']} | {r['tokenization']} | {r['tokens']} | "
              f"{r['max_abs_dlogp']:.2g} | {r['mean_abs_dlogp']:.2g} | "
              f"{100 * r['argmax_agree']:.1f} % | {'read' if r['chat_template'] else 'missing'} |")


if __name__ == "__main__":
    main()
