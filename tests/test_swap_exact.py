"""Swap evaluation a paper can rely on (issue #25), end to end on real photos of ../shared/data/faces.

* exact pairs: a swap named ``<target>@<image>__<source>@<image>`` is scored against that target image,
  not the identity's first one; a bare identity with several faces is listed as ambiguous, never guessed;
* one manifest: ``bench swap --swapper blend --out D`` then ``--swappers results:D`` gives the numbers of
  ``--swappers blend``; a display name (``results:NAME=DIR``) keys every table, never the absolute path;
* intervals over the right unit in results.json, and paired comparisons of two swappers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from test_pipeline import FAST_ESTIMATORS, _cfg, small_folder  # noqa: F401  (the 4 x 3 real-photo fixture)


@pytest.fixture
def fast_estimators(monkeypatch):
    import idbench.bench.swap_eval as SE

    monkeypatch.setattr(SE, "ESTIMATOR_DEFAULTS", FAST_ESTIMATORS)


def _ids(folder: Path):
    return sorted(p.name for p in folder.iterdir())


def _images(folder: Path, ident: str):
    return sorted((folder / ident).iterdir())


def test_named_swap_is_scored_against_its_exact_target_not_the_first_image(small_folder, tmp_path,
                                                                           fast_estimators):
    from idbench.bench.run import run

    ids = _ids(small_folder)
    t_img, s_img = _images(small_folder, ids[0])[2], _images(small_folder, ids[1])[0]
    d = tmp_path / "method"
    d.mkdir()
    # a "swap" that is the target photo itself: scored against that photo, its pose error is exactly 0
    shutil.copy(t_img, d / f"{ids[0]}@{t_img.stem}__{ids[1]}@{s_img.stem}{t_img.suffix}")
    shutil.copy(t_img, d / f"{ids[0]}__{ids[1]}{t_img.suffix}")  # identity-only: 3 faces, ambiguous
    typo = ids[0][:3] + ids[0][4:]  # one letter dropped
    shutil.copy(t_img, d / f"{typo}__{ids[1]}{t_img.suffix}")
    res = run(_cfg(small_folder, tmp_path / "o", tmp_path / "cache", swappers=[f"results:{d}"], saliency_faces=0,
                   bias=False))
    sw = res["swappers"]["method"]  # the folder's name, not its absolute path
    assert sw["summary"]["n_swaps"] == 1
    assert [Path(p).resolve() for p in sw["per_sample"]["target_path"]] == [t_img.resolve()]
    assert [Path(p).resolve() for p in sw["per_sample"]["source_path"]] == [s_img.resolve()]
    assert sw["summary"]["pose_l2[pose.pnp]"] == 0.0 and sw["summary"]["expression_l2[expression.landmarks]"] == 0.0
    reasons = {Path(f["item"]).name: f["reason"] for f in sw["failures"]}
    amb = reasons[f"{ids[0]}__{ids[1]}{t_img.suffix}"]
    assert "ambiguous" in amb and f"{ids[0]}@<image name>" in amb and "manifest.csv" in amb
    assert reasons[f"{typo}__{ids[1]}{t_img.suffix}"] == f"no dataset identity {typo!r}; did you mean {ids[0]}?"


def test_bench_swap_manifest_round_trip_equals_the_direct_run(small_folder, tmp_path, fast_estimators):
    from typer.testing import CliRunner

    from idbench.bench.cli import app
    from idbench.bench.run import run

    cache = tmp_path / "cache"
    d = tmp_path / "blend_swaps"
    r = CliRunner().invoke(app, ["swap", "--swapper", "blend", "--out", str(d), "--k", "20", "--detector",
                                 "dlib-hog", "--cache-dir", str(cache), str(small_folder)])
    assert r.exit_code == 0, r.output
    res = run(_cfg(small_folder, tmp_path / "o", cache, saliency_faces=0, bias=False,
                   swappers=["blend", f"results:by_manifest={d}"]))
    direct, manifest = res["swappers"]["blend"], res["swappers"]["by_manifest"]
    assert manifest["failures"] == [] and manifest["summary"]["n_swaps"] == direct["summary"]["n_swaps"] >= 10
    assert manifest["summary"] == pytest.approx(direct["summary"], abs=1e-6)
    assert manifest["intervals"].keys() == direct["intervals"].keys()
    for m, ci in direct["intervals"].items():
        assert manifest["intervals"][m] == pytest.approx(ci, abs=1e-6), m
    assert str(d) not in str(list(res["swappers"]))  # display names only
    # the same pairs -> a paired comparison with a zero difference and p = 1, for every metric
    comp = res["swap_comparisons"]
    assert comp and all(len(rows) == 1 for rows in comp.values())
    for m, (row,) in comp.items():
        assert row["difference"] == pytest.approx(0, abs=1e-6) and row["p_value"] == 1.0, m
        assert row["n_shared"] == direct["summary"]["n_swaps"]
    # every swap metric has an interval containing its value; photos: each swap is its own unit
    for m, ci in direct["intervals"].items():
        assert ci is not None and ci[0] - 1e-9 <= direct["summary"][m] <= ci[1] + 1e-9, m
    assert direct["n_units"] == direct["n"] and direct["interval_unit"] == "target image x source image"


def test_console_summary_counts_equal_results_json_failures(small_folder, tmp_path, fast_estimators):
    import json
    from collections import Counter

    from typer.testing import CliRunner

    from idbench.bench.cli import app
    from idbench.bench.drops import parse_counts

    ids = _ids(small_folder)
    t_img = _images(small_folder, ids[0])[0]
    d = tmp_path / "typos"
    d.mkdir()
    typo = ids[0][:3] + ids[0][4:]
    for name in (f"{typo}__{ids[1]}", f"{ids[2]}__nobody_at_all", f"{ids[0]}__{ids[1]}", f"{ids[1]}@zz__{ids[2]}"):
        shutil.copy(t_img, d / f"{name}.jpg")
    (d / "notes.txt").write_text("not a swap")
    out = tmp_path / "o"
    r = CliRunner().invoke(app, ["run", "--dataset", "folder", "--root", str(small_folder), "--encoders", "dlib",
                                 "--detector", "dlib-hog", "--swappers", f"results:{d}", "--analyses", "verification",
                                 "--saliency-faces", "0", "--n-boot", "50", "--cache-dir", str(tmp_path / "cache"),
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    fails = json.loads((out / "results.json").read_text())["failures"]
    total, stages = parse_counts(r.output.splitlines())
    assert total == len(fails) >= 5 and stages == dict(Counter(f["stage"] for f in fails))
    assert f"typos/{typo}__{ids[1]}.jpg: did you mean {ids[0]}?" in r.output
    assert "ambiguous" in r.output and "not an image, video or frame folder" in r.output
    assert "n_swaps 0" in r.output  # nothing matched: said on the console, with every reason above


class _Collapsed:
    """A real encoder whose embeddings collapse onto one direction (a wrong contract): cos ~0.99 for anyone."""

    def __init__(self, enc):
        import dataclasses

        self._enc = enc
        self.spec = dataclasses.replace(enc.spec, name="collapsed")
        rng = np.random.default_rng(0)
        self._c = rng.normal(size=enc.spec.embedding_size)
        self._c /= np.linalg.norm(self._c)

    def __getattr__(self, name):
        return getattr(self._enc, name)

    def embed(self, crops, **kw):
        e = np.asarray(self._enc.embed(crops, **kw), np.float64)
        x = self._c + 0.02 * e
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_collapsed_encoder_is_flagged_and_never_best(small_folder, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    import idbench.bench.run as R
    from idbench.bench.cli import app
    from idbench.bench.report.summary import warnings
    from idbench.bench.report.tables import leaderboard_markdown, table_cells

    real = R.create_encoders
    monkeypatch.setattr(R, "create_encoders", lambda *a, **k: {**(e := real(*a, **k)),
                                                                "collapsed": _Collapsed(e["dlib"])})
    out = tmp_path / "o"
    r = CliRunner().invoke(app, ["run", "--dataset", "folder", "--root", str(small_folder), "--encoders", "dlib",
                                 "--detector", "dlib-hog", "--analyses", "bias,verification,retrieval",
                                 "--saliency-faces", "0", "--n-boot", "50", "--k-partners", "20",
                                 "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    from idbench.bench.samples import load_results

    res = load_results(out)  # results.json with its samples.npz (the per-pair scores)
    col, dl = res["encoders"]["collapsed"], res["encoders"]["dlib"]
    scores = np.array(col["verification"]["pair_scores"])
    labels = np.array(col["verification"]["pair_labels"])
    assert scores[labels == 1].mean() - scores[labels == 0].mean() < 0.05  # collapsed indeed (independent check)
    assert "degenerate" not in dl and "degenerate encoder" in col["degenerate"]
    assert col["bias"]["degenerate"] == col["degenerate"] == col["verification"]["degenerate"]
    assert f"warning: collapsed: degenerate encoder" in r.output
    assert any(w.startswith("collapsed: degenerate encoder") for w in warnings(res))
    t = table_cells(res, "encoder")
    assert not any(t["cells"]["collapsed", c][2] for _, cs in t["groups"] for c in cs)
    # the flag is what keeps it from being best: the same rows and intervals, with and without it
    from idbench.bench.report.tables import best_rows

    stub = {"encoders": {"collapsed": {"bias": {"relative_gap_ci": [0.01, 0.02]}},
                         "dlib": {"bias": {"relative_gap_ci": [0.10, 0.20]}}}}
    rows = [{"name": "collapsed", "bias_relative_gap": 0.015, "degenerate": col["degenerate"]},
            {"name": "dlib", "bias_relative_gap": 0.15}]
    assert best_rows(stub, "encoder", rows, "bias_relative_gap", "lower") == set()
    rows[0].pop("degenerate")
    assert best_rows(stub, "encoder", rows, "bias_relative_gap", "lower") == {"collapsed"}
    assert "**" not in "".join(line for line in leaderboard_markdown(res).splitlines() if "collapsed" in line)


def test_unmatched_names_get_close_matches_and_image_names_parse():
    from idbench.swapper.results import split_pair

    names = ["madonna", "ben_affleck", "abdullah_gul"]
    assert split_pair("madona__ben_affleck", names) == (None, "no dataset identity 'madona'; did you mean madonna?")
    assert split_pair("ben_affleck@03__madonna@01", names) == (("ben_affleck@03", "madonna@01"), "")
    assert split_pair("ben_affleck@03_madonna", names) == (("ben_affleck@03", "madonna"), "")  # the older '_'
    assert split_pair("zzz__yyy", names)[1] == "no dataset identity 'zzz'; no dataset identity 'yyy'"
