"""The state of a :class:`tokengraft.bytes.lm.ByteLM` after some bytes (``ByteState``).

A frontier of hypotheses (token sequences, :class:`tokengraft.bytes.runner.Node`) and their
mass; :meth:`ByteState.push` appends a byte, :meth:`ByteState.logprobs` gives the next byte's
distribution. What is computed, and where it differs from the papers: :mod:`tokengraft.bytes.lm`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from tokengraft.bytes.runner import Node, Runner
from tokengraft.errors import TokengraftError

if TYPE_CHECKING:
    from tokengraft.bytes.lm import ByteLM

END = 256  # index of "the text ends here" in a next-byte vector of 257


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
        self.pruned_nats = 0.0  # sum over bytes of log(covers' mass / kept mass), see push
        self.reserve: Node | None = None  # see _set_reserve
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
        Under pruning the next byte's share is taken of the mass kept, not of all covers, so
        the values sum to more than the log-mass of the covers kept; ``pruned_nats`` counts
        the difference (0 without pruning), and the values' sum minus it is at most the
        log-mass of all covers (the exact value).

        Raises:
            TokengraftError: no token sequence spells the bytes with this one appended.
        """
        self._logprobs = None
        previous = self.log_mass
        candidates, base = self._covers(byte)
        if not candidates and self.reserve is not None:
            self._restart()
            candidates, base = self._covers(byte)
        if not candidates:
            raise self._inexpressible(byte)
        numerator = _logsumexp([m for m, _ in candidates])
        self._keep(candidates, numerator, byte)
        self.pruned_nats += (previous - base) + (numerator - self.log_mass)
        return numerator - base

    def _inexpressible(self, byte: int) -> TokengraftError:
        return TokengraftError(
            f"the tokenizer cannot express byte 0x{byte:02x} at offset "
            f"{len(self.stream) - self.offset}: no token sequence spells the text up to it"
        )

    def _keep(self, candidates: list[tuple[float, Node]], numerator: float, byte: int) -> None:
        """Prune ``candidates``, append ``byte``, forward the new nodes: the next frontier."""
        kept = self._prune(candidates, numerator)
        self._set_reserve(kept, byte)
        old = self.frontier
        self.stream.append(byte)
        self.runner.forward_many([node for _, node in kept if node.next_logq is None])
        self.frontier = [node for _, node in kept]
        self.log_mass = _logsumexp([m for m, _ in kept])
        alive = {id(n) for n in self.frontier}
        for node in old:
            if id(node) not in alive:
                node.next_logq = None

    def _restart(self) -> None:
        """Go back to the reserve and replay the bytes after it from that hypothesis alone.

        Pruning left no hypothesis that can spell the next byte (canonical mode; see
        :meth:`_set_reserve`). The byte is then scored as a share of the replayed mass.
        """
        reserve = self.reserve
        assert reserve is not None
        pending = bytes(self.stream[reserve.end :])
        self.runner.forward_many([reserve] if reserve.next_logq is None else [])
        del self.stream[reserve.end :]
        self.frontier, self.log_mass, self.reserve = [reserve], reserve.logq, None
        for byte in pending:
            candidates, _ = self._covers(byte)
            if not candidates:
                raise self._inexpressible(byte)
            self._keep(candidates, _logsumexp([m for m, _ in candidates]), byte)

    def _covers(self, byte: int) -> tuple[list[tuple[float, Node]], float]:
        """The candidates of ``byte`` and the log-mass they are a share of.

        Canonical ones if any; otherwise (pruning dropped every canonical cover) the others,
        as a share of the frontier's mass over every tokenization.
        """
        if self.lm.pairs is None:
            return self._candidates(byte, canonical=False), self.log_mass
        candidates = self._candidates(byte, canonical=True)
        if candidates:
            return candidates, self.log_mass
        return self._candidates(byte, canonical=False), self._unmasked_mass()

    def _set_reserve(self, kept: list[tuple[float, Node]], byte: int) -> None:
        """Keep aside the heaviest hypothesis ending at ``byte``, if pruning kept none.

        Canonical mode under pruning only. After ``" footer"`` Gemma 3 keeps ``▁footer`` and
        drops ``▁foot``, but spells ``" footers"`` only as ``▁foot ers``: ``▁footer s`` fails
        the pair test, so no kept hypothesis ends after the ``s`` and none can spell the ``.``
        that follows. The reserve, ``▁footer s`` there, is not counted in the mass and not
        forwarded unless :meth:`push` needs it (:meth:`_restart`). When no hypothesis at all
        ends at ``byte``, the reserve of an earlier byte stays. It depends on the bytes so far
        only, never on the bytes to come.
        """
        config = self.lm.config
        if self.lm.pairs is None or not (config.prune > 0 or config.max_hypotheses):
            return
        end = len(self.stream) + 1
        if any(node.end == end for _, node in kept):
            self.reserve = None  # a kept boundary node can go on with any byte
            return
        loose = self._candidates(byte, canonical=False, staying=False)
        if loose:  # else the reserve of an earlier byte stays
            self.reserve = max(loose, key=lambda c: c[0])[1]

    def _unmasked_mass(self) -> float:
        """Natural log of the frontier's mass over every tokenization (no canonical test)."""
        masses = []
        for node in self.frontier:
            assert node.next_logq is not None
            ids = self.lm.vocab.children(bytes(self.stream[node.end :])).ids
            tail = float(node.next_logq[ids].logsumexp(0)) if node.end < len(self.stream) else 0.0
            masses.append(node.logq + tail)
        return float(torch.tensor(masses, dtype=torch.float64).logsumexp(0))

    def _candidates(
        self, byte: int, *, canonical: bool, staying: bool = True
    ) -> list[tuple[float, Node]]:
        """(log mass, node) of every cover of the prefix with ``byte``: new and staying nodes.

        ``staying=False``: only the new nodes (the covers that end at ``byte``).
        """
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
            if staying and len(children.ids):
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


def _logsumexp(values: list[float]) -> float:
    return float(torch.tensor(values, dtype=torch.float64).logsumexp(0))
