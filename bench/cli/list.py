"""``bench list``: the registered components, with whether their weight files are present."""

from __future__ import annotations

from typing import Optional

import typer

from .errors import fail
from .output import table

NAME = "list"


def command(what: str = typer.Argument(..., help="encoders | detectors | swappers | estimators | datasets | "
                                       "published"),
            pattern: Optional[str] = typer.Argument(None, help="fnmatch filter, e.g. 'arcface.*'")):
    """List registered components (encoders with a column saying whether their weights are present)."""
    if what not in LISTERS:
        fail(f"cannot list {what!r}: choose encoders, detectors, swappers, estimators, datasets or published")
    LISTERS[what](pattern)


def _encoders(pattern: Optional[str]) -> None:
    from idbench.encoders import get_spec, list_encoders, weights_status

    rows = []
    for name in list_encoders(pattern):
        s = get_spec(name)
        rows.append((name, s.backend, f"{s.input_size[0]}x{s.input_size[1]}", s.alignment, s.colour,
                     str(s.embedding_size), weights_status(name), s.weights[0].filename if s.weights else "-"))
    table(("name", "backend", "input", "alignment", "colour", "dim", "weights", "file"), rows)


def _detectors(pattern: Optional[str]) -> None:
    from idbench.detectors import DETECTORS

    table(("name", "description"), [(n, DETECTORS.spec(n).description) for n in DETECTORS.names(pattern)])


def _swappers(pattern: Optional[str]) -> None:  # learned swappers also say whether their weight files are present
    from idbench.swapper import SWAPPERS
    from idbench.swapper.learned import weight_places, weight_status

    rows = [(n, SWAPPERS.spec(n).kind, weight_status(n), weight_places(n),
             "; ".join(f"{p}: {d}" for p, d in SWAPPERS.spec(n).params) or "-",
             SWAPPERS.spec(n).description) for n in SWAPPERS.names(pattern)]
    table(("name", "kind", "weights", "weight files go in", "parameters", "description"),
          [(n + (":DIR" if SWAPPERS.spec(n).arg else ""), *rest) for n, *rest in rows])


def _published(pattern: Optional[str]) -> None:  # the literature's reported numbers, with conventions and sources
    from idbench.bench import published as P

    rows = P.in_sets(P.load_published(), pattern)
    table(P.LISTING_HEADER, P.listing_rows(rows))
    typer.echo("\n" + "\n".join(P.listing_conventions(rows)))


def _estimators(pattern: Optional[str]) -> None:  # with where names, units or signs differ from the official outputs
    from idbench.analysis.estimators import ESTIMATORS

    table(("name", "units", "description", "conventions vs the official output"),
          [(n, s.units or "-", s.description, s.conventions or "-")
           for n, s in ((n, ESTIMATORS.spec(n)) for n in ESTIMATORS.names(pattern))])


def _datasets(pattern: Optional[str]) -> None:
    from idbench.bench.datasets import DATASETS

    table(("name", "description"), [(n, getattr(DATASETS.spec(n), "description", "")) for n in
                                    DATASETS.names(pattern)])


LISTERS = {"encoders": _encoders, "detectors": _detectors, "swappers": _swappers, "estimators": _estimators,
           "datasets": _datasets, "published": _published}
