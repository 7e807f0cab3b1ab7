"""Run inside the llama.cpp venv (scripts/setup_llama_cpp.sh), not in tokengraft's.

Reads one JSON request on stdin and prints one JSON answer:

    {"model": PATH, "texts": [...]}                       -> {"ids": [[...], ...]}
    {"model": PATH, "texts": [...], "prefix": ID, "n_ctx": N}
        -> {"ids": [...], "nll_nats": [...]}  (each text's tokens scored after the prefix token)

Only llama_cpp and numpy are imported: this file must run without tokengraft.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from llama_cpp import Llama


def _tokenize(llm: Llama, text: str) -> list[int]:
    return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def _nll_nats(llm: Llama, prefix: int, ids: list[int]) -> float:
    """Summed negative log-likelihood of ``ids`` given ``prefix`` and the tokens before each."""
    tokens = [prefix, *ids]
    if len(tokens) > llm.n_ctx():
        raise SystemExit(f"{len(tokens)} tokens do not fit the context of {llm.n_ctx()}")
    llm.reset()
    llm.eval(tokens)
    logits = np.asarray(llm.scores[: len(tokens) - 1], dtype=np.float64)  # (n, V)
    top = logits.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    picked = logits[np.arange(len(ids)), ids]
    return float((log_z - picked).sum())


def main() -> None:
    request = json.load(sys.stdin)
    scoring = "prefix" in request
    llm = Llama(
        request["model"],
        vocab_only=not scoring,
        n_ctx=request.get("n_ctx", 512),
        n_batch=request.get("n_ctx", 512),
        logits_all=scoring,
        n_threads=2,
        seed=0,
        verbose=False,
    )
    ids = [_tokenize(llm, text) for text in request["texts"]]
    answer: dict[str, object] = {"ids": ids}
    if scoring:
        answer["nll_nats"] = [_nll_nats(llm, request["prefix"], i) for i in ids]
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
