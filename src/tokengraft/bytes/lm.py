"""Exact next-byte probabilities of a tokenized language model (``ByteLM``).

A tokenized LM defines a distribution over byte strings: draw tokens until an end-of-text token
and concatenate their bytes. The probability that the text starts with bytes ``x`` is the sum,
over every token sequence whose bytes first reach or pass the end of ``x`` with its last token
and agree with ``x`` (a *cover* of ``x``), of the sequence's probability. Phan et al. (2024),
"Exact Byte-Level Probabilities from Tokenized Language Models for FIM-Tasks and Model
Ensembles", arXiv 2410.09303, and Hayase et al. (2025), "Sampling from Your Language Model One
Byte at a Time", arXiv 2506.14123 (ByteSampler's valid covering tree), compute this sum.

Where this differs from the papers and their code:

* **Canonical tokenizations by default, all of them on request.** ``ByteConfig(canonical=True)``
  (the default) keeps, as both papers do, only token sequences the tokenizer could produce,
  checked pairwise as ByteSampler and Vieira et al. (2025, arXiv 2506.07956) do for BPE
  (:mod:`tokengraft.bytes.pairs`, an approximation for a regex pre-tokenizer). Unlike Phan et
  al., the model's mass on other sequences is not assumed to be zero: it is left out. So
  ``logprob`` is log2 of the model's mass on canonical covers, not renormalised: token-level
  bits >= canonical byte-level bits >= all-tokenization bits (tested). It is the default
  because token-level scoring assumes it: the canonical tokenization is the one it scores, so
  canonical byte-level scores differ from token-level ones only by the covers that end past
  the text, sequences that pass the pairwise test without being canonical, and the mass of
  special tokens (see below). Next-byte distributions (``logprobs``, generation, ensembles)
  are that mass split by next byte and renormalised over the 257 outcomes, so in canonical
  mode ``push`` returns at most ``logprobs()[byte]``: the difference is the share of the mass
  that the model sends to non-canonical next tokens at the current token boundaries, the same
  for every byte. Known failure: on Gemma-3 with the default pruning, canonical mode can lose
  every cover of a byte the text continues with (after ``"rs and footers"`` the ``.`` is
  refused with "cannot express byte"); ``canonical=False`` (``--all-tokenizations``) scores
  that text. ``canonical=False`` counts every token sequence that spells the bytes (any
  tokenizer family, no tokenizer model needed); the number of sequences then grows with the
  text, see the next point.
* **Pruning, documented and bounded.** With ``ByteConfig.prune = 0`` and no cap the result is
  exact over canonical tokenizations, or over all of them with ``canonical=False``
  (:data:`EXACT`; tests check both against brute force). By default, after each byte a
  hypothesis whose share of the prefix's mass is below ``prune``, or beyond the
  ``max_hypotheses`` heaviest, is dropped. The result is then *exactly* the byte distribution of
  the model conditioned on not using the dropped token prefixes; each dropped one held less than
  ``prune`` of the mass when it was dropped. In canonical mode pruning can drop every
  canonical cover of a byte that follows; that byte is then scored through the non-canonical
  covers of the kept hypotheses (against their whole mass) rather than given probability zero.
* **Special tokens.** BOS, chat markers, ``<unk>`` and other special tokens spell no text: the
  next-token distribution is renormalised over the text tokens and the end-of-text tokens (EOS
  and ``<|endoftext|>``-like markers), whose mass is the probability that the text ends.
* **Conditioning.** Every text starts after one prefix token, BOS else EOS, as ``eval model``
  does, and after the tokenizer's lead bytes (a SentencePiece dummy-prefix space).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft.bytes.pairs import CanonicalPairs
from tokengraft.bytes.runner import Node, Runner
from tokengraft.bytes.vocab import ByteVocab
from tokengraft.errors import TokengraftError

END = 256  # index of "the text ends here" in a next-byte vector of 257


@dataclass(frozen=True, kw_only=True)
class ByteConfig:
    """How much of the tokenization tree :class:`ByteLM` keeps.

    Attributes:
        prune: drop a hypothesis whose share of the current prefix mass falls below this
            (0: keep every one, exact).
        max_hypotheses: keep at most this many hypotheses after each byte (0: no cap).
        canonical: keep only token sequences that pass the pairwise canonicality test
            (:mod:`tokengraft.bytes.pairs`; BPE tokenizers only); False: every tokenization.
        batch: hypotheses forwarded together in one pass (1: one at a time). Only speed
            and memory depend on it, not the results (up to float rounding).

    The pruning defaults were measured on 800 bytes of the English *training* text with
    SmolLM2 over all tokenizations (token level 1.154 bits/byte): ``prune=1e-2,
    max_hypotheses=8`` gave 1.141; ``1e-3, 16`` gave 1.129 at several times the forward passes;
    ``5e-2, 4`` gave 1.190, worse than token level (the tokenization the text continued with
    had been dropped while it was unlikely). They have not been re-measured in canonical mode.
    """

    prune: float = 1e-2
    max_hypotheses: int = 8
    canonical: bool = True
    batch: int = 32

    def __post_init__(self) -> None:
        if not 0.0 <= self.prune < 1.0:
            raise TokengraftError(f"prune must be in [0, 1), got {self.prune}")
        if self.max_hypotheses < 0:
            raise TokengraftError(f"max_hypotheses must be >= 0, got {self.max_hypotheses}")
        if self.batch < 1:
            raise TokengraftError(f"batch must be >= 1, got {self.batch}")


EXACT = ByteConfig(prune=0.0, max_hypotheses=0, canonical=False)  # every tokenization, no pruning


class ByteLM:
    """A tokenized causal LM seen as a model of bytes.

    Args:
        model: a causal LM (Hugging Face ``PreTrainedModel``), used in eval mode.
        tokenizer: its fast tokenizer (any family :mod:`tokengraft.vocab.canonical` knows).
        config: canonical or all tokenizations, and pruning (:data:`EXACT`: all, unpruned).
        prefix_token: the token every text is conditioned on (default: BOS, else EOS).

    Raises:
        TokengraftError: the tokenizer has no BOS or EOS token and no ``prefix_token`` is given,
            it does not fit the model, or ``config.canonical`` is set and it is not a BPE.

    Example:
        >>> lm = ByteLM(model, tokenizer)  # doctest: +SKIP
        >>> lm.next_byte_logprobs(b"Hello wor").exp()[ord("l")]  # doctest: +SKIP
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        config: ByteConfig = ByteConfig(),  # noqa: B008 - frozen, so a shared default is safe
        *,
        prefix_token: int | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.vocab = ByteVocab(tokenizer)
        width = _logit_width(model)
        self.allowed = self.vocab.allowed_mask(width)
        self.pairs = CanonicalPairs(tokenizer, self.vocab, width) if config.canonical else None
        prefix = prefix_token
        if prefix is None:
            prefix = tokenizer.bos_token_id
            prefix = tokenizer.eos_token_id if prefix is None else prefix
        if prefix is None:
            raise TokengraftError("the tokenizer has no BOS or EOS token to start a text with")
        self.prefix_token = int(prefix)

    def start(self, prefix: bytes = b"", *, upcoming: bytes = b"") -> ByteState:
        """A state after the lead bytes and ``prefix``, ready for :meth:`ByteState.push`.

        ``upcoming`` (bytes expected to be pushed next, such as a text to score) only saves
        time: their canonical tokens are forwarded in chunks, as token-level scoring does.

        Raises:
            TokengraftError: ``prefix`` holds a byte the tokenizer cannot express.
        """
        self.vocab.check_expressible(prefix)
        state = ByteState(self, self.canonical_ids(self.vocab.lead + prefix + upcoming))
        state.offset = len(self.vocab.lead)
        for byte in self.vocab.lead + prefix:
            state.push(byte)
        return state

    def next_byte_logprobs(self, prefix: bytes) -> torch.Tensor:
        """(257,) float64 natural log-probabilities of each next byte, then of the text ending.

        Raises:
            TokengraftError: ``prefix`` holds a byte the tokenizer cannot express.
        """
        return self.start(prefix).logprobs()

    def logprob(self, data: bytes, *, context: bytes = b"") -> float:
        """log2 P(the text continues ``context`` with ``data``): the sum of its byte conditionals.

        The end of the text is not scored: this is the probability that the text *starts* with
        ``context + data``, over that of ``context`` (as token-level bits per byte scores no EOS).

        Raises:
            TokengraftError: ``data`` or ``context`` holds a byte the tokenizer cannot express.
        """
        self.vocab.check_expressible(data)
        state = self.start(context, upcoming=data)
        return sum(state.push(b) for b in data) / math.log(2)

    def canonical_ids(self, stream: bytes) -> list[int]:
        """The tokenizer's tokens for the longest valid UTF-8 start of ``stream`` (lead included).

        Cut at the first token whose bytes do not continue the stream (a normaliser that changes
        text, an ``<unk>``): what is returned always spells a prefix of ``stream``.
        """
        text = stream[len(self.vocab.lead) :]
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            decoded = text[: exc.start].decode("utf-8")
        ids = self.tokenizer(decoded, add_special_tokens=False, verbose=False)["input_ids"]
        out, pos = [], 0
        for token in ids:
            surface = self.vocab.surfaces.get(token)
            if surface is None or stream[pos : pos + len(surface)] != surface:
                break
            out.append(token)
            pos += len(surface)
        return out


