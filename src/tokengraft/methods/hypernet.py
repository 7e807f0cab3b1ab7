"""`hypernet`: a small network, trained on the base vocabulary, maps a token's pieces to its row.

In the spirit of Zero-Shot Tokenizer Transfer (Minixhofer et al., 2024, arXiv 2405.07883), at CPU
scale. The hypernetwork reads the rows of a token's old-tokenizer pieces (a linear projection plus
a learned position embedding, then a pre-norm transformer encoder) and pools them with a masked
mean. It predicts the token's row as the subword mean plus a learned correction:
``mean_i E[p_i] + sigma * W(pool(h))``. ``W`` starts at zero, so the untrained network is exactly
subword_mean (FVT). The network is trained on the base model's own vocabulary. Each old token of two
or more bytes is cut at a random character boundary, the two halves are spelled with the old
tokenizer (:func:`tokengraft.vocab.spell.decompose`, so the token itself can never be one of its
pieces), and the network learns to map those pieces back to the token's own row. The loss is MSE
on standardised rows plus (1 - cosine). 5% of the tokens are held out, and their cosine is logged
next to that of the subword mean. When ``extras.cache_dir`` is given, the trained weights are
cached under ``hypernet/``, keyed by the base matrix, the old vocabulary, the slot, the parameters
and the seed.

Where this differs from ZeTT:

* ZeTT trains with the language-modelling loss of the base model run on text tokenised by many
  sampled tokenizers; its MSE to the original rows is only an auxiliary term. We train only that
  auxiliary objective, with no forward passes of the model (13.9 s for the whole method, one
  thread, in BENCHMARKS.md de-fresh, where the network may have come from the cache). So the
  network learns to rebuild the base embeddings, not what the model needs downstream.
* The training decompositions are synthetic: one cut per example, each half spelled by the old
  tokenizer. ZeTT decomposes the tokens of sampled target tokenizers. Each training example
  therefore has at least two pieces, and an inference-time spelling has any number.
* The network has about 1.4 million parameters (``hidden`` 256, 2 layers). ZeTT uses a 3-layer
  RoBERTa-sized network. We pool by masked mean, where ZeTT reads the first position. There is no
  unigram-prior input and no bias prediction.
* One network is trained per embedding slot, on that slot's matrix alone. ZeTT feeds the
  concatenated input and output rows of an untied model to one network with two heads. A tied model
  trains only the input network.
* A token the old tokenizer cannot spell gets the mean row. ZeTT has learned fallback embeddings.
* The training budget is fixed in epochs, so the result is deterministic given the seed
  (``GraftConfig.seed``). ``max_seconds`` is only a safety stop. When it fires, the result depends
  on the machine, and a warning is logged.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pad_sequence
from transformers import PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError
from tokengraft.io.tensors import cache_key, cached_tensors
from tokengraft.methods.common import torch_threads
from tokengraft.methods.registry import MethodInput, MethodSpec, Param, register
from tokengraft.vocab import CanonicalToken, CanonicalVocab, canonical_vocab
from tokengraft.vocab.spell import decompose

log = logging.getLogger(__name__)

_VERSION = "hypernet-v1"  # bump when training data, architecture or loss change
_MAX_POSITIONS = 16  # pieces past this share the last position embedding
_HELD_OUT = 0.05
_STATS = (  # a freshly trained network's held-out fit, next to the subword mean's
    "hypernet %(slot)s: held-out cosine %(val_cosine).4f (subword mean %(baseline_cosine).4f), "
    "MSE %(val_mse).4f (subword mean %(baseline_mse).4f) on %(val_tokens)d tokens; "
    "%(train_examples)d examples, %(seconds).0f s"
)


class PieceHypernet(nn.Module):
    """Maps the standardised rows of a token's pieces (B, L, D) to its standardised row (B, D)."""

    def __init__(self, dim: int, *, hidden: int, layers: int, heads: int) -> None:
        super().__init__()
        self.project = nn.Linear(dim, hidden)
        self.position = nn.Embedding(_MAX_POSITIONS, hidden)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, 2 * hidden, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, dim)
        nn.init.zeros_(self.head.weight)  # the untrained network predicts the subword mean
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, L, D) piece rows; mask: (B, L) bool, True for real pieces -> (B, D)."""
        positions = torch.arange(x.shape[1]).clamp_max(_MAX_POSITIONS - 1)
        h = self.project(x) + self.position(positions)[None]
        h = self.encoder(h, src_key_padding_mask=~mask)
        weights = (mask.float() / mask.sum(dim=1, keepdim=True).clamp_min(1))[:, :, None]
        return (x * weights).sum(dim=1) + self.head(self.norm((h * weights).sum(dim=1)))


@dataclass(frozen=True)
class Standardiser:
    """Row standardisation: (row - mu) / sigma with mu (D,) the mean row and sigma a scalar."""

    mu: torch.Tensor
    sigma: float

    @classmethod
    def of(cls, old: torch.Tensor) -> Standardiser:
        """The standardisation of ``old`` (V, D): its mean row, and its RMS distance from it.

        One scalar, not one per column, so that cosines between centred rows are unchanged.
        """
        mu = old.mean(dim=0)
        return cls(mu, float((old - mu).pow(2).mean().sqrt().clamp_min(1e-12)))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """(..., D) rows in standardised units."""
        return (rows - self.mu) / self.sigma

    def inverse(self, rows: torch.Tensor) -> torch.Tensor:
        """(..., D) standardised rows back in the base matrix's units."""
        return rows * self.sigma + self.mu


