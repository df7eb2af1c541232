"""Configuration: packaged defaults, a user TOML file on top, ``--set`` overrides on top of that.

Only keys present in the defaults are accepted, with a compatible type and within the range that
:data:`RULES` gives, so a typo or an impossible value is a one-line error naming the source and
the key rather than a silently ignored setting or a failure hours later. Flags that commands pass
as ``extra`` go through the same checks.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from kakugo_core.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Config = dict[str, Any]


def defaults() -> Config:
    """The packaged defaults (the Kakugo paper's numbers)."""
    text = resources.files("kakugo_core").joinpath("data/defaults.toml").read_text("utf-8")
    return tomllib.loads(text)


def _type_ok(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _free_tables(node: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Dotted names of the tables that are empty in the defaults: they take any key."""
    out: set[str] = set()
    for key, value in node.items():
        if isinstance(value, dict):
            out |= {f"{prefix}{key}"} if not value else _free_tables(value, f"{prefix}{key}.")
    return out


FREE_TABLES = _free_tables(defaults())


@dataclass(frozen=True)
class Rule:
    """Allowed values of one key: a numeric range (``low``/``high``, inclusive unless
    ``open_low``/``open_high``), a set of ``choices``, or (``env_name``) the name of an
    environment variable that holds a secret, refused when it looks like the secret itself and
    then never echoed."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple[str, ...] = ()
    env_name: bool = False

    def problem(self, value: Any) -> str:
        """Why ``value`` breaks the rule, or "" when it does not."""
        if self.env_name:
            from kakugo_core.secrets import looks_like_key

            if isinstance(value, str) and value and looks_like_key(value):
                return ("must name the environment variable that holds the key (e.g. "
                        "OPENAI_API_KEY), not be the key: the value looks like one (not shown)")
            return ""
        if self.choices:
            values = value if isinstance(value, list) else [value]
            bad = [v for v in values if v not in self.choices]
            return "" if not bad else f"must be one of {', '.join(self.choices)}"
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return ""
        if value != value:  # NaN
            return "must be a number"
        low_bad = self.low is not None and (value <= self.low if self.open_low
                                            else value < self.low)
        high_bad = self.high is not None and (value >= self.high if self.open_high
                                              else value > self.high)
        if not (low_bad or high_bad):
            return ""
        left = "" if self.low is None else f"{'>' if self.open_low else '>='} {self.low:g}"
        right = "" if self.high is None else f"{'<' if self.open_high else '<='} {self.high:g}"
        return "must be " + " and ".join(part for part in (left, right) if part)


NON_NEGATIVE = Rule(low=0)
POSITIVE = Rule(low=0, open_low=True)
AT_LEAST_ONE = Rule(low=1)
FRACTION = Rule(low=0, high=1)

#: the allowed values of every key that has limits beyond its type; one table for user files,
#: ``--set`` and command-line flags (a key not listed takes any value of its type)
RULES: dict[str, Rule] = {
    "run.seed": NON_NEGATIVE,
    "teacher.api_key_env": Rule(env_name=True),
    "teacher.concurrency": AT_LEAST_ONE,
    "teacher.max_retries": NON_NEGATIVE,
    "teacher.timeout_s": POSITIVE,
    "teacher.temperature": NON_NEGATIVE,
    "teacher.top_p": Rule(low=0, high=1, open_low=True),
    "teacher.max_tokens": AT_LEAST_ONE,
    "teacher.price_input_per_mtok": NON_NEGATIVE,
    "teacher.price_output_per_mtok": NON_NEGATIVE,
    "teacher.retry_base_s": NON_NEGATIVE,
    "teacher.retry_max_s": NON_NEGATIVE,
    "teacher.batch_size": AT_LEAST_ONE,
    "teacher.http_client": Rule(choices=("aiohttp", "httpx")),
    "generate.max_cost": NON_NEGATIVE,
    "generate.batch_size": AT_LEAST_ONE,
    **{f"generate.topic.{k}": NON_NEGATIVE for k in (
        "general_seeds", "language_seeds", "macro_topics_per_seed", "topics_per_macro",
        "prompts_per_topic")},
    **{f"generate.scenario.{k}": NON_NEGATIVE for k in (
        "general_scenarios", "language_scenarios", "detailed_per_scenario",
        "prompts_per_scenario")},
    "generate.context.max_texts": NON_NEGATIVE,
    "generate.context.max_text_tokens": AT_LEAST_ONE,
    "generate.context.prompts_asked": AT_LEAST_ONE,
    "generate.context.prompts_kept": NON_NEGATIVE,
    "generate.improve.fraction": FRACTION,
    "generate.translate.samples": NON_NEGATIVE,
    "generate.translate.max_input_tokens": AT_LEAST_ONE,
    "generate.translate.min_token_ratio": NON_NEGATIVE,
    "generate.translate.max_token_ratio": POSITIVE,
    "dataset.validation_fraction": Rule(low=0, high=1, open_high=True),
    "train.method": Rule(choices=("full", "lora")),
    "release.gguf": Rule(choices=("F32", "F16", "Q8_0")),
    "train.epochs": POSITIVE,
    "train.learning_rate": POSITIVE,
    "train.warmup_ratio": FRACTION,
    "train.max_length": AT_LEAST_ONE,
    "train.per_device_batch_size": AT_LEAST_ONE,
    "train.gradient_accumulation_steps": AT_LEAST_ONE,
    "train.lora_rank": AT_LEAST_ONE,
    "train.lora_alpha": POSITIVE,
    "train.lora_dropout": Rule(low=0, high=1, open_high=True),
    "train.vocab_expansion_tokens": NON_NEGATIVE,
    "train.seed": NON_NEGATIVE,
    "train.overlong": Rule(choices=("error", "drop")),
    "train.precision": Rule(choices=("auto", "bf16", "bf16-pure", "fp16", "fp32")),
    "train.weight_decay": NON_NEGATIVE,
    "train.max_grad_norm": NON_NEGATIVE,
    "train.logging_steps": AT_LEAST_ONE,
    "train.eval_steps": NON_NEGATIVE,
    "train.save_steps": NON_NEGATIVE,
    "train.use_generation_blocks": Rule(choices=("auto", "yes", "no")),
    "train.vocab_heldout_fraction": Rule(low=0, high=1, open_high=True),
    "train.alignment_epochs": POSITIVE,
    "train.alignment_learning_rate": POSITIVE,
    "train.num_processes": NON_NEGATIVE,
    "bench.n_shot": NON_NEGATIVE,
    "bench.limit": NON_NEGATIVE,
    "bench.batch_size": AT_LEAST_ONE,
    "bench.max_new_tokens": AT_LEAST_ONE,
    "leaderboard.format": Rule(choices=("table", "markdown", "csv", "json", "html")),
    "judge.max_new_tokens": AT_LEAST_ONE,
    "judge.temperature": NON_NEGATIVE,
    "judge.max_tokens": AT_LEAST_ONE,
    "judge.limit": NON_NEGATIVE,
    "compare.seed": NON_NEGATIVE,
    "compare.max_new_tokens": AT_LEAST_ONE,
    "compare.limit": NON_NEGATIVE,
}


def check_value(dotted: str, value: Any, source: str = "configuration") -> None:
    """Raise a :class:`ConfigError` naming ``dotted`` when ``value`` breaks its rule."""
    rule = RULES.get(dotted)
    problem = rule.problem(value) if rule else ""
    if problem and rule and rule.env_name:  # a secret in the wrong place: never print it
        from kakugo_core.secrets import MASK

        raise ConfigError(f"{source.replace(str(value), MASK)}: '{dotted}' {problem}")
    if problem:
        raise ConfigError(f"{source}: '{dotted}' {problem}, got {value!r}")


def _merge(base: Config, update: Mapping[str, Any], source: str, prefix: str = "") -> None:
    """Merge ``update`` into ``base``; a table that is empty in the defaults (FREE_TABLES)
    takes non-negative integers under any key, every other only the keys the defaults have."""
    free = prefix.rstrip(".") in FREE_TABLES
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if free:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{source}: '{dotted}' must be a non-negative int, "
                                  f"got {type(value).__name__} {value!r}")
            base[key] = value
            continue
        if key not in base:
            raise ConfigError(f"{source}: unknown key '{dotted}' (see `kakugo config`)")
        current = base[key]
        if isinstance(current, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{dotted}' must be a table")
            _merge(current, value, source, dotted + ".")
        elif not _type_ok(current, value):
            raise ConfigError(
                f"{source}: '{dotted}' must be {type(current).__name__}, "
                f"got {type(value).__name__} {value!r}"
            )
        else:
            check_value(dotted, value, source)
            base[key] = float(value) if isinstance(current, float) else value


#: the largest configuration file read (a real one is a few KiB; /dev/zero would never end)
MAX_CONFIG_BYTES = 1 << 20


def read_file(path: str | Path) -> Config:
    """Parse a TOML file; a missing, malformed, oversized (over :data:`MAX_CONFIG_BYTES`) or
    non-regular one (a device, FIFO or folder) is a :class:`ConfigError`."""
    from kakugo_core.toolkit.data import open_regular

    path = Path(path)
    try:
        with open_regular(path, "configuration file", MAX_CONFIG_BYTES) as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        return tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def parse_override(text: str) -> Config:
    """``section.key=value`` (the value in TOML syntax, bare words taken as strings) as a
    nested mapping."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    dotted, raw = (part.strip() for part in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    nested: Config = {}
    cursor = nested
    parts = dotted.split(".")
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    return nested


def load_config(
    path: str | Path | None = None, overrides: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None, presets: Iterable[str] = (),
) -> Config:
    """Defaults (with every plugin's declared settings), then ``presets`` (``--set``-style
    lines of a preset such as the demo's), then ``path``, then ``--set`` overrides, then
    ``extra`` (from dedicated flags); plugin settings are checked last."""
    from kakugo_core import plugin_settings

    config = defaults()
    plugin_settings.add_defaults(config)
    for text in presets:
        _merge(config, parse_override(text), f"preset {text}")
    if path:
        _merge(config, read_file(path), str(path))
    for text in overrides:
        _merge(config, parse_override(text), f"--set {text}")
    if extra:
        _merge(config, dict(extra), "command-line flags")
    plugin_settings.validate(config)
    return config


def section(config: Config, dotted: str) -> Config:
    """A deep copy of one section, e.g. ``section(cfg, "generate.topic")``."""
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return copy.deepcopy(node)