def _logit_width(model: PreTrainedModel) -> int:
    head = model.get_output_embeddings()
    if head is not None and hasattr(head, "weight"):
        return int(head.weight.shape[0])
    return int(model.config.vocab_size)


class ByteState:
    """The covers of a byte prefix: the frontier of the tokenization tree, and its mass.

    A frontier node is a token sequence that spells ``stream[:node.end]``; its remainder
    ``stream[node.end:]`` must be the start of some token, which would cover the prefix.
    ``log_mass`` is the log of the total probability of all covers through the frontier.
    """

    def __init__(self, lm: ByteLM, trunk: list[int] | None = None) -> None:
        self.lm = lm
        trunk_ids = [lm.prefix_token, *(trunk or [])]
        self.runner = Runner(lm.model, lm.allowed, trunk_ids, batch=lm.config.batch)
        root = Node(None, lm.prefix_token, 0, 0.0)
        self.runner.forward(root)
        self.frontier = [root]
        self.log_mass = 0.0
        self.stream = bytearray()
        self.offset = 0  # lead bytes at the start of the stream, not part of the user's text
        self._logprobs: torch.Tensor | None = None  # memo of logprobs() until the next push

    @property
    def text(self) -> bytes:
        """The bytes pushed so far, without the lead bytes."""
        return bytes(self.stream[self.offset :])

    def logprobs(self) -> torch.Tensor:
        """(257,) float64 natural log-probabilities of the next byte and of the end (index 256)."""
        if self._logprobs is None:
            self._logprobs = self._compute_logprobs()
        return self._logprobs.clone()

    def _compute_logprobs(self) -> torch.Tensor:
        canonical = self.lm.pairs is not None
        probs = self._next_byte_mass(canonical=canonical)
        if canonical and not probs.sum() > 0:  # pruned to no canonical continuation (see push)
            probs = self._next_byte_mass(canonical=False)
        return (probs / probs.sum()).log()

    def _next_byte_mass(self, *, canonical: bool) -> torch.Tensor:
        """(257,) float64: each next byte's (and the end's) share of the frontier's mass."""
        probs = torch.zeros(257, dtype=torch.float64)
        ends = torch.tensor(self.lm.vocab.end_ids, dtype=torch.long)
        for node in self.frontier:
            rest = bytes(self.stream[node.end :])
            weight = math.exp(node.logq - self.log_mass)
            children = self.lm.vocab.children(rest)
            if len(children.ids):
                logq = self._child_logq(node, children.ids, canonical=canonical)
                probs.index_add_(0, children.next_byte, logq.exp() * weight)
            if not rest and len(ends):
                probs[END] += self._child_logq(node, ends, canonical=canonical).exp().sum() * weight
        return probs

    def _child_logq(self, node: Node, ids: torch.Tensor, *, canonical: bool) -> torch.Tensor:
        """(K,) log-probabilities of the tokens ``ids`` after ``node``; -inf where not canonical."""
        assert node.next_logq is not None
        logq = node.next_logq[ids]
        if canonical and self.lm.pairs is not None:
            logq = logq.masked_fill(~self.lm.pairs.allowed(node.token, ids), float("-inf"))
        return logq

    def push(self, byte: int) -> float:
        """Append one byte; return its natural log-probability given the bytes before it.

        In canonical mode this is the byte's share of the canonical mass, not renormalised
        (see the module docstring), so that a text's values sum to its canonical log-mass.

        Raises:
            TokengraftError: no token sequence spells the bytes with this one appended.
        """
        self._logprobs = None
        canonical = self.lm.pairs is not None
        candidates, base = self._candidates(byte, canonical=canonical), self.log_mass
        if not candidates and canonical:
            # Pruning dropped every canonical cover: go on through the others, for this byte.
            candidates, base = self._candidates(byte, canonical=False), self._unmasked_mass()
        if not candidates:
            raise TokengraftError(
                f"the tokenizer cannot express byte 0x{byte:02x} at offset "
                f"{len(self.stream) - self.offset}: no token sequence spells the text up to it"
            )
        masses = torch.tensor([m for m, _ in candidates], dtype=torch.float64)
        numerator = float(masses.logsumexp(0))
        kept = self._prune(candidates, numerator)
        old = self.frontier
        self.stream.append(byte)
        self.runner.forward_many([node for _, node in kept if node.next_logq is None])
        self.frontier = [node for _, node in kept]
        self.log_mass = float(torch.tensor([m for m, _ in kept]).double().logsumexp(0))
        alive = {id(n) for n in self.frontier}
        for node in old:
            if id(node) not in alive:
                node.next_logq = None
        return numerator - base

    def _unmasked_mass(self) -> float:
        """Natural log of the frontier's mass over every tokenization (no canonical test)."""
        masses = []
        for node in self.frontier:
            assert node.next_logq is not None
            ids = self.lm.vocab.children(bytes(self.stream[node.end :])).ids
            tail = float(node.next_logq[ids].logsumexp(0)) if node.end < len(self.stream) else 0.0
            masses.append(node.logq + tail)
        return float(torch.tensor(masses, dtype=torch.float64).logsumexp(0))

    def _candidates(self, byte: int, *, canonical: bool) -> list[tuple[float, Node]]:
        """(log mass, node) of every cover of the prefix with ``byte``: new and staying nodes."""
        out: list[tuple[float, Node]] = []
        end = len(self.stream) + 1
        for node in self.frontier:
            children = self.lm.vocab.children(bytes(self.stream[node.end :]) + bytes([byte]))
            if children.exact:
                exact = torch.tensor(children.exact, dtype=torch.long)
                each = (node.logq + self._child_logq(node, exact, canonical=canonical)).tolist()
                out += [
                    (lq, Node(node, t, end, lq))
                    for t, lq in zip(children.exact, each, strict=True)
                    if lq > float("-inf")
                ]
            if len(children.ids):
                logq = self._child_logq(node, children.ids, canonical=canonical)
                mass = node.logq + float(logq.logsumexp(0))
                if mass > float("-inf"):
                    out.append((mass, node))
        return out

    def _prune(
        self, candidates: list[tuple[float, Node]], numerator: float
    ) -> list[tuple[float, Node]]:
        """The candidates kept after a byte (see docs/bytes.md, "Pruning").

        Those with a share >= ``prune``, at most ``max_hypotheses``, at least the heaviest, and
        the heaviest that ends at the new byte.
        """
        config = self.lm.config
        ranked = sorted(candidates, key=lambda c: -c[0])
        if config.prune > 0:
            floor = numerator + math.log(config.prune)
            ranked = ranked[:1] + [c for c in ranked[1:] if c[0] >= floor]
        if config.max_hypotheses:
            ranked = ranked[: config.max_hypotheses]
        end = len(self.stream) + 1
        boundary = [c for c in candidates if c[1].end == end]
        if boundary and not any(node.end == end for _, node in ranked):
            # The heaviest node at the boundary can go on with any byte the tokenizer spells
            # alone, so a pruned frontier never gives the true next byte probability zero (in
            # canonical mode that pair may fail the test; push then falls back, see there).
            ranked.append(max(boundary, key=lambda c: c[0]))
        return ranked
