"""``kakugo tiny-model``: build a tiny offline test model from the bundled SIB-200 sentences."""

from __future__ import annotations

import click

from kakugo_core.cli_options import languages_option, out_option, overwrite_option, split_csv

DEFAULT_LANGUAGES = "eng_Latn,jav_Latn"


@click.command("tiny-model")
@click.argument("out_dir", required=False, type=click.Path(file_okay=False))
@out_option("The model's folder (or give it as OUT_DIR)", kind="folder", dest="out")
@languages_option("Bundled SIB-200 languages whose sentences train the BPE tokenizer "
                  f"[default: {DEFAULT_LANGUAGES}]")
@click.option("--layers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--hidden", type=click.IntRange(min=32), default=64, show_default=True,
              help="Hidden size (head_dim is 32, so heads = hidden / 32).")
@click.option("--vocab", type=click.IntRange(min=300), default=1024, show_default=True)
@overwrite_option("Replace whatever the folder holds (by default only an earlier tiny model).")
def tiny_model(out_dir: str | None, out: str | None, languages: tuple[str, ...], layers: int,
               hidden: int, vocab: int, overwrite: bool) -> None:
    """Build a tiny random Llama with a BPE tokenizer and chat template in OUT_DIR (or
    -o/--out).

    No network: the tokenizer is trained on the real SIB-200 sentences bundled with Kakugo.
    The model is untrained (random weights) - for trying `kakugo bench` and the pipeline
    offline, not for its scores. Rebuilding with the same options reuses the folder.
    """


    from kakugo_core.errors import KakugoError
    from kakugo_core.files import prepare_output
    from kakugo_core.testing import build_tiny_model, read_sib200_texts
    from kakugo_core.toolkit.data import BUNDLED_SIB200
    from kakugo_core.toolkit.provenance import TINY_MODEL_STAMP

    if out_dir and out:
        raise click.UsageError("give the folder once: as OUT_DIR or with -o/--out")
    out_dir = out_dir or out
    if not out_dir:
        raise click.UsageError("give the model's folder: OUT_DIR or -o/--out")
    data = BUNDLED_SIB200
    codes = split_csv(languages) or split_csv(DEFAULT_LANGUAGES)
    missing = [c for c in codes if not (data / c).is_dir()]
    if missing:
        have = ", ".join(sorted(p.name for p in data.iterdir() if p.is_dir()))
        raise KakugoError(f"no bundled SIB-200 sentences for {', '.join(missing)}; "
                          f"choose from {have}")
    if hidden % 32:
        raise KakugoError(f"--hidden must be a multiple of 32 (head_dim 32), got {hidden}")
    prepare_output(out_dir, kind="folder", overwrite=overwrite, marker=TINY_MODEL_STAMP)
    made = build_tiny_model(out_dir, read_sib200_texts(data, codes), vocab_size=vocab,
                            hidden_size=hidden, num_layers=layers, num_heads=hidden // 32)
    click.echo(f"tiny model ready in {made}")
