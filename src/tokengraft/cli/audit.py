"""``tokengraft audit`` and ``tokengraft report``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tokengraft.cli.options import AllowPickle, AsJson, HtmlOut, Model, Quiet, check_positive

if TYPE_CHECKING:  # annotations only: the command imports what it runs lazily (fast --help)
    from tokengraft.audit.records import ModelAudit

Texts = Annotated[
    list[Path], typer.Option("--texts", help="Held-out UTF-8 text files: loss per token.")
]
Top = Annotated[int, typer.Option(help="Rows listed per table.")]
Verify = Annotated[int, typer.Option(help="Top candidates verified by a repeat prompt (0: none).")]
MaxBytes = Annotated[int | None, typer.Option(help="Use only the first N bytes of a text file.")]


def audit_cmd(
    model: Model,
    texts: Texts = [],  # noqa: B006
    as_json: AsJson = False,
    html: HtmlOut = None,
    top: Top = 20,
    verify: Verify = 50,
    max_bytes: MaxBytes = None,
    allow_pickle: AllowPickle = False,
    quiet: Quiet = False,
) -> None:
    """Under-trained, unreachable and (with --texts) costly tokens of MODEL and its tokenizer."""
    from tokengraft.audit.pipeline import audit_pretrained
    from tokengraft.audit.records import AuditConfig

    check_positive(top, "--top")
    check_positive(max_bytes, "--max-bytes")
    if verify < 0:
        check_positive(verify, "--verify")
    config = AuditConfig(top=top, verify=verify)
    result = audit_pretrained(
        model,
        texts=texts,
        max_bytes=max_bytes,
        config=config,
        allow_pickle=allow_pickle,
        progress=not quiet,
    )
    data = result.to_dict()
    if html is not None:
        _write_audit_html(html, data)
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    _echo_audit(result)


def _write_audit_html(path: Path, data: dict[str, Any]) -> None:
    from tokengraft.report.audit_page import audit_sections
    from tokengraft.report.html import write_html

    write_html(path, f"tokengraft audit: {data['model']}", audit_sections(data))


def _echo_audit(result: ModelAudit) -> None:
    """The audit as a few lines and short tables."""
    top = result.config["top"]
    typer.echo(
        f"{result.model}: {result.vocab_size} rows, {result.special} special, "
        f"{result.n_unreachable} unreachable, {result.partial} partial UTF-8; reference "
        f"{result.reference_kind} ({result.reference_size} tokens)"
    )
    verified = [c for c in result.candidates if c.under_trained is not None]
    typer.echo(
        f"under-trained: {result.n_under_trained} of {len(verified)} verified candidates "
        f"(repeat probability < {result.config['threshold']})"
    )
    for c in result.candidates[:top]:
        p = "-" if c.repeat_probability is None else f"{c.repeat_probability:.2e}"
        typer.echo(f"  {c.id:>7} {c.token!r:<28} indicator {c.score:7.3f}  repeat p {p}")
    if result.unreachable:
        shown = ", ".join(repr(u["token"]) for u in result.unreachable[:top])
        typer.echo(f"unreachable: {shown}")
    if result.loss is not None:
        typer.echo(f"loss: {result.loss.bits_per_byte:.4f} bits/byte on {result.loss.n_bytes} B")
        for row in result.loss.top:
            typer.echo(
                f"  {row.id:>7} {row.token!r:<28} {row.source or '':<9} x{row.count:<5} "
                f"{row.nats:9.1f} nats ({row.share:.1%})"
            )


def report_cmd(
    runs: Annotated[
        list[Path], typer.Argument(help="Graft output dirs, bench/results, audit or eval JSON.")
    ],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    title: Annotated[str, typer.Option(help="Page title.")] = "tokengraft report",
) -> None:
    """Write one static HTML page (plots embedded) from grafts, benchmarks, audits, evaluations."""
    from tokengraft.report.page import write_report

    write_report(runs, out, title=title)
    typer.echo(f"wrote {out}")