def hypernet_rows(inp: MethodInput) -> torch.Tensor:
    """(N, D): the slot's trained hypernetwork applied to each token's pieces; unspellable: mean."""
    if inp.old_tokenizer is None:
        raise TokengraftError("hypernet needs the old tokenizer to build its training set")
    old = inp.old.float()
    scale = Standardiser.of(old)
    spelled = [list(p) if p else [] for p in inp.pieces]
    out = old.mean(dim=0).repeat(len(spelled), 1)  # (N, D)
    rows = [n for n, p in enumerate(spelled) if p]
    if not rows:  # nothing to predict: no training either
        return out.to(inp.old.dtype)
    with torch_threads(int(inp.params["threads"])):
        net = trained_hypernet(inp, old, scale)
        std_old = scale.forward(old)
        for start in range(0, len(rows), 1024):
            idx = rows[start : start + 1024]
            out[idx] = scale.inverse(predict(net, std_old, [spelled[n] for n in idx]))
    return out.to(inp.old.dtype)


def predict(
    net: PieceHypernet, std_old: torch.Tensor, pieces: Sequence[Sequence[int]]
) -> torch.Tensor:
    """(B, D) standardised predictions for B non-empty piece lists."""
    x, mask = _batch(std_old, pieces)
    with torch.inference_mode():
        return net.eval()(x, mask)


