#!/usr/bin/env bash
# One Kakugo run per language as a SLURM job array, generation pointed at a shared vLLM server.
#
#   LANGUAGES="jav_Latn sun_Latn yor_Latn" TEACHER_URL=http://gpu-node-1:8000/v1 \
#     sbatch --array=0-2 scripts/fanout/slurm_array.sh
#
# Each array task picks the language at index $SLURM_ARRAY_TASK_ID, runs `kakugo run` in its own
# run folder under $RUNS_DIR (resumable: a re-queued task skips finished stages), and trains
# through `accelerate launch` when ACCELERATE_CONFIG is set (see configs/accelerate/).
#SBATCH --job-name=kakugo
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00
#SBATCH --output=kakugo-%A_%a.log
set -euo pipefail

read -r -a langs <<<"${LANGUAGES:?set LANGUAGES to a space-separated list of languages}"
index="${SLURM_ARRAY_TASK_ID:?run this under sbatch --array}"
if [ "$index" -ge "${#langs[@]}" ]; then
  echo "array index $index is past the ${#langs[@]} languages in LANGUAGES" >&2
  exit 2
fi
lang="${langs[$index]}"
runs="${RUNS_DIR:-runs}"
args=(run "$lang" --run-dir "$runs/$lang")
[ -n "${KAKUGO_CONFIG:-}" ] && args+=(--config "$KAKUGO_CONFIG")
[ -n "${TEACHER_URL:-}" ] && args+=(--set "teacher.base_url='$TEACHER_URL'")
[ -n "${ACCELERATE_CONFIG:-}" ] && args+=(--set "train.accelerate_config='$ACCELERATE_CONFIG'")
exec ${KAKUGO:-kakugo} "${args[@]}"
