"""Auditing a model and its tokenizer: under-trained, unreachable and costly tokens.

A layer beside ``tune``: above ``io``, ``eval`` and ``vocab``, below ``methods``, ``report`` and
``grafting``. The pieces:

* ``reach``: tokens no text encodes to (:func:`unreachable_tokens`);
* ``weights``: the under-training indicator from the output head and the reference set of
  unused tokens (Land & Bartolo 2024, arXiv 2405.05417);
* ``verify``: the repeat prompt that confirms a candidate (:func:`repeat_probability`);
* ``loss``: loss per target token on held-out text (:func:`token_losses`);
* ``records``: :class:`AuditConfig` and the results; ``core``: :func:`audit_model` in memory;
  ``pipeline``: :func:`audit_pretrained`, from names and paths.
"""

from tokengraft.audit.core import audit_model
from tokengraft.audit.loss import TokenLoss, token_losses
from tokengraft.audit.reach import Reachability, unreachable_tokens
from tokengraft.audit.records import AuditConfig, Candidate, LossRow, LossSummary, ModelAudit
from tokengraft.audit.verify import repeat_probability

__all__ = [
    "AuditConfig",
    "Candidate",
    "LossRow",
    "LossSummary",
    "ModelAudit",
    "Reachability",
    "TokenLoss",
    "audit_model",
    "repeat_probability",
    "token_losses",
    "unreachable_tokens",
]
