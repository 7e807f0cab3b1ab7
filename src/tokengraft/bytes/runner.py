"""Token sequences as a tree, with the keys and values of each token kept on its node.

Every hypothesis of :class:`tokengraft.bytes.state.ByteState` is a :class:`Node`: a token sequence
that shares its prefix with its parent. The *trunk*, the canonical tokens of the bytes known to
come, is forwarded in chunks like token-level scoring, and its keys and values are kept. A node
off the trunk keeps the keys and values of its own token (one position per layer), so that
forwarding a child costs exactly one token: its cache is the trunk's up to the branch point,
then the stored positions of the branch. ByteSampler (Hayase et al. 2025, arXiv 2506.14123)
shares one KV cache across its covering tree in the same spirit. The new nodes of one byte are
forwarded together: not with tree attention over one shared cache, but as a batch, each with
its own cache padded on the left to the longest (the padding is masked), which reuses the
model's ordinary attention at the price of copying the caches.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import DynamicCache, PreTrainedModel

from tokengraft.errors import TokengraftError

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values (1, heads, n, head_dim)


class Node:
    """A token sequence (this token after its parent's) and what the model says after it.

    Attributes:
        parent: the sequence without this token (None for the root, the prefix token).
        token: this token's id.
        depth: tokens before this one (0 for the root).
        end: bytes of the stream this sequence spells.
        logq: natural log-probability of the sequence after the root, under the renormalised
            model.
        next_logq: (V,) float64 log-probabilities of the next token (None until forwarded, and
            again once the node leaves the frontier, to free memory).
        trunk: the sequence is a prefix of the runner's trunk (forwarded in chunks).
        kv: off the trunk, this token's keys and values in every layer (one position).
    """

    __slots__ = ("depth", "end", "kv", "logq", "next_logq", "parent", "token", "trunk")

    def __init__(self, parent: Node | None, token: int, end: int, logq: float) -> None:
        self.parent = parent
        self.token = token
        self.depth: int = 0 if parent is None else parent.depth + 1
        self.end = end
        self.logq = logq
        self.next_logq: torch.Tensor | None = None
        self.trunk = False  # set by Runner.forward: the sequence is a prefix of the trunk
        self.kv: KV | None = None  # this token's keys and values, for a node off the trunk


def _branch_nodes(node: Node) -> tuple[Node, list[Node]]:
    """The deepest trunk node of ``node``'s sequence, and the nodes after it, root side first."""
    branch = []
    walk = node
    while not walk.trunk:
        branch.append(walk)
        walk = walk.parent  # type: ignore[assignment]
    return walk, branch[::-1]


def _left_padded(pasts: list[KV], width: int) -> KV:
    """Per layer, the keys and values of several caches padded on the left to ``width``, stacked.

    Each of ``pasts`` holds (1, heads, n_i, d) tensors; the result holds (B, heads, width, d).
    """
    out = []
    for i in range(len(pasts[0])):
        keys, values = (
            torch.cat([F.pad(p[i][j], (0, 0, width - p[i][j].shape[-2], 0)) for p in pasts])
            for j in (0, 1)
        )
        out.append((keys, values))
    return out


def _layers(cache: DynamicCache) -> KV:
    """Each layer's keys and values, (1, heads, n, head_dim) each."""
    return [(layer.keys, layer.values) for layer in cache.layers]  # type: ignore[union-attr,misc]


def forward_cached(model: PreTrainedModel, ids: torch.Tensor, cache: DynamicCache) -> torch.Tensor:
    """(L, V) logits of ``ids`` (1, L) after the sequence in ``cache``, which grows by L.

    transformers 5 renamed ``past_key_values`` to ``cache``; both are accepted. The model runs
    in eval mode and is left in the mode it was in.
    """
    return _call(model, cache, input_ids=ids)[0]


def _call(model: PreTrainedModel, cache: DynamicCache, **inputs: torch.Tensor) -> torch.Tensor:
    """(B, L, V) logits of one pass on ``cache`` (which grows), in eval mode and no grad."""
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    was_training = model.training
    model.eval()  # no dropout; the caller's mode is restored
    try:
        with torch.inference_mode():
            out = model(**inputs, use_cache=True, **{name: cache})
    finally:
        model.train(was_training)
    return out.logits


class Runner:
    """Forwards nodes through a causal LM, reusing KV caches between them.

    The *trunk* is a guess of the token sequence most hypotheses follow: the canonical
    tokenization of the bytes known to come (a prompt, a text to score). It is forwarded in
    chunks of ``chunk`` tokens, one pass each, like token-level scoring; its keys and values
    are kept. Any other node is forwarded as one token, on a cache assembled from the
    trunk's keys and values up to its branch point and those stored on its branch's nodes; the
    nodes of one :meth:`forward_many` call share a pass, their caches padded on the left.
    The trunk only saves time: a node's next-token probabilities are the same whichever way
    it is forwarded (up to float rounding).

    Args:
        model: a causal LM returning ``.logits`` (B, L, V) and accepting a KV cache.
        allowed: (V,) bool, the tokens the next-token distribution is renormalised over.
        trunk: token ids, the root's first.
        chunk: trunk tokens per forward pass.
        batch: nodes off the trunk per forward pass (1: one at a time).

    Attributes:
        forwarded_tokens: tokens fed to the model so far, trunk included.
        forward_calls: forward passes so far.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        allowed: torch.Tensor,
        trunk: Sequence[int],
        *,
        chunk: int = 256,
        batch: int = 32,
    ) -> None:
        self.model = model
        self.allowed = allowed
        self.context = getattr(model.config, "max_position_embeddings", None)
        self.trunk_ids = (
            list(trunk)[: self.context] if isinstance(self.context, int) else list(trunk)
        )
        self.chunk = chunk
        self.batch = batch
        self.trunk_cache = DynamicCache()
        self.trunk_rows: dict[int, torch.Tensor] = {}  # depth -> (V,) logits, until used
        self.forwarded_tokens = 0
        self.forward_calls = 0

    def forward(self, node: Node) -> None:
        """Set ``node.next_logq``: the renormalised next-token log-probabilities after it.

        Raises:
            TokengraftError: the sequence is longer than the model's context.
        """
        self.forward_many([node])

    def forward_many(self, nodes: Sequence[Node]) -> None:
        """:meth:`forward` each node; those off the trunk share passes, ``batch`` at a time.

        Every node's parent must have been forwarded already (true of the nodes one byte makes).

        Raises:
            TokengraftError: a sequence is longer than the model's context.
        """
        off = []
        for node in nodes:
            if self._place(node):
                self._finish(node, self._trunk_row(node.depth))
            else:
                off.append(node)
        for start in range(0, len(off), self.batch):
            group = off[start : start + self.batch]
            rows = self._branches(group) if len(group) > 1 else [self._branch(group[0])]
            for node, row in zip(group, rows, strict=True):
                self._finish(node, row)

    def _place(self, node: Node) -> bool:
        """Set and return ``node.trunk``; check that the sequence fits the model's context."""
        if isinstance(self.context, int) and node.depth + 1 > self.context:
            raise TokengraftError(
                f"the text needs more than the model's context of {self.context} tokens; "
                "score a shorter span (--max-bytes)"
            )
        depth = node.depth
        node.trunk = (
            (node.parent is None or node.parent.trunk)
            and depth < len(self.trunk_ids)
            and self.trunk_ids[depth] == node.token
        )
        return node.trunk

    def _finish(self, node: Node, logits: torch.Tensor) -> None:
        logits = logits.double().cpu().masked_fill(~self.allowed, float("-inf"))
        node.next_logq = torch.log_softmax(logits, dim=-1)

    def _trunk_row(self, depth: int) -> torch.Tensor:
        """(V,) logits after the trunk's first ``depth + 1`` tokens, forwarding chunks as needed."""
        done = self.trunk_cache.get_seq_length()
        if depth >= done:
            # Trunk nodes are forwarded in depth order: rows above this depth are never needed.
            self.trunk_rows = {d: r for d, r in self.trunk_rows.items() if d >= depth}
            while depth >= done:
                ids = self.trunk_ids[done : done + self.chunk]
                logits = self._run(ids, self.trunk_cache)
                self.trunk_rows |= {done + i: logits[i] for i in range(len(ids))}
                done += len(ids)
        return self.trunk_rows.pop(depth)

    def _past(self, node: Node) -> KV:
        """Keys and values of ``node``'s sequence without its own token, (1, heads, depth, d)."""
        assert node.parent is not None  # the root is always on the trunk
        base, branch = _branch_nodes(node.parent)
        n = base.depth + 1
        stored = [b.kv for b in branch if b.kv is not None]
        layers = []
        for i, (keys, values) in enumerate(_layers(self.trunk_cache)):
            k = torch.cat([keys[..., :n, :], *(kv[i][0] for kv in stored)], dim=-2)
            v = torch.cat([values[..., :n, :], *(kv[i][1] for kv in stored)], dim=-2)
            layers.append((k, v))
        return layers

    def _branch(self, node: Node) -> torch.Tensor:
        """(V,) logits after a node off the trunk: one token on an assembled cache."""
        cache = DynamicCache(self._past(node))
        logits = self._run([node.token], cache)[-1]
        node.kv = [(k[..., -1:, :].clone(), v[..., -1:, :].clone()) for k, v in _layers(cache)]
        return logits

    def _branches(self, nodes: list[Node]) -> list[torch.Tensor]:
        """(V,) logits after each node off the trunk: one token each, all in one pass.

        The caches differ in length, so they are padded on the left and the padding is masked;
        each token gets its own position (its depth), so the result is that of :meth:`_branch`
        up to float rounding. A model with a sliding window shorter than the longest cache is
        forwarded one node at a time instead (the window would count the padding).
        """
        pasts = [self._past(node) for node in nodes]
        lengths = [past[0][0].shape[-2] for past in pasts]
        width = max(lengths)
        window = getattr(self.model.config, "sliding_window", None)
        if isinstance(window, int) and width + 1 > window:
            return [self._branch(node) for node in nodes]
        mask = torch.ones(len(nodes), width + 1, dtype=torch.long)
        for row, n in enumerate(lengths):
            mask[row, : width - n] = 0
        cache = DynamicCache(_left_padded(pasts, width))
        device = self.model.device
        self.forwarded_tokens += len(nodes)
        self.forward_calls += 1
        logits = _call(
            self.model,
            cache,
            input_ids=torch.tensor([[n.token] for n in nodes], device=device),
            attention_mask=mask.to(device),
            position_ids=torch.tensor([[n.depth] for n in nodes], device=device),
        )
        for row, node in enumerate(nodes):
            node.kv = [
                (k[row : row + 1, :, -1:, :].clone(), v[row : row + 1, :, -1:, :].clone())
                for k, v in _layers(cache)
            ]
        return list(logits[:, -1])

    def _run(self, tokens: list[int], cache: DynamicCache) -> torch.Tensor:
        self.forwarded_tokens += len(tokens)
        self.forward_calls += 1
        return forward_cached(self.model, torch.tensor([tokens], device=self.model.device), cache)
