"""What commands print: aligned tables and the summary of dropped items."""

from __future__ import annotations

from typing import Sequence

import typer


def table(header: Sequence[str], rows) -> None:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    for r in [header, *rows]:
        typer.echo("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


def fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else ("" if v is None else str(v))


def echo_drops(failures, where: str) -> None:
    """Every dropped item counted by stage and reason, and where the full listing is."""
    from idbench.bench.drops import summary_lines

    for line in summary_lines(failures, where):
        typer.echo(line)
