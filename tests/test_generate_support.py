"""A scripted teacher for the generation tests: answers Kakugo's prompts over the real
OpenAI-compatible protocol (served by ``kakugo_core.teacher_server``).

It recognises each prompt template by its wording, answers with plausible JSON in the shapes
teachers really use (bare, in ```json fences, with prose around it, with trailing commas), and
breaks a deterministic share of its answers (no JSON, cut-off JSON) so that reject counting is
exercised. Everything it did is recorded, so tests compare the run's counts with what was sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from kakugo_core.teacher_server import Reply

LIST_MARKERS = (
    ("macro", "distinct macro-topics within"),
    ("topics", "specific topics within the macro-topic"),
    ("topic_prompts", "prompts that a speaker of"),
    ("broad", "broad scenarios in which"),
    ("detailed", "detailed scenarios"),
    ("scenario_prompts", "messages that the user in this scenario"),
    ("context_prompts", "requests that a user could send"),
)


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def _wrap(items: Any, style: int) -> str:
    """The same JSON in one of the shapes teachers produce."""
    text = json.dumps(items, ensure_ascii=False)
    if style == 0:
        return text
    if style == 1:
        return f"Here you go:\n```json\n{json.dumps(items, ensure_ascii=False, indent=2)}\n```\n"
    if style == 2:
        return f"Sure! {text} Hope this helps."
    # trailing commas inside a fence
    return "```\n" + text.replace('"]', '",]').replace('"}', '",}') + "\n```"


class ScriptedTeacher:
    """The responder: ``server = OpenAICompatServer(ScriptedTeacher())``. Every answer is a
    function of the request and differs between requests, so tests can tell them apart.

    ``break_every``: every n-th distinct list request (by content hash) gets a broken answer.
    ``bad_translation_ids``: source ids whose translation drops a turn (a ``turn_count`` reject).
    """

    def __init__(
        self, break_every: int = 7, bad_translation_ids: tuple[str, ...] = ("ii-4",),
        word_prefix: str = "jv", truncate_every: int = 0,
    ) -> None:
        self.break_every = break_every
        self.truncate_every = truncate_every
        self.bad_translation_ids = set(bad_translation_ids)
        self.word_prefix = word_prefix
        self.kinds: Counter[str] = Counter()
        self.broken: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, kind: str, broken: bool = False) -> None:
        with self._lock:
            self.kinds[kind] += 1
            if broken:
                self.broken[kind] += 1

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        has_system = any(m["role"] == "system" for m in messages)
        if has_system:  # the responses stage
            h = _digest(user)
            if self.truncate_every and h % self.truncate_every == 0:
                self._count("response", broken=True)
                return Reply(content=f"{self.word_prefix} wangsulan {h} sing kepot",
                             reasoning="The user asks", finish_reason="length")
            self._count("response")
            return Reply(
                content=f"{self.word_prefix} wangsulan {h}: {user[-60:]}",
                reasoning=f"The user asks about: {user[-40:]}. I answer briefly.",
            )
        if "Translate the following conversation" in user:
            return self._translate(user)
        if "Rewrite it into a better prompt" in user:
            original = user.split("<prompt>", 1)[1].split("</prompt>", 1)[0].strip()
            broken = self.break_every and _digest(user) % self.break_every == 0
            self._count("improve", broken)
            if broken:
                return Reply(content=f"I cannot improve prompt {_digest(user)}, it is perfect.")
            return Reply(content=_wrap({"prompt": f"{original} (luwih jelas)"}, _digest(user) % 4))
        for kind, marker in LIST_MARKERS:
            if marker in user:
                return self._list(kind, user)
        self._count("unknown")
        return Reply(content="?")

    def _list(self, kind: str, user: str) -> Reply:
        match = re.search(r"(?:List|Write(?: up to)?) (\d+)", user)
        n = int(match.group(1)) if match else 3
        h = _digest(user)
        broken = bool(self.break_every) and h % self.break_every == 0
        self._count(kind, broken)
        if broken:
            if h % 2:
                return Reply(content=f'["answer {h} was cut off", "mid')
            return Reply(content=f"Sorry, I can't help with that ({h}).")
        lang = kind.endswith("prompts")
        items = [
            (f"{self.word_prefix} pitakon {kind} {h}-{i}?" if lang
             else f"{kind} item {h}-{i}")
            for i in range(n)
        ]
        return Reply(content=_wrap(items, h % 4))

    def _translate(self, user: str) -> Reply:
        raw = user.split("The conversation, as JSON:", 1)[1].split("Answer with", 1)[0]
        turns = json.loads(raw)
        source_text = turns[0]["content"]
        bad = any(
            source_text.startswith(prefix) for prefix in (
                "Explain photosynthesis",  # ii-4
            )
        ) and "ii-4" in self.bad_translation_ids
        self._count("translate", bad)
        out = [
            {"role": t["role"], "content": f"{self.word_prefix}: {t['content']}"} for t in turns
        ]
        if bad:
            out = out[:-1]
        return Reply(content=_wrap(out, _digest(user) % 4))


FIXTURES = Path(__file__).parent / "fixtures" / "instructions"
INSTRUCTIONS = FIXTURES / "infinity_instruct_sample.jsonl"


def small_overrides(base_url: str, corpus: str, *extra: str) -> list[str]:
    """``--set`` overrides for a small full run (about 130 teacher calls) against a test server."""
    return [
        f"teacher.base_url={base_url}",
        "teacher.model=scripted-teacher",
        "teacher.api_key_env=KAKUGO_TEST_NO_KEY",
        "teacher.concurrency=4",
        "teacher.timeout_s=2.0",
        "teacher.retry_base_s=0.01",
        "teacher.retry_max_s=0.5",
        "generate.batch_size=16",
        "generate.topic.general_seeds=2",
        "generate.topic.language_seeds=2",
        "generate.topic.macro_topics_per_seed=2",
        "generate.topic.topics_per_macro=2",
        "generate.topic.prompts_per_topic=3",
        "generate.scenario.general_scenarios=2",
        "generate.scenario.language_scenarios=2",
        "generate.scenario.detailed_per_scenario=2",
        "generate.scenario.prompts_per_scenario=2",
        f"generate.context.source={corpus}",
        "generate.context.max_texts=12",
        "generate.context.max_text_tokens=40",
        f"generate.translate.source={INSTRUCTIONS}",
        "generate.translate.samples=8",
        *extra,
    ]


def write_corpus(folder: Any, sib200_dir: Any) -> str:
    """A local Javanese corpus from the bundled SIB-200 sentences (real text, one per line)."""
    lines = (Path(sib200_dir) / "jav_Latn" / "dev.tsv").read_text("utf-8").splitlines()[1:]
    texts = [line.split("\t", 2)[2] for line in lines if line.count("\t") >= 2]
    path = Path(folder) / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[:20]), "utf-8")
    return str(path)


def reference_run(base: Path, sib200_dir: Path) -> dict[str, Any]:
    """One fault-free small run in ``base/work``: what every other run must reproduce."""
    from kakugo_core.config import load_config
    from kakugo_core.generation import read_rows, run_generation
    from kakugo_core.teacher_server import OpenAICompatServer

    corpus = write_corpus(base, sib200_dir)
    script = ScriptedTeacher()
    with OpenAICompatServer(script) as server:
        config = load_config(None, small_overrides(server.base_url, corpus))
        summary = run_generation("Javanese", config, base / "work", progress=False)
        requests = len(server.requests)
    return {
        "base": base, "work": base / "work", "corpus": corpus, "summary": summary,
        "script": script, "requests": requests,
        "ids": {
            output: [row["id"] for row in read_rows(base / "work", output)]
            for output in ("prompts", "responses", "translations", "rejects")
        },
    }
