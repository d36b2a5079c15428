"""``bench``: the idbench command line (typer). One module per command, all registered the same way.

A command module has ``NAME`` and ``command`` (the typer callback; its docstring is the help), and ``GROUP``
(name, help) when it sits under a sub-command (``bench encoder inspect``). Options that several commands take
come from :mod:`.options`; errors are turned into one line and an exit status by :mod:`.errors` only.
Command modules import nothing heavy at the top: ``bench --help`` and ``bench list`` never load torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Dict

import typer

from .errors import HandledGroup

# in the order of ``bench --help``
COMMANDS = ("list", "embed", "run", "report", "prepare", "train", "swap", "estimate", "saliency", "inspect")

app = typer.Typer(cls=HandledGroup, add_completion=False, no_args_is_help=True,
                  help="idbench: benchmark and analysis toolkit for face identity encoders.")


def command_modules() -> Dict[str, ModuleType]:
    """Every command module, by module name."""
    return {name: importlib.import_module(f"{__package__}.{name}") for name in COMMANDS}


def register(parent: typer.Typer, module: ModuleType) -> None:
    """Add one command module to ``parent`` (under its ``GROUP`` when it has one)."""
    group = getattr(module, "GROUP", None)
    if group is not None:
        name, help = group
        sub = next((g.typer_instance for g in parent.registered_groups if g.name == name), None)
        if sub is None:
            sub = typer.Typer(no_args_is_help=True, help=help)
            parent.add_typer(sub, name=name)
        parent = sub
    parent.command(module.NAME)(module.command)


for _module in command_modules().values():
    register(app, _module)


def main() -> None:
    """The console script (:mod:`.entry` adds the one-line message for a missing extra)."""
    app()


if __name__ == "__main__":
    main()
