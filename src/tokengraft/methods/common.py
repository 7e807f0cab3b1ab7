"""How many intra-op threads a method's own small-tensor work uses (shared by learned methods)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the body with ``n`` intra-op threads (0: unchanged), then restore the previous count.

    Small matrices gain little from a second thread, and on a shared machine the threads'
    synchronisation can make each step many times slower. Measured on 2 busy cores: a small
    training step took 35 ms with 1 thread and 1.9 s with 2, and MiniLM ran at 900 strings/s with
    1 thread against 90-1,400 (erratic) with 2.
    """
    previous = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
