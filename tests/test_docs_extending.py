"""Every recipe of docs/extending.md runs as a doctest, one test per section (``## `` heading)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def _sections():
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.M)[1:]
    return [(p.splitlines()[0].strip(), "## " + p) for p in parts]


SECTIONS = _sections()


def test_every_kind_has_a_recipe():
    titles = " | ".join(t.lower() for t, _ in SECTIONS)
    for kind in ("encoder", "swapper", "metric", "dataset", "analysis"):
        assert f"add a{'n' if kind[0] in 'ae' else ''} {kind}" in titles, kind


@pytest.mark.parametrize("title,text", SECTIONS, ids=[t for t, _ in SECTIONS])
def test_recipe_runs(title, text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # recipes write their new files into the current folder
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {"__name__": "recipe"}, title, str(DOC), 0)
    assert test.examples, f"section {title!r} of {DOC.name} has no doctest examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out = []
    runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)