def _batch(
    std_old: torch.Tensor, pieces: Sequence[Sequence[int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L, D) piece rows padded with row 0, and (B, L) bool: True for real pieces."""
    ids = pad_sequence([torch.tensor(p, dtype=torch.long) for p in pieces], batch_first=True)
    lengths = torch.tensor([len(p) for p in pieces])
    mask = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
    return std_old[ids], mask


# ---------------------------------------------------------------------------------------------
# Training.


def trained_hypernet(inp: MethodInput, old: torch.Tensor, scale: Standardiser) -> PieceHypernet:
    """The slot's network for ``old`` (V_old, D) float32, in eval mode: cached, or trained now.

    It is cached when ``inp.extras.cache_dir`` is given.
    """
    seed = int(inp.generator.initial_seed())
    vocab = canonical_vocab(inp.old_tokenizer)  # type: ignore[arg-type]
    net = _new_net(old.shape[1], inp.params, seed)
    # The held-out statistics, stored as the cache file's metadata for whoever inspects it:
    # train() fills them in before cached_tensors writes the file.
    stats: dict[str, str] = {}

    def train() -> dict[str, torch.Tensor]:
        found = train_hypernet(net, old, scale, inp.old_tokenizer, vocab, inp.params, seed)  # type: ignore[arg-type]
        log.info(_STATS, {"slot": str(inp.slot), **found})
        stats.update({k: str(v) for k, v in found.items()})
        return net.state_dict()

    net.load_state_dict(cached_tensors(_cache_path(inp, vocab, seed), train, metadata=stats))
    return net.eval()


def _cache_path(inp: MethodInput, vocab: CanonicalVocab, seed: int) -> Path | None:
    """``<cache_dir>/hypernet/<slot>-<key>.safetensors``, keyed by what training depends on."""
    if inp.extras.cache_dir is None:
        return None
    surfaces = [t.surface if t is not None else b"\xff" for t in vocab.tokens]
    settings = json.dumps({k: v for k, v in sorted(inp.params.items()) if k != "threads"})
    key = cache_key(_VERSION, inp.old, surfaces, str(inp.slot), settings, str(seed))
    return Path(inp.extras.cache_dir) / "hypernet" / f"{inp.slot}-{key}.safetensors"


def _new_net(dim: int, params: Any, seed: int) -> PieceHypernet:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return PieceHypernet(
            dim,
            hidden=int(params["hidden"]),
            layers=int(params["layers"]),
            heads=int(params["heads"]),
        )


def training_examples(
    old_tok: PreTrainedTokenizerBase,
    vocab: CanonicalVocab,
    n_rows: int,
    *,
    splits: int,
    generator: torch.Generator,
) -> tuple[list[int], list[list[int]]]:
    """Old tokens respelled by other old tokens, the training set of the hypernetwork.

    A token of at least two bytes is cut at up to ``splits`` distinct random character boundaries
    (byte boundaries if it is a single character), and each half is spelled by the old tokenizer.
    Every piece is shorter than the token, so no token spells itself.

    Args:
        old_tok: the old tokenizer, which spells the halves.
        vocab: its canonical vocabulary.
        n_rows: V_old, rows of the old matrix; tokens and pieces past it are left out.
        splits: cuts per token.
        generator: draws the cuts.

    Returns:
        Per example, the target old id and the old ids spelling its two halves, in order.
    """
    targets: list[int] = []
    halves: list[CanonicalToken] = []
    for i, token in enumerate(vocab.tokens[:n_rows]):
        if token is None or token.special or len(token.surface) < 2:
            continue
        surface = token.surface
        cuts = [p for p in range(1, len(surface)) if surface[p] & 0xC0 != 0x80]
        cuts = cuts or list(range(1, len(surface)))
        chosen = torch.randperm(len(cuts), generator=generator)[:splits].tolist()
        for c in chosen:
            targets.append(i)
            halves += [CanonicalToken(surface[: cuts[c]]), CanonicalToken(surface[cuts[c] :])]
    spelled = decompose(old_tok, vocab, halves)
    keep_targets: list[int] = []
    pieces: list[list[int]] = []
    for n, target in enumerate(targets):
        left, right = spelled[2 * n], spelled[2 * n + 1]
        if left and right and all(i < n_rows for i in left + right):
            keep_targets.append(target)
            pieces.append(left + right)
    return keep_targets, pieces


def train_hypernet(
    net: PieceHypernet,
    old: torch.Tensor,
    scale: Standardiser,
    old_tok: PreTrainedTokenizerBase,
    vocab: CanonicalVocab,
    params: Any,
    seed: int,
) -> dict[str, float]:
    """Fit ``net`` to rebuild ``old`` rows from respelled pieces (see :func:`training_examples`).

    Args:
        net: the network, trained in place.
        old: (V_old, D) float32 base rows.
        scale: the standardisation of ``old``.
        old_tok: the old tokenizer.
        vocab: its canonical vocabulary.
        params: the method's parameters (``splits``, ``epochs``, ``lr``, ...).
        seed: seeds the examples, the held-out split and the batch order.

    Returns:
        Held-out cosine and MSE of the network and of the subword mean, counts, and seconds.
    """
    timer = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    targets, pieces = training_examples(
        old_tok, vocab, old.shape[0], splits=int(params["splits"]), generator=generator
    )
    if not targets:
        raise TokengraftError("hypernet: no old token can be spelled by other old tokens")
    train, val = _split_by_token(targets, generator)
    std_old = scale.forward(old)
    steps = _fit(net, std_old, scale, targets, pieces, train, params, generator, timer)
    net.eval()
    val_pieces = [pieces[n] for n in val]
    truth = old[[targets[n] for n in val]]  # (n_val, D)
    pred = scale.inverse(predict(net, std_old, val_pieces)) if val else truth
    base = torch.stack([old[p].mean(dim=0) for p in val_pieces]) if val else truth
    return {
        "val_cosine": _cosine(pred, truth) if val else math.nan,
        "baseline_cosine": _cosine(base, truth) if val else math.nan,
        "val_mse": _mse(pred, truth, scale) if val else math.nan,
        "baseline_mse": _mse(base, truth, scale) if val else math.nan,
        "val_tokens": float(len(val)),
        "train_examples": float(len(train)),
        "steps": float(steps),
        "seconds": time.perf_counter() - timer,
    }


def _split_by_token(
    targets: Sequence[int], generator: torch.Generator
) -> tuple[list[int], list[int]]:
    """Example indices for training and validation; 5% of the tokens (first example each) held out."""
    tokens = sorted(set(targets))
    order = torch.randperm(len(tokens), generator=generator).tolist()
    n_val = int(len(tokens) * _HELD_OUT) if len(tokens) >= 20 else 0
    held = {tokens[i] for i in order[:n_val]}
    val: list[int] = []
    seen: set[int] = set()
    train: list[int] = []
    for n, t in enumerate(targets):
        if t not in held:
            train.append(n)
        elif t not in seen:
            seen.add(t)
            val.append(n)
    return train, val


def _fit(
    net: PieceHypernet,
    std_old: torch.Tensor,
    scale: Standardiser,
    targets: Sequence[int],
    pieces: Sequence[Sequence[int]],
    train: Sequence[int],
    params: Any,
    generator: torch.Generator,
    timer: float,
) -> int:
    """AdamW with warm-up and cosine decay for ``epochs`` epochs; returns the steps taken."""
    batch_size = int(params["batch_size"])
    per_epoch = math.ceil(len(train) / batch_size)
    total = max(per_epoch * int(params["epochs"]), 1)
    optimizer = torch.optim.AdamW(net.parameters(), lr=float(params["lr"]), weight_decay=0.01)
    warmup = min(100, total // 10 + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(  # min(warm-up, cosine): no stock scheduler
        optimizer,
        lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0)))),
    )
    train_t = torch.tensor(train, dtype=torch.long)
    net.train()
    step = 0
    for _ in range(int(params["epochs"])):
        for chunk in train_t[torch.randperm(len(train_t), generator=generator)].split(batch_size):
            x, mask = _batch(std_old, [pieces[n] for n in chunk.tolist()])
            y = std_old[[targets[n] for n in chunk.tolist()]]
            pred = net(x, mask)
            loss = F.mse_loss(pred, y) + float(params["cosine_weight"]) * (
                1 - F.cosine_similarity(scale.inverse(pred), scale.inverse(y), dim=1).mean()
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if time.perf_counter() - timer > float(params["max_seconds"]):
                log.warning("hypernet: stopped at step %d of %d (max_seconds)", step, total)
                return step
    return step


def _cosine(pred: torch.Tensor, truth: torch.Tensor) -> float:
    return float(F.cosine_similarity(pred.float(), truth.float(), dim=1).mean())


def _mse(pred: torch.Tensor, truth: torch.Tensor, scale: Standardiser) -> float:
    """Mean squared error in standardised units (1.0: as far off as a random old row)."""
    return float(F.mse_loss(scale.forward(pred.float()), scale.forward(truth.float())))


SPEC = register(
    MethodSpec(
        name="hypernet",
        fn=hypernet_rows,
        summary="small transformer over the piece rows, trained to rebuild the base vocabulary",
        paper="https://arxiv.org/abs/2405.07883",
        params={
            "hidden": Param(default=256, type=int, min=1, max=8192, help="network width"),
            "layers": Param(default=2, type=int, min=1, max=64, help="transformer layers"),
            "heads": Param(default=4, type=int, min=1, max=256, divides="hidden", help="heads"),
            "epochs": Param(default=3, type=int, min=0, max=1000, help="passes over old vocab"),
            "batch_size": Param(default=128, type=int, min=1, max=65536, help="tokens per step"),
            "lr": Param(default=1e-3, type=float, positive=True, max=10.0, help="AdamW rate"),
            "splits": Param(default=1, type=int, min=1, max=64, help="spellings per token"),
            "cosine_weight": Param(default=1.0, type=float, min=0.0, max=1e6, help="cosine loss"),
            "max_seconds": Param(default=900.0, type=float, positive=True, help="time limit"),
            "threads": Param(default=1, type=int, min=1, max=1024, help="torch threads"),
        },
    )
)
