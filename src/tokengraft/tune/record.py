"""tune.json: the record of one tune run (budget, losses, held-out scores, timing, versions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tokengraft.tune.config import TuneConfig
from tokengraft.tune.trainer import History
from tokengraft.version import versions


@dataclass(frozen=True, kw_only=True)
class TuneReport:
    """What ``tokengraft tune`` did, as written to ``OUT/tune.json``.

    Attributes:
        checkpoint: the input checkpoint.
        teacher: the model distilled from (None: next-token loss only).
        texts: names of the training texts; ``eval_texts`` of the held-out ones.
        config: the run's settings.
        rows: how many rows trained, and in which slots (``input``, ``output``).
        processes: how many processes trained together; ``device`` where process 0 ran.
        history: steps, tokens seen, seconds, per-step losses and held-out bits per byte.
        finished: the budget was spent (False: a periodic checkpoint of a running run).
    """

    checkpoint: str
    teacher: str | None
    texts: tuple[str, ...]
    eval_texts: tuple[str, ...]
    config: TuneConfig
    rows: int
    slots: tuple[str, ...]
    processes: int
    device: str
    history: History
    finished: bool
    versions: dict[str, str] = field(default_factory=versions)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (what ``tune.json`` holds)."""
        history = self.history
        return {
            "checkpoint": self.checkpoint,
            "teacher": self.teacher,
            "texts": list(self.texts),
            "eval_texts": list(self.eval_texts),
            "config": self.config.to_dict(),
            "rows": self.rows,
            "slots": list(self.slots),
            "processes": self.processes,
            "device": self.device,
            "finished": self.finished,
            "steps": history.step,
            "tokens_seen": history.tokens,
            "seconds": history.seconds,
            "final_loss": history.loss[-1] if history.loss else None,
            "bpb": history.bpb,
            "losses": {"loss": history.loss, "lm": history.lm, "distill": history.distill},
            "versions": self.versions,
        }
