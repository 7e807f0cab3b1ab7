"""Driver run by the tokenizer-adapter venv's python: adapt a model and save an HF checkpoint.

Our code calling the peer's public API (``tokenizer_adapter.adapter.TokenizerAdapter``); it imports
nothing from tokengraft, which is not installed in that venv.
"""

from __future__ import annotations

import argparse

import torch
from tokenizer_adapter.adapter import TokenizerAdapter
from transformers import AutoModelForCausalLM, AutoTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="base model HF directory")
    parser.add_argument("--new-tokenizer", required=True, help="new tokenizer directory")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--method", default="average", help="TokenizerAdapter method")
    args = parser.parse_args()

    model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32)
    old_tok = AutoTokenizer.from_pretrained(args.base)
    new_tok = AutoTokenizer.from_pretrained(args.new_tokenizer)
    adapter = TokenizerAdapter(method=args.method)
    new_model = adapter.adapt_from_pretrained(model, new_tok, old_tok)
    new_model.save_pretrained(args.out)
    new_tok.save_pretrained(args.out)


if __name__ == "__main__":
    main()
