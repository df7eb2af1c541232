"""One Kakugo run per language as Ray tasks, each on a GPU worker of an existing Ray cluster.

    pip install "ray[default]"
    python scripts/fanout/ray_fanout.py --languages jav_Latn,sun_Latn \
        --teacher-url http://vllm-head:8000/v1 --runs-dir /shared/runs

Every task calls the ordinary `kakugo run` command in its own run folder, so a failed or
re-submitted task resumes where it stopped. Generation goes to the shared vLLM server
(`vllm serve openai/gpt-oss-120b --tensor-parallel-size 8`), training stays on the task's GPU.
Exits non-zero when a language failed. Without RAY_ADDRESS, a local Ray cluster is started.
(To score many models on many languages, use `kakugo bench --executor ray` instead.)
"""

from __future__ import annotations

import argparse
import subprocess


def command(language: str, runs_dir: str, teacher_url: str | None, config: str | None,
            kakugo: str = "kakugo") -> list[str]:
    """The `kakugo run` command line of one language."""
    args = [kakugo, "run", language, "--run-dir", f"{runs_dir}/{language}"]
    if config:
        args += ["--config", config]
    if teacher_url:
        args += ["--set", f"teacher.base_url='{teacher_url}'"]
    return args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", required=True, help="comma-separated languages")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--teacher-url")
    parser.add_argument("--config")
    parser.add_argument("--gpus-per-task", type=float, default=1.0)
    parser.add_argument("--kakugo", default="kakugo", help="the kakugo executable")
    args = parser.parse_args()

    import ray  # an existing cluster: `ray start --head` / RAY_ADDRESS

    ray.init()

    @ray.remote(num_gpus=args.gpus_per_task)
    def run_one(language: str) -> tuple[str, int]:
        cmd = command(language, args.runs_dir, args.teacher_url, args.config, args.kakugo)
        return language, subprocess.run(cmd).returncode

    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    failed = 0
    for language, code in ray.get([run_one.remote(lang) for lang in languages]):
        print(f"{language}: {'ok' if code == 0 else f'failed ({code})'}")
        failed += code != 0
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
