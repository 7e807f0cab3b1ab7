r"""Which token may follow which in a canonical BPE tokenization (``CanonicalPairs``).

Vieira et al. (2025), "Language Models over Canonical Byte-Pair Encodings", arXiv 2506.07956,
show that for BPE a token sequence is canonical (it is what the tokenizer outputs for its
bytes) if and only if every adjacent pair is, and that a pair ``(a, b)`` is canonical if and
only if BPE encodes ``bytes(a) + bytes(b)`` as exactly ``[a, b]``. ByteSampler (Hayase et al.
2025, arXiv 2506.14123) prunes its covering tree with the same pairwise test.
:meth:`CanonicalPairs.pair_ok` is that test, one pair at a time; :meth:`CanonicalPairs.allowed`
answers it for many ``b`` at once.

Where this differs from the papers and their code:

* **An approximation for tokenizers with a pre-tokenizer.** The theorem is for BPE without
  pre-tokenization. The test runs the tokenizer's BPE model (its merges) on the raw bytes,
  without its normaliser or pre-tokenizer (:meth:`CanonicalPairs.encode`). A byte-level BPE's
  regex pre-tokenizer (GPT-2, SmolLM2, Llama-3) splits the text before BPE sees it, and where
  it splits can depend on what follows: SmolLM2 writes ``"\n\n"`` before a word as ``Ċ Ċ``,
  which pure BPE merges into ``ĊĊ``. So for a byte-level BPE a pair also passes when both
  tokens are canonical alone and the pre-tokenizer separates them, at the end of a text or
  before a letter. Either way the pairwise test only approximates full canonicality: a
  sequence can pass every pair and still differ from the tokenizer's output, and a split that
  depends on other context could make the tokenizer output a pair the test refuses. Measured
  on the first 20 kB of the English, German and code *training* texts: every adjacent pair of
  SmolLM2's and Gemma 3's own tokenizations passes (without the pre-tokenizer rule, 116 of
  4632 SmolLM2 pairs of the English text, all ``Ċ Ċ``, failed). ``ignore_merges`` (Llama-3) is not modelled: a token its merges
  cannot build counts as canonical alone, and as one symbol.
* **Byte fallback.** Bytes that are not valid UTF-8 are encoded as their ``<0xNN>`` pieces;
  valid text goes through BPE, which falls back to bytes for characters not in the
  vocabulary. The three fallback pieces of a character are checked pair by pair, so they pass
  even when the character has a token (pairwise, again).
* **First token.** After the prefix token (BOS, else EOS) a token is allowed if BPE encodes
  its bytes alone as itself. A SentencePiece dummy-prefix space is simply the first byte of
  the first token, so ``("▁", "the")`` fails as any other pair would.
* **No encoding per pair.** Testing ``(a, b)`` for every ``b`` would encode the whole
  vocabulary once per ``a``. Instead each token's BPE derivation is replayed once, and
  ``(a, b)`` is refused when a merge ``(x, y)`` of rank ``r`` exists with ``x`` on ``a``'s
  right spine and ``y`` on ``b``'s left spine, both present at time ``r`` (merges apply in
  rank order; on a tie the left pair goes first). ``tests/test_bytes.py`` checks this against
  :meth:`CanonicalPairs.pair_ok` on every pair of tiny tokenizers of both families; it also
  agreed on 12,000 random pairs of SmolLM2's and of Gemma 3's vocabularies. The blocked set
  is cached per ``a`` (about 7 ms per ``a`` for SmolLM2, 40 ms for Gemma 3). Building the
  index takes about 3 s for SmolLM2 and 15 s for Gemma 3 (262k tokens) on a busy CPU core.
"""

from __future__ import annotations

import bisect
import json
import re
from typing import Any, NamedTuple

import torch
from transformers import PreTrainedTokenizerBase
from transformers.convert_slow_tokenizer import bytes_to_unicode

from tokengraft.bytes.vocab import ByteVocab
from tokengraft.errors import TokengraftError
from tokengraft.vocab.canonical import Family

_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
Spine = list[tuple[int, int, int]]  # (symbol id, rank it was made at or -1, rank it was merged at)


class _Sym(NamedTuple):
    """A symbol of a BPE derivation: a base symbol (``made == -1``) or a merge of two."""

    id: int
    made: int
    left: _Sym | None = None
    right: _Sym | None = None


def _spine(root: _Sym, *, right: bool, never: int) -> Spine:
    """The symbols on one edge of a derivation, the token first, with their lifetimes."""
    out: Spine = []
    gone = never
    node: _Sym | None = root
    while node is not None:
        out.append((node.id, node.made, gone))
        gone = node.made
        node = node.right if right else node.left
    return out


