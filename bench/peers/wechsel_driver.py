"""Driver run by the wechsel venv's python: WECHSEL-initialise a model and save an HF checkpoint.

Our code calling the peer's public API (``wechsel.train_embeddings``, ``wechsel.WECHSEL``); it
imports nothing from tokengraft. fastText models are trained on the given local texts (the
package's ``load_embeddings`` would download cc.<lang>.300); words are split by a regex rather
than NLTK's Punkt (its data would be downloaded). The dictionary is copied keeping only
``source<TAB>target`` lines, the format ``WECHSEL`` parses.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from wechsel import WECHSEL, train_embeddings

WORD = re.compile(r"\w+|[^\w\s]")


def split_words(text: str) -> list[str]:
    return WORD.findall(text)


def clean_dictionary(path: Path, out: Path) -> int:
    """Copy ``source<TAB>target`` lines (no comments, no blanks, exactly one tab); their count."""
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split("\t")
        if len(parts) == 2 and all(p.strip() for p in parts) and not line.startswith("#"):
            kept.append(f"{parts[0].strip()}\t{parts[1].strip()}")
    out.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="base model HF directory")
    parser.add_argument("--new-tokenizer", required=True, help="new tokenizer directory")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--source-text", required=True, help="text in the base model's language")
    parser.add_argument("--target-text", required=True, help="text in the target language")
    parser.add_argument("--dictionary", required=True, help="source<TAB>target word pairs")
    parser.add_argument("--epochs", type=int, default=20, help="fastText epochs (wechsel: 20)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scratch", required=True, help="directory for intermediate files")
    args = parser.parse_args()

    scratch = Path(args.scratch)
    dictionary = scratch / "dictionary.tsv"
    print(f"dictionary: {clean_dictionary(Path(args.dictionary), dictionary)} pairs", flush=True)
    source_ft = train_embeddings(
        args.source_text, tokenize_fn=split_words, epochs=args.epochs, thread=args.threads
    )
    target_ft = train_embeddings(
        args.target_text, tokenize_fn=split_words, epochs=args.epochs, thread=args.threads
    )
    wechsel = WECHSEL(
        source_ft,
        target_ft,
        align_strategy="bilingual_dictionary",
        bilingual_dictionary=str(dictionary),
    )

    model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32)
    old_tok = AutoTokenizer.from_pretrained(args.base)
    new_tok = AutoTokenizer.from_pretrained(args.new_tokenizer)
    tied = bool(getattr(model.config, "tie_word_embeddings", False))

    def transfer(source: torch.Tensor) -> torch.Tensor:
        matrix, info = wechsel.apply(old_tok, new_tok, source.detach().numpy().copy())
        print(f"no match (random init): {len(info.not_found)} tokens", flush=True)
        return torch.from_numpy(np.asarray(matrix, dtype=np.float32))

    new_input = transfer(model.get_input_embeddings().weight)
    new_output = None if tied else transfer(model.get_output_embeddings().weight)
    model.resize_token_embeddings(len(new_tok))
    model.get_input_embeddings().weight.data = new_input
    if new_output is not None:
        model.get_output_embeddings().weight.data = new_output
    for role in ("bos", "eos", "pad"):
        setattr(model.config, f"{role}_token_id", getattr(new_tok, f"{role}_token_id"))
    model.save_pretrained(args.out)
    new_tok.save_pretrained(args.out)


if __name__ == "__main__":
    main()
