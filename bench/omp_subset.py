"""OMP at k=8 and k=64 on a fixed random subset of new tokens: ours against mergekit-tokensurgeon.

The full gemma-donor graft at k=64 takes hours with tokensurgeon on 2 cores, so this compares the
OMP step alone, on the same inputs: the donor (Gemma-3-270M) input rows of ``n`` new tokens drawn
with a fixed seed (special tokens excluded) and the donor rows of the shared tokens as atoms. Both
run on one thread; the time is CPU time per token, the quality the mean relative reconstruction
error ``|x - A c| / |x|`` in the donor space (the coefficients are then applied to the base rows).
tokensurgeon's ``batch_omp`` runs in its own venv through ``bench/peers/mergekit_omp_driver.py``.

Writes ``bench/results/omp_subset/results.json``; ``python -m bench.table`` renders it.

Example:
    .venv/bin/python -m bench.omp_subset --n 64
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from bench import records
from bench.peers import peer_venv
from bench.scenarios import BASE_MODEL, donor_dir
from tokengraft import Slot, SparseCodes, align, load_donor, load_tokenizer, sparse_codes

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "omp_subset" / "results.json"
OURS = (("default (candidates=128)", 128), ("exact (candidates=0)", 0))


def inputs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, d) donor rows of a fixed random subset of new non-special tokens, (S, d) atoms."""
    old_tok, new_tok = load_tokenizer(BASE_MODEL), load_tokenizer("gemma3-270m")
    alignment = align(old_tok, new_tok)
    anchor_new, _ = alignment.anchors()
    tokens = alignment.new_vocab.tokens
    plain = [i for i in alignment.to_compute if (t := tokens[i]) is not None and not t.special]
    pick = torch.randperm(len(plain), generator=torch.Generator().manual_seed(seed))[:n]
    donor = load_donor(str(donor_dir("gemma3-270m")), new_tok).weights[Slot.INPUT].float()
    return donor[torch.tensor(plain)[pick]].clone(), donor[anchor_new].clone()


def relative_error(x: torch.Tensor, atoms: torch.Tensor, codes: SparseCodes) -> float:
    approx = torch.einsum("nk,nkd->nd", codes.coefs.double(), atoms.double()[codes.indices])
    return ((x.double() - approx).norm(dim=1) / x.double().norm(dim=1)).mean().item()


def ours(x: torch.Tensor, atoms: torch.Tensor, k: int, candidates: int) -> dict[str, float]:
    started = time.process_time()
    codes = sparse_codes(x, atoms, k=k, candidates=candidates, batch_size=64)
    seconds = time.process_time() - started
    return {
        "cpu_ms_per_token": 1e3 * seconds / len(x),
        "rel_error": relative_error(x, atoms, codes),
    }


def theirs(x: torch.Tensor, atoms: torch.Tensor, k: int) -> dict[str, Any]:
    python = peer_venv("mergekit") / "bin" / "python"
    if not python.is_file():
        return {"error": f"no mergekit venv: run bash {HERE / 'peers' / 'setup_mergekit.sh'}"}
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "in.pt", Path(tmp) / "out.json"
        torch.save({"X": x, "A": atoms}, data)
        driver = HERE / "peers" / "mergekit_omp_driver.py"
        done = subprocess.run(
            [str(python), "-P", str(driver), str(data), str(out), str(k)],
            capture_output=True,
            text=True,
            env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        )
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
        return json.loads(out.read_text())


def run(n: int, seed: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    x, atoms = inputs(n, seed)
    rows = []
    for k in (8, 64):
        rows.append({"k": k, "name": "mergekit-tokensurgeon batch_omp", **theirs(x, atoms, k)})
        for name, candidates in OURS:
            rows.append(
                {"k": k, "name": f"tokengraft omp, {name}", **ours(x, atoms, k, candidates)}
            )
    return {
        "n_tokens": n,
        "seed": seed,
        "n_atoms": len(atoms),
        "rows": rows,
        "machine": records.machine_info(),
        "date": records.now(),
        "command": f".venv/bin/python -m bench.omp_subset --n {n} --seed {seed}",
    }


def section(results: Mapping[str, Any]) -> str:
    """The BENCHMARKS.md section for these results."""
    lines = [
        "## gemma-donor: the OMP step at k=8 and k=64 on a subset",
        "",
        f"The OMP step alone on {results['n_tokens']} new Gemma-3 tokens drawn with seed "
        f"{results['seed']} (special tokens excluded), over {results['n_atoms']:,} shared tokens "
        "as atoms, one thread each; relative error = mean |x - A c| / |x| in the donor space. "
        f"Run {results['date']}.",
        "",
        f"Reproduce: `{results['command']}`",
        "",
        "| k | implementation | CPU ms / token | relative error | note |",
        "|---:|---|---:|---:|---|",
    ]
    for row in results["rows"]:
        ms = row.get("cpu_ms_per_token")
        err = row.get("rel_error")
        lines.append(
            f"| {row['k']} | {row['name']} | {'-' if ms is None else f'{ms:.1f}'} | "
            f"{'-' if err is None else f'{err:.4f}'} | {row.get('error', '')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.omp_subset", description=__doc__)
    parser.add_argument("--n", type=int, default=64, help="new tokens in the subset")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    results = run(args.n, args.seed)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    records.write_text(RESULTS, json.dumps(results, indent=2) + "\n")
    print(section(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
