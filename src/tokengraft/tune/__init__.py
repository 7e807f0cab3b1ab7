"""Training embedding rows through the frozen model: next-token loss and distillation.

A layer below ``methods`` and above ``io``, ``eval`` and ``vocab``; it imports neither
``methods`` nor ``grafting``. The pieces, bottom up:

* ``config``: :class:`TuneConfig`, the run's settings;
* ``data``: the token stream and its windows; ``align``: byte positions of two tokenisations and
  the positions where a student and a teacher window align;
* ``rows``: which rows train; ``model``: the model called with new matrices, never modified;
* ``step``: one batch's losses; ``optim``: Adam and the stateless schedule;
* ``device`` (the one place that picks and moves to a device) and ``distributed`` (data
  parallelism over ``torchrun`` processes);
* ``trainer``: :func:`create_trainer` and :meth:`Trainer.step`; ``loop``: :func:`fit`;
* ``state``: a trainer's state for ``--resume``; ``heldout``: held-out bits per byte;
* ``record``: ``tune.json``; ``run``: :func:`tune_checkpoint`, disk to disk.
"""

from tokengraft.tune.align import distill_data
from tokengraft.tune.config import Device, TuneConfig
from tokengraft.tune.data import TrainData, lm_data, start_id, token_stream, windows
from tokengraft.tune.loop import Every, fit
from tokengraft.tune.model import Student, WithMatrices, embedding_parameter_names
from tokengraft.tune.rows import Rows, trainable_rows
from tokengraft.tune.trainer import History, Trainer, create_trainer

__all__ = [
    "Device",
    "Every",
    "History",
    "Rows",
    "Student",
    "TrainData",
    "Trainer",
    "TuneConfig",
    "WithMatrices",
    "create_trainer",
    "distill_data",
    "embedding_parameter_names",
    "fit",
    "lm_data",
    "start_id",
    "token_stream",
    "trainable_rows",
    "windows",
]