class CanonicalPairs:
    """The pairwise canonicality test of a BPE tokenizer (see the module docstring).

    Args:
        tokenizer: a fast tokenizer whose model is BPE (byte-level, or SentencePiece style).
        vocab: its :class:`ByteVocab`.
        width: the model's logit width (masks are over it).

    Raises:
        TokengraftError: the tokenizer is not a byte-level or SentencePiece-style BPE.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, vocab: ByteVocab, width: int) -> None:
        backend = tokenizer.backend_tokenizer  # type: ignore[attr-defined]
        spec = json.loads(backend.to_str())["model"]
        if spec.get("type") != "BPE" or vocab.family not in (Family.BYTE_LEVEL, Family.METASPACE):
            raise TokengraftError(
                "canonical tokenizations need a byte-level or SentencePiece-style BPE "
                "tokenizer; use all tokenizations (--all-tokenizations, canonical=False)"
            )
        self.vocab = vocab
        self.model = backend.model
        self.byte_level = vocab.family is Family.BYTE_LEVEL
        self.pre = backend.pre_tokenizer if self.byte_level else None
        self.chars = bytes_to_unicode()
        self.pieces: dict[str, int] = spec["vocab"]
        self._read_merges(spec["merges"])
        self.never = len(spec["merges"]) + 1  # "merged at" of a symbol that never is
        self.fallback = {
            i: int(m.group(1), 16) for p, i in self.pieces.items() if (m := _FALLBACK.match(p))
        }
        self.unary = torch.zeros(width, dtype=torch.bool)  # canonical alone, and the end
        self.unary[list(vocab.end_ids)] = True
        self.right: dict[int, Spine] = {}
        left = self._derive_all(tokenizer, bool(spec.get("ignore_merges")))
        self._index(left)
        self._blocked: dict[int, torch.Tensor] = {}

    def _read_merges(self, merges: list[Any]) -> None:
        self.merges: dict[tuple[int, int], tuple[int, int]] = {}  # (x, y) -> (rank, xy)
        self.by_left: dict[int, tuple[list[int], list[int]]] = {}  # x -> (ranks, ys), sorted
        for rank, merge in enumerate(merges):
            x, y = merge.split(" ", 1) if isinstance(merge, str) else merge
            new = self.pieces.get(x + y)
            if new is None or x not in self.pieces or y not in self.pieces:
                continue
            pair = (self.pieces[x], self.pieces[y])
            if pair in self.merges:
                continue
            self.merges[pair] = (rank, new)
            ranks, ys = self.by_left.setdefault(pair[0], ([], []))
            ranks.append(rank)
            ys.append(pair[1])

    def _derive_all(
        self, tokenizer: PreTrainedTokenizerBase, ignore_merges: bool
    ) -> list[tuple[int, int, int, int]]:
        """Replay BPE on every text token: which are canonical alone, and their spines.

        Returns:
            (symbol, token, made, merged) for each symbol on each canonical token's left spine.
        """
        left: list[tuple[int, int, int, int]] = []
        names = tokenizer.convert_ids_to_tokens(list(self.vocab.surfaces))
        for token, piece in zip(self.vocab.surfaces, names, strict=True):
            if token in self.fallback:
                ok, root = self.encode(self.vocab.surfaces[token]) == [token], _Sym(token, -1)
            else:
                base = [self.pieces.get(c) for c in piece] if piece is not None else [None]
                found = self.bpe(base) if None not in base else []  # type: ignore[arg-type]
                ok = len(found) == 1 and found[0].id == token
                root = found[0] if ok else _Sym(token, -1)
                ok = ok or (ignore_merges and piece in self.pieces)
            if ok:
                self.unary[token] = True
                self.right[token] = _spine(root, right=True, never=self.never)
                left += [
                    (y, token, m, g) for y, m, g in _spine(root, right=False, never=self.never)
                ]
        return left

    def _index(self, left: list[tuple[int, int, int, int]]) -> None:
        """Rows (token, made, merged) of each left-spine symbol, as slices of one (3, N) table."""
        table = torch.tensor(left or [(0, 0, 0, 0)], dtype=torch.long)
        table = table[table[:, 0].argsort(stable=True)]
        symbols, counts = table[:, 0].unique_consecutive(return_counts=True)
        ends = counts.cumsum(0)
        starts = (ends - counts).tolist()
        self._span = dict(
            zip(symbols.tolist(), zip(starts, ends.tolist(), strict=True), strict=True)
        )
        self._rows = table[:, 1:].T.contiguous()

    def bpe(self, ids: list[int]) -> list[_Sym]:
        """BPE on base symbol ids: apply the lowest-ranked merge, leftmost first, until none."""
        syms = [_Sym(i, -1) for i in ids]
        pairs = [self.merges.get((x, y)) for x, y in zip(ids, ids[1:], strict=False)]
        while True:
            best = -1
            for k, found in enumerate(pairs):
                if found is not None and (best < 0 or found[0] < pairs[best][0]):  # type: ignore[index]
                    best = k
            if best < 0:
                return syms
            rank, new = pairs.pop(best)  # type: ignore[misc]
            syms[best : best + 2] = [_Sym(new, rank, syms[best], syms[best + 1])]
            if best > 0:
                pairs[best - 1] = self.merges.get((syms[best - 1].id, new))
            if best < len(pairs):
                pairs[best] = self.merges.get((new, syms[best + 1].id))

    def encode(self, data: bytes) -> list[int]:
        """The tokenizer's BPE model on raw bytes (no normaliser, no pre-tokenizer).

        Byte-level: every byte is its GPT-2 character. SentencePiece style: a space is ``▁``,
        and a byte that is not part of valid UTF-8 is its ``<0xNN>`` piece (-1 if absent).
        """
        if self.byte_level:
            return [t.id for t in self.model.tokenize("".join(self.chars[b] for b in data))]
        out: list[int] = []
        pos = 0
        while pos < len(data):
            try:
                end, bad = len(data), None
                text = data[pos:].decode("utf-8")
            except UnicodeDecodeError as exc:
                end, bad = pos + exc.start, data[pos + exc.start]
                text = data[pos:end].decode("utf-8")
            if text:
                out += [t.id for t in self.model.tokenize(text.replace(" ", "▁"))]
            if bad is not None:
                out.append(self.pieces.get(f"<0x{bad:02X}>", -1))
                end += 1
            pos = end
        return out

    def pair_ok(self, a: int, b: int) -> bool:
        """The direct test: BPE encodes ``bytes(a) + bytes(b)`` as exactly ``[a, b]``.

        For a byte-level BPE the pair also passes when each token is canonical alone and the
        pre-tokenizer separates them (see :meth:`split_apart`).
        """
        first, second = self.vocab.surfaces[a], self.vocab.surfaces[b]
        if self.encode(first + second) == [a, b]:
            return True
        alone = self.encode(first) == [a] and self.encode(second) == [b]
        return alone and self.split_apart(a, b)

    def split_apart(self, a: int, b: int) -> bool:
        r"""The pre-tokenizer puts a pre-token boundary between ``a`` and ``b``.

        Tried at the end of a text and before a letter: the regex of GPT-2-style tokenizers
        looks ahead (``\s+(?!\S)`` splits ``"\n\n"`` before a word but not at the end), and
        BPE never merges across pre-tokens. Without this, the pair ``Ċ Ċ`` that SmolLM2's
        tokenizer writes at every paragraph break (before a word) would fail the pure BPE test.
        """
        if self.pre is None:
            return False
        try:
            first = self.vocab.surfaces[a].decode("utf-8")
            text = first + self.vocab.surfaces[b].decode("utf-8")
        except UnicodeDecodeError:
            return False
        for tail in ("", "x"):
            if any(start == len(first) for _, (start, _) in self.pre.pre_tokenize_str(text + tail)):
                return True
        return False

    def allowed(self, after: int, ids: torch.Tensor) -> torch.Tensor:
        """(K,) bool: which of ``ids`` (K,) long may follow token ``after`` canonically.

        ``after`` not a text token (the prefix token): the tokens canonical alone. End-of-text
        tokens are always allowed, except after a text token that is not canonical alone.
        """
        blocked = self._blocked.get(after)
        if blocked is None:
            blocked = self._compute_blocked(after)
            self._blocked[after] = blocked
        ok = self.unary[ids]
        if after in self.vocab.surfaces and not self.unary[after]:
            ok = torch.zeros_like(ok)  # a token not canonical alone is in no canonical pair
        if len(blocked):
            ok &= ~torch.isin(ids, blocked)
        return ok

    def _compute_blocked(self, a: int) -> torch.Tensor:
        """Ids ``b`` that a merge across the boundary of ``a`` then ``b`` would take apart."""
        parts = []
        for x, made, gone in self.right.get(a, []):
            ranks, ys = self.by_left.get(x, ([], []))
            for k in range(bisect.bisect_right(ranks, made), bisect.bisect_left(ranks, gone)):
                span = self._span.get(ys[k])
                if span is not None:
                    token, y_made, y_gone = self._rows[:, span[0] : span[1]]
                    # y must exist at time r and not yet be merged (a tie goes to the left pair).
                    parts.append(token[(y_made < ranks[k]) & (ranks[k] <= y_gone)])
        if a in self.fallback and bool(self.unary[a]):
            bad = [b for b in self.fallback if b in self.vocab.surfaces and not self.pair_ok(a, b)]
            parts.append(torch.tensor(bad, dtype=torch.long))
        if not parts:
            return torch.zeros(0, dtype=torch.long)
        blocked = torch.cat(parts).unique()
        if self.pre is not None:
            apart = [self.split_apart(a, b) for b in blocked.tolist()]
            blocked = blocked[~torch.tensor(apart, dtype=torch.bool)]
        return blocked
