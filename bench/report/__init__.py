"""Outputs of a run: ``leaderboard.csv`` / ``.md`` / ``.tex``, ``results.json`` and a self-contained ``report.html``.

Modules: :mod:`.tables` (leaderboard rows, CSV, Markdown, LaTeX), :mod:`.layout` (the HTML page and its
section order), one module per section (:mod:`.summary`, :mod:`.bias`, :mod:`.verification`,
:mod:`.swaps`, :mod:`.saliency`), :mod:`.outputs` (writing and merging runs).
"""

from .layout import SECTIONS, render_report, write_report
from .outputs import FORMATS, merge_results, output_files, write_outputs
from .tables import (ENCODER_COLUMNS, leaderboard_latex, leaderboard_markdown, leaderboard_rows,
                     write_leaderboard)

__all__ = ["ENCODER_COLUMNS", "FORMATS", "SECTIONS", "leaderboard_latex", "leaderboard_markdown", "leaderboard_rows",
           "merge_results", "output_files", "render_report", "write_leaderboard", "write_outputs", "write_report"]
