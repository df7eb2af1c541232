"""Building the configured teacher, and keeping the teacher plugins cheap to register."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kakugo_core.config import load_config
from kakugo_core.errors import ConfigError, KakugoError, UnknownPluginError
from kakugo_core.plugins import registry
from kakugo_core.teacher_server import OpenAICompatServer
from kakugo_core.teachers import iter_complete, make_teacher, teacher_options


def test_teacher_plugins_are_registered_with_aliases() -> None:
    teachers = registry("teachers")
    assert {"openai", "transformers"} <= set(teachers.names())
    assert teachers.get("vllm-server").name == "openai"
    assert teachers.get("local").name == "transformers"


def test_make_teacher_takes_options_from_the_teacher_section(tmp_path: Path) -> None:
    config = load_config(overrides=["teacher.concurrency=5", "teacher.model=my-model",
                                    "teacher.price_output_per_mtok=0.6"])
    teacher = make_teacher(config)
    assert type(teacher).__name__ == "OpenAITeacher"
    assert (teacher.model, teacher.concurrency, teacher.price_output_per_mtok) == (
        "my-model", 5, 0.6)
    assert teacher.base_url == "http://127.0.0.1:8000/v1"
    plugin, options = teacher_options(config)
    assert plugin == "openai" and "plugin" not in options and "cache_dir" not in options


def test_make_teacher_end_to_end_with_cache(tmp_path: Path) -> None:
    from kakugo_core.interfaces import TeacherRequest

    with OpenAICompatServer() as server:
        config = load_config(overrides=[f"teacher.base_url={server.base_url}"])
        teacher = make_teacher(config, tmp_path / "cache.jsonl")
        request = TeacherRequest.chat([{"role": "user", "content": "hi"}])
        assert [(i, r.content) for i, r in iter_complete(teacher, [request])] == [(0, "echo: hi")]
    assert (tmp_path / "cache.jsonl").read_text().count("\n") == 1


def test_unknown_teacher_and_bad_settings_are_clear_errors() -> None:
    with pytest.raises(UnknownPluginError, match="unknown teacher 'opnai'.*openai"):
        make_teacher(load_config(overrides=["teacher.plugin=opnai"]))
    with pytest.raises(ConfigError, match="teacher.concurency"):
        load_config(overrides=["teacher.concurency=4"])
    with pytest.raises(KakugoError, match="'teacher.concurrency' must be >= 1"):
        make_teacher(load_config(overrides=["teacher.concurrency=0"]))
    with pytest.raises(KakugoError, match="teacher.plugin"):
        make_teacher({"teacher": {"plugin": ""}})


def test_registering_teachers_imports_no_heavy_library() -> None:
    code = (
        "import sys; import plugins.teachers.openai_teacher, "
        "plugins.teachers.transformers_teacher, "
        "kakugo_core.teachers, kakugo_core.teacher_cache, kakugo_core.teacher_server;"
        "heavy = {'torch', 'transformers', 'httpx2', 'httpx', 'huggingface_hub', 'datasets'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
