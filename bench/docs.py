"""The generated parts of docs/: ``make docs`` / ``python -m idbench.bench.docs --write`` (``--check`` in the tests).

A page of ``docs/`` holds blocks ``<!-- generated:NAME -->`` ... ``<!-- /generated:NAME -->``; each is
rewritten from its source of truth, so no table can drift from the code:

* ``metrics-encoder``, ``metrics-swap``, ``metrics-count``: the metric catalogue (:data:`idbench.analysis.METRICS`:
  name, direction, unit, group, formula, reference, function);
* ``encoders``, ``encoder-families`` (default tags), ``detectors``, ``estimators``, ``swappers``, ``datasets``: each registry's specs (description,
  weight files and where they are looked for, licence, paper), through the public registries.

Only idbench's own entries are listed (a factory defined in an ``idbench`` module), so a plugin installed on one
machine or a test's temporary entry never makes the docs stale. Spec fields are read with ``getattr``, so specs
that grow fields (options, paper) need no change here, only a new ``--write``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Sequence

DOCS = Path(__file__).resolve().parents[1] / "docs"
REGENERATE = "python -m idbench.bench.docs --write  (or: make docs)"

__all__ = ["BLOCKS", "replace_block", "render", "stale_pages", "main"]


def replace_block(text: str, tag: str, name: str, body: str) -> str:
    """``text`` with the block ``<!-- TAG:NAME -->...<!-- /TAG:NAME -->`` holding ``body``; ``KeyError`` when the
    text has no such block. (Also used by ``idbench.bench.results`` for its ``results`` blocks.)"""
    pat = re.compile(rf"(<!-- {tag}:{re.escape(name)} -->\n).*?(<!-- /{tag}:{re.escape(name)} -->)", re.S)
    if not pat.search(text):
        raise KeyError(f"no <!-- {tag}:{name} --> block")
    return pat.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def table_cell(value: Any) -> str:
    """One Markdown table cell: pipes escaped, newlines folded."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(table_cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _code(name: str) -> str:
    return f"`{name}`" if name else ""


# --- metrics ---------------------------------------------------------------------------------------------------

_ARROW = {"higher": "higher ↑", "lower": "lower ↓", "": "(count)"}


def _metrics_table(kind: str, counts: bool) -> str:
    from idbench.analysis import METRICS

    rows = [(f"`{m.name}`", _ARROW.get(m.direction, m.direction), m.unit, m.group, m.formula, _code(m.function),
             m.reference) for m in METRICS if m.kind == kind and (m.direction == "") == counts]
    return _table(("name", "better", "unit", "group", "formula", "function", "reference"), rows)


# --- registries ------------------------------------------------------------------------------------------------

def _own(registry: Any) -> List[str]:
    """The registry's names whose factory is idbench's own (not a plugin's or a test's)."""
    return [n for n in registry.names() if getattr(registry.factory(n), "__module__", "").startswith("idbench")]


def _weights(spec: Any) -> str:
    """Each weight file, where idbench looks for it besides an explicit path, and where it comes from."""
    parts = []
    for w in getattr(spec, "weights", ()) or ():
        name = getattr(w, "filename", str(w))
        where = ", ".join(["$IDBENCH_HOME/weights", *getattr(w, "search", ())])
        origin = getattr(w, "origin", "")
        parts.append(f"`{name}` ({where})" + (f"; from: {origin}" if origin else ""))
    return "; ".join(parts) or "none"


def _field(spec: Any, name: str) -> str:
    value = getattr(spec, name, "")
    return "" if value is None else str(value)


def _encoders() -> str:
    from idbench.encoders import get_spec
    from idbench.encoders.registry import ENCODERS

    def row(n):
        s = get_spec(n)
        norm = f"({','.join(f'{v:g}' for v in s.mean)}) / ({','.join(f'{v:g}' for v in s.std)})"
        return (f"`{n}`", _field(s, "description"), s.backend, f"{s.input_size[0]}x{s.input_size[1]}", s.alignment, s.colour, norm,
                s.embedding_size, "yes" if s.l2_normalised else "no", _weights(s), _field(s, "licence"),
                _field(s, "paper"))
    return _table(("encoder", "description", "backend", "input", "alignment", "colour", "normalisation (x - mean) / std", "dim",
                   "unit-norm output", "weight files (where looked for; from)", "licence", "paper"),
                  [row(n) for n in _own(ENCODERS)])


