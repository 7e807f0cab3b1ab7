"""Run inside the mergekit venv: time tokensurgeon's ``batch_omp`` on saved inputs.

Usage: ``python -P mergekit_omp_driver.py IN.pt OUT.json K`` where IN.pt holds ``X`` (n, d)
targets and ``A`` (S, d) atoms. Writes CPU ms per token and the mean relative error.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from mergekit.tokensurgeon import batch_omp


def main() -> None:
    data, out, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    inputs = torch.load(data)
    x, atoms = inputs["X"], inputs["A"]
    started = time.process_time()
    indices, coefs = batch_omp(x, atoms, k)
    seconds = time.process_time() - started
    approx = torch.einsum("nk,nkd->nd", coefs.double(), atoms.double()[indices])
    error = ((x.double() - approx).norm(dim=1) / x.double().norm(dim=1)).mean().item()
    result = {"cpu_ms_per_token": 1e3 * seconds / len(x), "rel_error": error}
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
