"""``kakugo tiny-model``: build a tiny offline test model from the bundled SIB-200 sentences."""

from __future__ import annotations

import click


@click.command("tiny-model")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--languages", default="eng_Latn,jav_Latn", show_default=True,
              help="Bundled SIB-200 languages whose sentences train the BPE tokenizer.")
@click.option("--layers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--hidden", type=click.IntRange(min=32), default=64, show_default=True,
              help="Hidden size (head_dim is 32, so heads = hidden / 32).")
@click.option("--vocab", type=click.IntRange(min=300), default=1024, show_default=True)
@click.option("--overwrite", is_flag=True,
              help="Replace whatever OUT_DIR holds (by default only an earlier tiny model).")
def tiny_model(out_dir: str, languages: str, layers: int, hidden: int, vocab: int,
               overwrite: bool) -> None:
    """Build a tiny random Llama with a BPE tokenizer and chat template in OUT_DIR.

    No network: the tokenizer is trained on the real SIB-200 sentences bundled with Kakugo.
    The model is untrained (random weights) - for trying `kakugo bench` and the pipeline
    offline, not for its scores. Rebuilding with the same options reuses the folder.
    """

    from pathlib import Path

    from kakugo_core.errors import KakugoError
    from kakugo_core.testing import build_tiny_model, read_sib200_texts
    from kakugo_core.toolkit.data import BUNDLED_SIB200

    data = BUNDLED_SIB200
    codes = [c.strip() for c in languages.split(",") if c.strip()]
    missing = [c for c in codes if not (data / c).is_dir()]
    if missing:
        have = ", ".join(sorted(p.name for p in data.iterdir() if p.is_dir()))
        raise KakugoError(f"no bundled SIB-200 sentences for {', '.join(missing)}; "
                          f"choose from {have}")
    if hidden % 32:
        raise KakugoError(f"--hidden must be a multiple of 32 (head_dim 32), got {hidden}")
    out_path = Path(out_dir)
    if out_path.exists() and not out_path.is_dir():
        raise KakugoError(f"{out_dir} is a file; give a folder")
    if (not overwrite and out_path.is_dir() and any(out_path.iterdir())
            and not (out_path / ".kakugo-tiny-model").is_file()):
        raise KakugoError(f"{out_dir} holds files that `kakugo tiny-model` did not make; choose "
                          "an empty folder or pass --overwrite")
    out = build_tiny_model(out_dir, read_sib200_texts(data, codes), vocab_size=vocab,
                           hidden_size=hidden, num_layers=layers, num_heads=hidden // 32)
    click.echo(f"tiny model ready in {out}")
