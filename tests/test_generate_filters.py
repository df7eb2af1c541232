"""The generators' filters and helpers, checked directly: translation checks, input selection,
token counts, seeded choices, JSONL repair after a kill, prompt templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kakugo_core.errors import ConfigError, KakugoError
from kakugo_core.generation import prompt_templates, read_rows, render
from kakugo_core.jsonparse import JSONExtractionError
from plugins.generators._gen_common import count_tokens, truncate_tokens
from plugins.generators._gen_sources import corpus_texts, instruction_rows
from plugins.generators.improve_generator import chosen_for_improvement
from plugins.generators.responses_generator import prompts_to_answer
from plugins.generators.translate_generator import TranslationRejected, check_translation, eligible

FIXTURE = Path(__file__).parent / "fixtures" / "instructions" / "infinity_instruct_sample.jsonl"
SOURCE = [
    {"role": "user", "content": "Why is the sky blue?"},
    {"role": "assistant", "content": "Because air scatters blue light more than red light."},
]


def _answer(turns: list[dict[str, str]]) -> str:
    return "```json\n" + json.dumps(turns, ensure_ascii=False) + "\n```"


def test_a_good_translation_is_kept_with_roles_normalised() -> None:
    answer = _answer([
        {"from": "human", "value": "Kenging punapa langit biru?"},
        {"role": "assistant", "content": "Amargi hawa nyebaraké cahya biru langkung kathah."},
    ])
    turns = check_translation(answer, SOURCE, 0.75, 25.0)
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert turns[0]["content"] == "Kenging punapa langit biru?"


@pytest.mark.parametrize(
    ("turns", "reason"),
    [
        ([{"role": "user", "content": "Kenging punapa langit biru?"}], "turn_count"),
        (
            [
                {"role": "assistant", "content": "Kenging punapa langit biru?"},
                {"role": "user", "content": "Amargi hawa nyebaraké cahya biru langkung kathah."},
            ],
            "roles",
        ),
        (
            [
                {"role": "user", "content": "Kenging punapa langit biru?"},
                {"role": "assistant", "content": "Ya."},
            ],
            "token_ratio",
        ),
        (
            [
                {"role": "user", "content": "Kenging punapa langit biru? " * 40},
                {"role": "assistant", "content": "Amargi hawa nyebaraké cahya biru."},
            ],
            "token_ratio",
        ),
        (
            [
                {"role": "user", "content": "Kenging punapa langit \ufffd biru?"},
                {"role": "assistant", "content": "Amargi hawa nyebaraké cahya biru langkung."},
            ],
            "utf_error",
        ),
        (
            [
                {"role": "user", "content": "<image> Kenging punapa langit biru?"},
                {"role": "assistant", "content": "Amargi hawa nyebaraké cahya biru langkung."},
            ],
            "media_tag",
        ),
        (
            [
                {"role": "user", "content": "  "},
                {"role": "assistant", "content": "Amargi hawa nyebaraké cahya biru langkung."},
            ],
            "empty_turn",
        ),
    ],
)
def test_bad_translations_are_rejected_by_reason(turns: list[dict[str, str]], reason: str) -> None:
    with pytest.raises(TranslationRejected) as info:
        check_translation(_answer(turns), SOURCE, 0.75, 25.0)
    assert info.value.reason == reason


def test_unparseable_translations_are_json_rejects() -> None:
    with pytest.raises(JSONExtractionError) as info:
        check_translation("Maaf, kula mboten saged.", SOURCE, 0.75, 25.0)
    assert info.value.reason == "no_json"
    with pytest.raises(JSONExtractionError) as info:
        check_translation('{"a": 1, "b": 2}', SOURCE, 0.75, 25.0)
    assert info.value.reason == "wrong_shape"


def test_only_plain_short_english_conversations_are_eligible() -> None:
    rows = list(instruction_rows(str(FIXTURE), ""))
    kept = {row["id"] for row in rows if eligible(row, 2048) is not None}
    assert len(rows) == 14
    # ii-6 is Chinese, ii-7 has an <image>, ii-9 a system turn, ii-14 is over 2,048 tokens
    assert kept == {f"ii-{i}" for i in (1, 2, 3, 4, 5, 8, 10, 11, 12, 13)}
    assert eligible(rows[0], 5) is None  # the token limit is a setting


def test_token_counts_approximate_subwords_in_any_script() -> None:
    assert count_tokens("The cat sat.") == 4  # "The", "cat", "sat", "."
    assert count_tokens("internationalisation") == 5  # 20 letters / 4
    assert count_tokens("ภาษาไทยไม่มีช่องว่าง") > 1  # no spaces, still several tokens
    text = "one two six ten big red"
    assert truncate_tokens(text, 3) == "one two six"
    assert truncate_tokens("understanding it", 2) == "understa"  # cut inside a long word
    assert truncate_tokens(text, 100) == text


def test_improve_choice_is_seeded_stable_and_near_the_fraction() -> None:
    ids = [f"topic:g0:{i}:0:0" for i in range(2000)]
    chosen = [i for i in ids if chosen_for_improvement(42, i, 0.5)]
    assert 900 < len(chosen) < 1100
    assert chosen == [i for i in ids if chosen_for_improvement(42, i, 0.5)]
    assert chosen != [i for i in ids if chosen_for_improvement(7, i, 0.5)]
    assert not [i for i in ids if chosen_for_improvement(42, i, 0.0)]


def test_improved_prompts_replace_their_originals() -> None:
    rows = [
        {"id": "a", "prompt": "A", "prompt_type": "original"},
        {"id": "b", "prompt": "B", "prompt_type": "original"},
        {"id": "improved:a", "prompt": "A+", "prompt_type": "improved", "original_id": "a"},
    ]
    assert [r["prompt"] for r in prompts_to_answer(rows)] == ["A+", "B"]


def test_local_corpora_read_jsonl_and_blank_line_separated_text(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "siji"}\n\n{"text": "loro"}\n', "utf-8")
    (tmp_path / "b.txt").write_text("telu\nbaris loro\n\n\npapat\n", "utf-8")
    assert list(corpus_texts(str(tmp_path), "jav_Latn", 0)) == [
        "siji", "loro", "telu\nbaris loro", "papat"
    ]
    assert list(corpus_texts(str(tmp_path), "jav_Latn", 2)) == ["siji", "loro"]
    with pytest.raises(KakugoError, match="does not exist"):
        list(corpus_texts(str(tmp_path / "missing"), "jav_Latn", 0))
    (tmp_path / "c.jsonl").write_text("not json\n", "utf-8")
    with pytest.raises(KakugoError, match="c.jsonl:1"):
        list(corpus_texts(str(tmp_path), "jav_Latn", 0))


def test_a_torn_last_line_is_cut_off_and_a_corrupt_one_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    torn = b'{"id": "a"}\n{"id": "b"}\n{"id": "c", "pro'
    path.write_bytes(torn)
    assert [r["id"] for r in read_rows(tmp_path, "prompts")] == ["a", "b"]
    assert path.read_bytes() == torn  # readers never write: a run may be appending right now
    assert [r["id"] for r in read_rows(tmp_path, "prompts", repair=True)] == ["a", "b"]
    assert path.read_bytes() == b'{"id": "a"}\n{"id": "b"}\n'  # the next append starts clean
    path.write_bytes(b'{"id": "a"}\nnot json\n{"id": "c"}\n')
    with pytest.raises(KakugoError, match="line 2"):
        read_rows(tmp_path, "prompts")


def test_templates_render_and_a_user_prompts_file_replaces_them(tmp_path: Path) -> None:
    topic = prompt_templates("topic")
    text = render(topic["macro_topics"], language="Javanese", seed="food", n=20)
    assert "20" in text and "Javanese" in text and "$" not in text
    assert '["first macro-topic"' in text  # JSON braces need no escaping
    custom = tmp_path / "prompts.toml"
    custom.write_text('[improve]\nprompt = "Better: $prompt"\n', "utf-8")
    assert prompt_templates("improve", str(custom))["prompt"] == "Better: $prompt"
    with pytest.raises(ConfigError, match=r"no \[topic\] section"):
        prompt_templates("topic", str(custom))
    with pytest.raises(ConfigError, match="no such prompts file"):
        prompt_templates("topic", str(tmp_path / "nope.toml"))


def test_an_unreachable_hub_corpus_is_one_clear_error() -> None:
    # HF_DATASETS_OFFLINE=1 (conftest): the Hub path must fail cleanly, pointing to local files
    with pytest.raises(KakugoError, match="cannot open the text corpus 'HuggingFaceFW/fineweb-2'"
                       r".*local file or folder"):
        list(corpus_texts("HuggingFaceFW/fineweb-2", "jav_Latn", 5))
    with pytest.raises(KakugoError, match="cannot open the instruction set"):
        list(instruction_rows("BAAI/Infinity-Instruct", "7M_core"))


def test_a_streamed_instruction_set_is_shuffled_with_the_seed_and_filtered() -> None:
    from datasets import Dataset

    from plugins.generators.translate_generator import sample_stream

    rows = list(instruction_rows(str(FIXTURE), ""))
    stream = Dataset.from_list(rows).to_iterable_dataset(num_shards=2)  # streams like the Hub

    def ids(seed: int, samples: int = 6) -> list[str]:
        return [source_id for source_id, _ in sample_stream(stream, seed, samples, 2048)]

    assert ids(1) == ids(1)
    assert ids(1) != ids(2)
    everything = set(ids(1, samples=100))
    assert everything == {f"ii-{i}" for i in (1, 2, 3, 4, 5, 8, 10, 11, 12, 13)}
    assert len(ids(3)) == 6 and set(ids(3)) <= everything
