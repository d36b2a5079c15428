"""The analyses of ``bench run`` as registered steps, one module each (:mod:`.base` says what a step is).

Built in, in run order: ``bias``, ``verification``, ``retrieval`` (the default ``--analyses``), ``saliency``
(always, ``--saliency-faces 0`` turns it off), ``decomposition``, ``swaps`` (with ``--swappers``). A new analysis
is one new file that calls :func:`register_step` (docs/extending.md, "Add an analysis"): in this package it is
found and registered on import; elsewhere, importing it registers it.
"""

from .base import (STEPS, StepResult, StepSpec, analyses_help, check_analyses, default_analyses, json_key, ordered,
                   parse_analyses, register_step, selected, step_versions, steps_markdown, unregister_step)
from .context import RunContext


def _register_builtin() -> None:
    """Import every step module of this package (each registers itself): a new built-in step is one new file."""
    import importlib
    import pkgutil

    for m in pkgutil.iter_modules(__path__):
        if m.name not in ("base", "context"):
            importlib.import_module(f"{__name__}.{m.name}")


_register_builtin()

__all__ = ["STEPS", "RunContext", "StepResult", "StepSpec", "analyses_help", "check_analyses", "default_analyses",
           "json_key", "ordered", "parse_analyses", "register_step", "run_steps", "selected", "step_versions",
           "steps_markdown", "unregister_step"]


def run_steps(names, ctx: RunContext) -> None:
    """Run the steps ``names`` (in order) into ``ctx.results``: an encoder step per encoder into
    ``results["encoders"][name]``, a run step into ``results``; each result's extra leaderboard columns into
    ``results["encoders"][name]["columns"]``."""
    entries = ctx.results["encoders"]
    for step in names:
        spec, fn = STEPS.spec(step), STEPS.factory(step)
        if spec.scope == "encoder":
            for enc in ctx.encoders:
                res = fn(ctx.for_encoder(enc))
                if res is not None:
                    entries[enc].update(res.to_json())
                    if res.columns():
                        entries[enc].setdefault("columns", {}).update(res.columns())
            continue
        res = fn(ctx)
        if res is not None:
            ctx.results.update(res.to_json())
            for enc, cols in res.columns().items():
                entries[enc].setdefault("columns", {}).update(cols)
