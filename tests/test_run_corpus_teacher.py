"""The demo's corpus teacher recognises every generator request of prompts.toml and answers
from the train split only."""

from __future__ import annotations

import json

import pytest

from kakugo_core.demo import CONTEXT_REQUESTS, CorpusTeacher, DemoCorpus
from kakugo_core.generation import prompt_templates, render
from kakugo_core.languages import resolve


@pytest.fixture(scope="module")
def teacher() -> CorpusTeacher:
    return CorpusTeacher(DemoCorpus.load(resolve("jav_Latn")))


def _body(user: str, system: str = "") -> dict:
    messages = [{"role": "system", "content": system}] if system else []
    return {"messages": [*messages, {"role": "user", "content": user}]}


VALUES = dict(language="Javanese", n=4, seed="science", macro_topic="space", topic="planets",
              scenario="planning a trip")


@pytest.mark.parametrize(("section", "key", "kind"), [
    ("topic", "macro_topics", "list"), ("topic", "topics", "list"),
    ("topic", "prompts", "prompts"), ("scenario", "general_scenarios", "list"),
    ("scenario", "language_scenarios", "list"), ("scenario", "detailed_scenarios", "list"),
    ("scenario", "prompts", "prompts"),
])
def test_every_list_and_prompt_request_is_recognised(teacher, section, key, kind) -> None:
    user = render(prompt_templates(section)[key], **VALUES)
    assert teacher.kind(_body(user)) == kind
    answer = json.loads(teacher(_body(user)))
    assert isinstance(answer, list) and len(answer) == 4 and all(answer)


def test_context_prompts_follow_the_task(teacher) -> None:
    tpl = prompt_templates("context")
    sentence = teacher.corpus.sentences[0]
    for task, text in tpl["tasks"].items():
        user = render(tpl["prompts"], language="Javanese", text=sentence.text, n=3, task=text)
        answer = json.loads(teacher(_body(user)))
        assert len(answer) == 3 and answer[0] == CONTEXT_REQUESTS[task]


def test_answers_come_from_the_train_split(teacher) -> None:
    s = teacher.corpus.sentences[5]
    system = render(prompt_templates("responses")["system"], language="Javanese")
    asked = {task: teacher(_body(f"{s.text}\n\n{req}", system))
             for task, req in CONTEXT_REQUESTS.items()}
    assert asked["translate"].content == s.english
    assert asked["classify"].content == f"Topic: {s.category}"
    assert asked["classify"].reasoning == ""  # trained in the concise mode, nothing to copy
    assert s.category in asked["translate"].reasoning
    assert asked["answer"].content != s.text
    assert teacher.by_text[asked["answer"].content].category == s.category
    test_split = (teacher.corpus.language.id, "test")
    from kakugo_core.demo import BUNDLED, _tsv

    test_texts = {t for _, _, t in _tsv(BUNDLED / test_split[0] / "test.tsv")}
    assert not test_texts & set(teacher.by_text)


def test_translation_maps_english_turns_to_the_language(teacher) -> None:
    a, b = teacher.corpus.sentences[:2]
    conversation = json.dumps([{"role": "user", "content": a.english},
                               {"role": "assistant", "content": b.english}])
    user = render(prompt_templates("translate")["prompt"], language="Javanese",
                  conversation=conversation, n=2)
    assert teacher.kind(_body(user)) == "translate_conversation"
    turns = json.loads(teacher(_body(user)))
    assert [t["content"] for t in turns] == [a.text, b.text]


def test_unknown_demo_language_is_a_clear_error() -> None:
    from kakugo_core.errors import KakugoError

    with pytest.raises(KakugoError, match="no bundled data for Amharic"):
        DemoCorpus.load(resolve("am"))


def test_the_corpus_teacher_judges_by_reference_in_both_orders(teacher) -> None:
    from kakugo_core.judging import judge_request, parse_verdict

    s = teacher.corpus.sentences[7]
    question = f"{s.text}\n\n{CONTEXT_REQUESTS['translate']}"
    good = f"<think>\nsome reasoning\n</think>\n\n{s.english}"
    poor = teacher.corpus.sentences[8].english

    def verdict(first: str, second: str) -> str | None:
        request = judge_request(question, first, second, "Javanese")
        body = {"messages": [{"role": r, "content": c} for r, c in request.messages]}
        assert teacher.kind(body) == "judge"
        return parse_verdict(teacher(body))

    assert verdict(good, poor) == "1" and verdict(poor, good) == "2"
    assert verdict(poor, poor) == "tie"
    assert verdict("<think>\nthe reference is only in here: " + s.english, poor) == "2"
