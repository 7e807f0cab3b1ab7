"""Driver run by the vocabtrimmer venv's python: trim an encoder to a local corpus.

Our code calling the peer's public API (``vocabtrimmer.VocabTrimmer.trim_vocab``); it imports
nothing from tokengraft, which is not installed in that venv. Small patches, no change to how
vocabtrimmer trims:

* ``huggingface_hub.Repository`` (imported by vocabtrimmer, used only to push to the Hub) no longer
  exists: a placeholder is put there before the import.
* vocabtrimmer mines frequencies from ``datasets.load_dataset(...)`` (mC4 on the Hub): its module's
  ``load_dataset`` is replaced by one that returns the non-empty lines of ``--corpus``.
* It reads ``tokenizer.additional_special_tokens``, which transformers 5 removed: the tokenizer
  class gets a property returning the empty list (XLM-R has none).
* It accepts only ``*MaskedLM`` / classification architectures: the encoder is loaded from a copy
  of ``--base`` whose config says ``BertForMaskedLM`` (the missing MLM head is initialised by
  transformers and trimmed with the rest; the bench reads only the encoder).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def _masked_lm_copy(base: Path, work: Path) -> Path:
    copy = work / "base-mlm"
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir(parents=True)
    for path in base.iterdir():
        (copy / path.name).symlink_to(path.resolve())
    config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    config["architectures"] = ["BertForMaskedLM"]
    (copy / "config.json").unlink()
    (copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, type=Path, help="encoder HF directory")
    parser.add_argument("--corpus", required=True, type=Path, help="text file to mine")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--work", required=True, type=Path, help="scratch directory")
    parser.add_argument("--min-frequency", type=int, default=2)
    args = parser.parse_args()

    import huggingface_hub

    huggingface_hub.Repository = object  # type: ignore[attr-defined]
    import sys

    from vocabtrimmer import VocabTrimmer

    miner = sys.modules["vocabtrimmer.vocab_miner"]

    lines = [line for line in args.corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    miner.load_dataset = lambda *a, **k: [{"text": line} for line in lines]
    args.work.mkdir(parents=True, exist_ok=True)
    trimmer = VocabTrimmer(str(_masked_lm_copy(args.base, args.work)))
    if not hasattr(trimmer.tokenizer, "additional_special_tokens"):
        type(trimmer.tokenizer).additional_special_tokens = property(lambda self: [])
    trimmer.trim_vocab(
        language="de",
        path_to_save=str(args.out),
        dataset="local",
        dataset_name="de",
        min_frequency=args.min_frequency,
        cache_file_vocab=str(args.work / "vocab.json"),
        cache_file_frequency=str(args.work / "frequency.json"),
        overwrite=True,
    )


if __name__ == "__main__":
    main()
