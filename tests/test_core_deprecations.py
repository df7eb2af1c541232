"""Deprecation warnings that our code triggers in a library fail the test suite (pyproject's
filterwarnings, with conftest attributing library warnings to the first caller outside the
library); our code uses the current APIs."""

from __future__ import annotations

import warnings

import pytest


def _call_from(module_name: str, source: str, **names):
    """Run ``source`` as if it were code in module ``module_name``."""
    scope = {"__name__": module_name, **names}
    exec(compile(source, f"<{module_name}>", "exec"), scope)  # noqa: S102


def test_a_library_deprecation_triggered_by_our_code_is_an_error(tmp_path):
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    if "activation_checkpointing" not in fields:
        pytest.skip("this transformers has no deprecated gradient_checkpointing alias")
    code = "TrainingArguments(output_dir=out, gradient_checkpointing=False, report_to='none')"
    with pytest.raises(FutureWarning, match="gradient_checkpointing"):
        _call_from("plugins._probe", code, TrainingArguments=TrainingArguments,
                   out=str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:  # elsewhere it stays a warning
        warnings.simplefilter("always")
        _call_from("someone_else", code, TrainingArguments=TrainingArguments, out=str(tmp_path))
    assert any(issubclass(w.category, FutureWarning) for w in caught)


def test_training_arguments_use_the_current_names(tmp_path):
    from plugins.students._sft import TrainOptions, _training_args

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        args = _training_args(TrainOptions(gradient_checkpointing=True), tmp_path, epochs=1,
                              learning_rate=1e-4, has_eval=False)
    assert args.gradient_checkpointing is True