def _families() -> str:
    from idbench.encoders.registry import ENCODERS

    defaults = getattr(ENCODERS, "defaults", dict)()
    return _table(("family", "stands for"), [(f"`{f}`", f"`{n}`") for f, n in sorted(defaults.items())])


def _detectors() -> str:
    from idbench.detectors import DETECTORS

    return _table(("detector", "description", "weight files (where looked for; from)", "licence"),
                  [(f"`{n}`", _field(s, "description"), _weights(s), _field(s, "licence"))
                   for n, s in ((n, DETECTORS.spec(n)) for n in _own(DETECTORS))])


def _columns(spec: Any) -> str:
    cols = list(getattr(spec, "columns", ()))
    text = ", ".join(cols) if len(cols) <= 12 else f"{cols[0]} ... {cols[-1]} ({len(cols)} values)"
    return text + (f" ({spec.units})" if getattr(spec, "units", "") else "")


def _estimators() -> str:
    from idbench.analysis.estimators import ESTIMATORS

    return _table(("estimator", "kind", "output (units)", "description", "weight files (where looked for; from)",
                   "licence", "paper", "conventions vs the official output"),
                  [(f"`{n}`", s.kind, _columns(s),
                    _field(s, "description"), _weights(s), _field(s, "licence"), _field(s, "paper"),
                    _field(s, "conventions")) for n, s in ((n, ESTIMATORS.spec(n)) for n in _own(ESTIMATORS))])


def _swappers() -> str:
    from idbench.swapper import SWAPPERS
    from idbench.swapper.learned import LEARNED_SPECS

    def row(n):
        s = SWAPPERS.spec(n)
        full = s if getattr(s, "weights", None) else LEARNED_SPECS.get(n, s)  # learned specs carry files, licence
        params = "; ".join(f"`{p}`: {d}" for p, d in getattr(s, "params", ())) or "-"
        return (f"`{n}" + (":DIR`" if getattr(s, "arg", None) else "`"), _field(s, "kind"), _field(s, "description"),
                params, _weights(full), _field(full, "licence"), _field(full, "paper"))
    return _table(("swapper", "kind", "description", "parameters", "weight files (where looked for; from)",
                   "licence", "paper"), [row(n) for n in _own(SWAPPERS)])


def _datasets() -> str:
    from idbench.bench.datasets import DATASETS

    return _table(("dataset", "description", "licence"),
                  [(f"`{n}`", _field(s, "description"), _field(s, "licence"))
                   for n, s in ((n, DATASETS.spec(n)) for n in _own(DATASETS))])


BLOCKS: Dict[str, Callable[[], str]] = {
    "metrics-encoder": lambda: _metrics_table("encoder", False),
    "metrics-swap": lambda: _metrics_table("swap", False),
    "metrics-count": lambda: _metrics_table("swap", True),
    "encoders": _encoders,
    "encoder-families": _families,
    "detectors": _detectors,
    "estimators": _estimators,
    "swappers": _swappers,
    "datasets": _datasets,
}


def render(text: str, cache: Dict[str, str]) -> str:
    """``text`` with every generated block it holds rewritten (``cache``: block name -> body, filled lazily)."""
    for name in re.findall(r"<!-- generated:([\w-]+) -->", text):
        if name not in BLOCKS:
            raise SystemExit(f"error: unknown generated block '{name}' (known: {', '.join(BLOCKS)})")
        if name not in cache:
            cache[name] = BLOCKS[name]()
        text = replace_block(text, "generated", name, cache[name])
    return text


def stale_pages(docs: Path = DOCS, write: bool = False) -> List[Path]:
    """The pages of ``docs`` whose generated blocks differ from what the code gives (rewritten when ``write``)."""
    cache: Dict[str, str] = {}
    stale = []
    for page in sorted(docs.glob("*.md")):
        old = page.read_text(encoding="utf-8")
        new = render(old, cache)
        if new != old:
            stale.append(page)
            if write:
                page.write_text(new, encoding="utf-8")
    return stale


def main(argv: Sequence[str] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the generated blocks of docs/*.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when a generated block is stale")
    ap.add_argument("--docs", type=Path, default=DOCS, help="the docs folder (default: the repository's docs/)")
    args = ap.parse_args(argv)
    stale = stale_pages(args.docs, write=args.write)
    if args.write:
        print(f"rewrote {len(stale)} page(s): {', '.join(p.name for p in stale) or 'none changed'}")
    elif stale:
        print(f"stale generated docs: {', '.join(p.name for p in stale)}; regenerate with: {REGENERATE}",
              file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
