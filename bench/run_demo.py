"""The numbers of `tokengraft demo` for BENCHMARKS.md, with the graft measured in a child process.

The pieces of ``tokengraft demo``: the cached 32k German BPE (``tokengraft.trained_tokenizer``),
a graft of SmolLM2-135M onto it with ``mean``, ``subword_mean`` and ``tune`` (the demo's method;
each ``tokengraft graft``
in a child process whose wall time and peak RSS are measured; the graft step's own time comes from
its report.json), and bits per byte of the original and of every graft on the first 60,000 bytes
(the demo's default) of the German and English held-out files. Writes ``bench/results/demo.json``
and regenerates BENCHMARKS.md. Extra flags go to ``bench.run`` (``--force``, ``--max-bytes`` ...).

Example:
    .venv/bin/python -m bench.run_demo  # from the repository root
"""

from __future__ import annotations

import sys

from bench import run


def main(argv: list[str] | None = None) -> int:
    extra = sys.argv[1:] if argv is None else argv
    return run.main(
        ["--scenario", "demo", "--methods", "mean,subword_mean,tune", "--peers", "", *extra]
    )


if __name__ == "__main__":
    sys.exit(main())
