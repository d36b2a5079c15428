"""``bench report``: rebuild or merge run reports; paper tables and figures."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .errors import fail
from .options import OUT_FLAGS

NAME = "report"


def command(dirs: List[Path] = typer.Argument(..., help="run folders holding results.json"),
            out: Optional[Path] = typer.Option(None, *OUT_FLAGS, help="where to write the merged report"),
            fmt: List[str] = typer.Option([], "--format", "-f",
                                          help="md | tex | html (repeatable; default: all three)"),
            preset: str = typer.Option("", "--preset", help="paper tables to write into OUT/tables/: "
                                       "encoder-bias, verification, faceshifter-swap, blendface-swap (comma list)"),
            columns: str = typer.Option("", "--columns", help="a paper table of these leaderboard columns, in "
                                        "this order (fnmatch patterns allowed: 'pose_l2[*]'): OUT/tables/custom.*"),
            tex_env: str = typer.Option("table", "--tex-env", help="table (one column) or table* (full width)"),
            caption: Optional[str] = typer.Option(None, "--caption", help="caption of the paper tables"),
            label: Optional[str] = typer.Option(None, "--label", help="LaTeX label of the paper table(s)"),
            figures: str = typer.Option("", "--figures", help="vector figures into OUT/figures/: pdf,svg"),
            published: str = typer.Option("", "--published", help="published result sets shown beside the "
                                          "swappers where dataset, protocol and evaluators match (all, "
                                          "ffpp-faceshifter, ...; see bench list published)")):
    """Rebuild a run's report, or merge several runs into one leaderboard and report; paper tables and figures."""
    from idbench.bench.report import FORMATS, merge_results, output_files, write_outputs
    from idbench.bench.report.paper import PRESETS
    from idbench.bench.run_folder import read_results
    from idbench.errors import UnknownNameError

    formats = [f for item in fmt for f in item.split(",") if f] or list(FORMATS)
    for f in formats:
        if f not in FORMATS:
            fail(f"--format takes {' | '.join(FORMATS)}, got {f!r}")
    presets = [p for p in preset.split(",") if p]
    for p in presets:
        if p not in PRESETS:
            raise UnknownNameError("table preset", p, PRESETS)
    if tex_env not in ("table", "table*"):
        fail(f"--tex-env takes table or table*, got {tex_env!r}")
    # a received run folder: results.json checked, files only from inside the runs
    if len(dirs) == 1 and out is None:
        results = read_results(dirs[0])
        out = dirs[0]
    else:
        if out is None:
            fail("merging several runs needs --out DIR")
        results = merge_results(dirs, out)
    if published:
        from idbench.bench.published import published_block

        results["published"] = published_block(results, published)
    write_outputs(results, out, formats)
    written = output_files(out, formats)
    if presets or columns:
        from idbench.bench.report.paper import write_paper_tables

        written += write_paper_tables(results, out, presets, [c for c in columns.split(",") if c], tex_env,
                                      caption, label)
    if figures:
        from idbench.bench.report.figures import write_figures

        written += write_figures(results, out, [f for f in figures.split(",") if f])
    typer.echo("wrote " + ", ".join(str(p) for p in written))
