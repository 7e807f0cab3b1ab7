"""``tokengraft train-tokenizer``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from tokengraft.cli.options import Force, Quiet


def train_tokenizer_cmd(
    files: Annotated[list[Path], typer.Argument(help="UTF-8 training text files.")],
    vocab_size: Annotated[int, typer.Option(help="Vocabulary size incl. special tokens.")],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    like: Annotated[
        str, typer.Option(help="Take special tokens and roles from this model.")
    ] = "smollm2-135m",
    min_frequency: Annotated[int, typer.Option(help="Minimum pair frequency.")] = 2,
    multiword: Annotated[
        bool, typer.Option(help="Second stage whose merges may cross whitespace (SuperBPE-style).")
    ] = False,
    transition: Annotated[
        int | None, typer.Option(help="Vocabulary size where the multi-word stage starts.")
    ] = None,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Train a byte-level BPE tokenizer (GPT-2 pre-tokenisation) with a model's special tokens.

    With --multiword, merges learnt after --transition tokens (default: 80 % of --vocab-size)
    may join words across whitespace.
    """
    from tokengraft import io
    from tokengraft.errors import TokengraftError
    from tokengraft.tokenizers.multiword import train_multiword_bpe
    from tokengraft.tokenizers.train import (
        check_vocab_size,
        config_from_model_tokenizer,
        train_byte_level_bpe,
    )

    if transition is not None and not multiword:
        raise TokengraftError("--transition needs --multiword")

    docs = [text for _, text in io.read_texts(files)]
    cfg = replace(
        config_from_model_tokenizer(io.load_tokenizer(like), vocab_size),
        min_frequency=min_frequency,
    )
    check_vocab_size(docs, cfg)
    with io.atomic_output_dir(out, force=force, protect=[*files, Path(like)]) as tmp:
        if multiword:
            start = transition if transition is not None else vocab_size * 4 // 5
            tok = train_multiword_bpe(docs, cfg, transition=start, progress=not quiet)
        else:
            tok = train_byte_level_bpe(docs, cfg, progress=not quiet)
        io.save_tokenizer(tok, tmp)
    typer.echo(f"wrote {out}: {len(tok)} tokens ({len(cfg.special_tokens)} special)")
