"""Driver run by the deepfocus venv's python: FOCUS-initialise a model and save an HF checkpoint.

Our code calling the peer's public API (``deepfocus.FOCUS``); it imports nothing from tokengraft.
FOCUS returns one matrix; an untied output head gets its own FOCUS call on the head's rows.
"""

from __future__ import annotations

import argparse

import torch
from deepfocus import FOCUS
from transformers import AutoModelForCausalLM, AutoTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="base model HF directory")
    parser.add_argument("--new-tokenizer", required=True, help="new tokenizer directory")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--train-text", required=True, help="target-language training text")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--processes", type=int, default=None)
    parser.add_argument("--min-count", type=int, default=10, help="fastText minCount (FOCUS: 10)")
    args = parser.parse_args()

    model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32)
    old_tok = AutoTokenizer.from_pretrained(args.base)
    new_tok = AutoTokenizer.from_pretrained(args.new_tokenizer)
    tied = bool(getattr(model.config, "tie_word_embeddings", False))

    def focus(source: torch.Tensor) -> torch.Tensor:
        return FOCUS(
            source_embeddings=source,
            source_tokenizer=old_tok,
            target_tokenizer=new_tok,
            target_training_data_path=args.train_text,
            processes=args.processes,
            fasttext_model_min_count=args.min_count,
            seed=args.seed,
        )

    new_input = focus(model.get_input_embeddings().weight.detach())
    new_output = None if tied else focus(model.get_output_embeddings().weight.detach())
    model.resize_token_embeddings(len(new_tok))
    model.get_input_embeddings().weight.data = new_input.to(torch.float32)
    if new_output is not None:
        model.get_output_embeddings().weight.data = new_output.to(torch.float32)
    for role in ("bos", "eos", "pad"):
        setattr(model.config, f"{role}_token_id", getattr(new_tok, f"{role}_token_id"))
    model.save_pretrained(args.out)
    new_tok.save_pretrained(args.out)


if __name__ == "__main__":
    main()
