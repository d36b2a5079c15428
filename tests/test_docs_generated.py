"""docs/: the generated tables equal what the code gives now, and the README reaches every page.

The generated blocks (``<!-- generated:NAME -->``) are rebuilt from the metric catalogue and the registries by
``python -m idbench.bench.docs``; the check runs in a fresh process so that entries other tests register
for a moment cannot leak into it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from idbench.bench import docs as D

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PENDING: set = set()  # generated pages not written yet


def _check(docs: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "idbench.bench.docs", "--check", "--docs", str(docs)],
                          capture_output=True, text=True, timeout=300)


def test_generated_docs_are_up_to_date():
    r = _check(ROOT / "docs")
    assert r.returncode == 0, r.stderr + r.stdout  # the message names the pages and the regenerate command


def test_a_stale_block_is_found_and_rewritten(tmp_path):
    for page in (ROOT / "docs").glob("*.md"):
        shutil.copy(page, tmp_path / page.name)
    metrics = tmp_path / "metrics.md"
    text = metrics.read_text()
    assert "| `bias_auc` |" in text
    metrics.write_text(text.replace("| `bias_auc` |", "| `bias_auc_old` |", 1))  # the generated row
    r = _check(tmp_path)
    assert r.returncode == 1 and "metrics.md" in r.stderr and "idbench.bench.docs --write" in r.stderr
    assert D.stale_pages(tmp_path, write=True) == [metrics]
    assert metrics.read_text() == text and D.stale_pages(tmp_path) == []


def test_every_catalogued_metric_and_registered_encoder_is_in_the_docs():
    from idbench.analysis import METRICS
    from idbench.encoders import ENCODERS

    metrics = (ROOT / "docs" / "metrics.md").read_text()
    assert all(f"| `{m.name}` |" in metrics for m in METRICS)
    encoders = (ROOT / "docs" / "encoders.md").read_text()
    assert "| `arcface.r100` |" in encoders and "| `blendface.r100` |" in encoders
    own = D._own(ENCODERS)  # idbench's entries (other tests register plugins and tiny test encoders)
    assert "dlib" in own and all(f"| `{n}` |" in encoders for n in own)


def test_unknown_block_is_an_error(tmp_path):
    (tmp_path / "x.md").write_text("<!-- generated:nope -->\n<!-- /generated:nope -->\n")
    with pytest.raises(SystemExit, match="unknown generated block 'nope'"):
        D.stale_pages(tmp_path)


def _links(page: Path):
    return [m for m in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()) if "://" not in m]


def test_readme_links_every_docs_page_and_every_link_resolves():
    linked = set(_links(README))
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, pages - linked
    for page in [README, *(ROOT / "docs").glob("*.md")]:
        for target in _links(page):
            path = (page.parent / target).resolve()
            rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
            assert path.exists() or rel in PENDING, f"{page.name}: broken link {target}"


def test_readme_is_a_short_entry_point():
    text = README.read_text()
    assert len(text.splitlines()) < 120
    for command in ("make install", "make test", "bench run --encoders arcface,blendface"):
        assert command in text, command
