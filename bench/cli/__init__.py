"""The ``bench`` command line: one module per command, the typer app in :mod:`.application`.

Importing this package is free (no typer): the console script's stub (:mod:`.entry`) must run on the light
install without typer. ``from idbench.bench.cli import app`` (and the other names below) load the app on
first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"app": "application", "main": "application", "fail": "errors", "parse_weights": "options",
            "WEIGHTS_HELP": "options", "DEVICE_HELP": "options", "check_detect_batch": "options"}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
