"""``make results``: the blocks of docs/results.md are replaced by exactly what each section prints."""

from __future__ import annotations

import pytest

from idbench.bench import results as R


def test_write_block_replaces_empty_and_filled_blocks(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:a -->\n<!-- /results:a -->\nmiddle\n<!-- results:b -->\nold\nlines\n"
                      "<!-- /results:b -->\nend\n")
    R.write_block(readme, "a", "| x | 1 |")
    R.write_block(readme, "b", "new")
    assert readme.read_text() == ("intro\n<!-- results:a -->\n| x | 1 |\n<!-- /results:a -->\nmiddle\n"
                                  "<!-- results:b -->\nnew\n<!-- /results:b -->\nend\n")
    R.write_block(readme, "a", "| y | 2 |")  # a second run replaces, never appends
    assert readme.read_text().count("| y | 2 |") == 1 and "| x | 1 |" not in readme.read_text()
    with pytest.raises(SystemExit, match="no <!-- results:c --> block"):
        R.write_block(readme, "c", "x")


def test_lfw_section_prints_the_run_numbers():
    v = {"accuracy_mean": 0.98933, "accuracy_std": 0.00456, "auc": 0.99871, "eer": 0.0107,
         "tar_at_far_1e-3": 0.9712, "n_pairs": 6000}
    res = {"dataset": {"n_items": 7701}, "failures": [], "encoders": {"dlib": {"verification": v},
                                                                     "mystery": {"verification": v}}}
    text = R.lfw_section(res)
    assert "| dlib | 98.93% ± 0.46 | 0.9987 | 1.07% | 0.971 | dlib's author: 99.38% |" in text
    assert "| mystery |" in text and text.splitlines()[-1].startswith("6000 View 2 pairs")


def test_the_results_page_has_a_block_for_every_section():
    text = R.RESULTS_PAGE.read_text()
    for name in R.SECTIONS:
        assert f"<!-- results:{name} -->" in text and f"<!-- /results:{name} -->" in text, name
