"""The decomposition analysis' numbers (idbench.bench.decomposition) on synthetic embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from idbench.analysis import bias_gap
from idbench.bench import decomposition as D
from idbench.bench.encoder_analysis import BiasPlan


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _setup(seed=0, n_ids=12, per_id=4, dim=16):
    """Identities as random directions; images = identity + noise; variant swaps = identity + a
    variant-specific amount of a partner direction (more partner = larger gap)."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(n_ids, dim)))
    labels = np.repeat(np.arange(n_ids), per_id)
    emb = _unit(centres[labels] + 0.35 * rng.normal(size=(len(labels), dim)))
    anchors = np.arange(n_ids) * per_id
    pos = [(a, a + k) for a in anchors for k in range(1, per_id)]
    neg = [(a, (a + per_id) % len(labels)) for a in anchors]
    swaps = [(a, r, (r + per_id) % len(labels)) for a, r in pos]
    plan = BiasPlan(anchors, pos, neg, swaps)
    amount = {"skin": 0.1, "outside": 0.3, "full": 0.6}

    def variant(a_emb, share, noise_rng):
        rows = np.array([r for _, r, _ in swaps])
        partners = np.array([p for _, _, p in swaps])
        return _unit(a_emb[rows] + share * a_emb[partners] + 0.05 * noise_rng.normal(size=(len(rows), dim)))

    sw = {v: {"A": variant(emb, s, np.random.default_rng(1))} for v, s in amount.items()}
    for v in sw:
        sw[v]["A"][3] = np.nan  # one failed swap
        sw[v]["B"] = sw[v]["A"].copy()  # B = A: a numerically identical port
    emb_c = emb.copy()
    sw["skin"]["C"] = variant(emb_c, 0.9, np.random.default_rng(2))  # C mistakes skin for identity
    sw["outside"]["C"], sw["full"]["C"] = sw["outside"]["A"], sw["full"]["A"]
    return {"A": emb, "B": emb.copy(), "C": emb_c}, plan, sw


def test_summarise_matches_bias_gap_and_finds_the_planted_difference():
    emb, plan, sw = _setup()
    dec = D.summarise(emb, plan, sw, seed=0, n_boot=200, n_perm=400)  # Holm over 3 pairs: min p 3/401
    assert dec["variants"] == ["skin", "outside", "full"]
    # per-variant numbers = bias_gap on the usable swaps (independent recomputation)
    a = [s[0] for s in plan.swaps]
    ok = np.isfinite(sw["outside"]["A"]).all(1)
    swp = np.einsum("ij,ij->i", emb["A"][np.array(a)[ok]], sw["outside"]["A"][ok])
    pos = np.array([emb["A"][i] @ emb["A"][j] for i, j in plan.positive])
    neg = np.array([emb["A"][i] @ emb["A"][j] for i, j in plan.negative])
    ref = bias_gap(pos, swp, neg, n_boot=0)
    got = dec["encoders"]["A"]["outside"]
    assert got["relative_gap"] == pytest.approx(ref.relative_gap) and got["n_swapped"] == ok.sum() == len(a) - 1
    kept = [x for x in dec["swapped_scores"]["A"]["outside"] if x is not None]
    assert dec["swapped_scores"]["A"]["outside"][3] is None and np.allclose(kept, swp)
    # more partner content = a larger gap
    rel = [dec["encoders"]["A"][v]["relative_gap"] for v in dec["variants"]]
    assert rel == sorted(rel)
    # mask sensitivity: the 'face' region is the full variant
    assert dec["mask_sensitivity"]["face"]["A"] == dec["encoders"]["A"]["full"]
    assert "inner" not in dec["mask_sensitivity"]
    rows = {(r["variant"], r["encoder_a"], r["encoder_b"], r["metric"]): r for r in dec["pairwise"]}
    assert len(rows) == 3 * 3 * 3  # variants x pairs x metrics
    for v in dec["variants"]:
        for m in ("mean_gap", "relative_gap", "auc"):
            same = rows[v, "A", "B", m]
            assert same["difference"] == 0.0 and same["p_value"] == 1.0 and not same["significant"]
    for m in ("mean_gap", "relative_gap", "auc"):
        r = rows["skin", "A", "C", m]
        assert r["difference"] < 0 and r["significant"] and r["p_holm"] >= r["p_value"]
        assert not rows["outside", "A", "C", m]["significant"]


def test_leaderboard_columns_and_analyses_option():
    emb, plan, sw = _setup()
    dec = D.summarise(emb, plan, sw, n_boot=0, n_perm=0)
    cols = D.leaderboard_columns(dec)
    assert cols["A"]["decomp_relative_gap[skin]"] == dec["encoders"]["A"]["skin"]["relative_gap"]
    assert cols["C"]["mask_relative_gap[face]"] == dec["encoders"]["C"]["full"]["relative_gap"]
    from idbench.analysis import metric_direction

    assert all(metric_direction(c) == "lower" for c in cols["A"])
    assert D.parse_analyses("bias, decomposition") == ["bias", "decomposition"]  # checked by the step registry
    from idbench.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="unknown analysis 'decompositon'. Did you mean: decomposition"):
        D.parse_analyses("bias,decompositon")


@pytest.fixture(scope="module")
def decomposition_run(faces_manifest, shared_faces, tmp_path_factory):
    """``bench run --analyses bias,decomposition`` with dlib on 5 identities x 3 photos of ../shared."""
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    root = tmp_path_factory.mktemp("decomp_faces")
    by_id = {}
    for r in faces_manifest:
        by_id.setdefault(r["identity"], []).append(shared_faces / r["path"])
    for ident in sorted(by_id)[:5]:
        (root / ident).mkdir()
        for p in by_id[ident][:3]:
            (root / ident / p.name).symlink_to(p)
    out = tmp_path_factory.mktemp("decomp_out")
    args = ["run", "--encoders", "dlib", "--dataset", "folder", "--root", str(root), "--out", str(out),
            "--analyses", "bias,decomposition", "--n-boot", "50", "--n-perm", "50", "--saliency-faces", "0",
            "--detector", "dlib-hog"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return out, r.output


def test_run_writes_decomposition_results_leaderboard_and_report(decomposition_run):
    import json

    import pandas as pd

    out, printed = decomposition_run
    res = json.loads((out / "results.json").read_text())
    dec = res["decomposition"]
    assert dec["variants"] == list(D.VARIANT_ORDER)
    enc = res["encoders"]["dlib"]
    assert "verification" not in enc and "retrieval" not in enc  # not asked for
    # the full variant is the bias analysis' own pseudo-swap: the same numbers
    assert dec["encoders"]["dlib"]["full"]["relative_gap"] == pytest.approx(enc["bias"]["relative_gap"], abs=1e-12)
    assert dec["encoders"]["dlib"]["full"]["auc"] == pytest.approx(enc["bias"]["auc"], abs=1e-12)
    for v in D.VARIANT_ORDER:
        d = dec["encoders"]["dlib"][v]
        assert d["n_swapped"] >= 5 and d["relative_gap_ci"][0] <= d["relative_gap"] <= d["relative_gap_ci"][1], v
    lb = pd.read_csv(out / "leaderboard.csv")
    assert lb.loc[0, "decomp_relative_gap[skin]"] == "lower"
    assert float(lb.loc[1, "mask_relative_gap[inner]"]) == pytest.approx(dec["encoders"]["dlib"]["inner"]["relative_gap"])
    assert (out / dec["example"]["example_image"]).is_file() and (out / dec["example"]["regions_image"]).is_file()
    page = (out / "report.html").read_text()
    assert "decomposition-chart" in page and "Mask sensitivity" in page
    assert "relative gap [95% CI] per variant" in printed


def test_unknown_analysis_is_a_one_line_error(tmp_path):
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    r = CliRunner().invoke(app, ["run", "--analyses", "bias,decompositon", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "unknown analysis 'decompositon'" in r.output and len(r.output.strip().splitlines()) == 1


def test_report_section_marks_significant_differences(tmp_path):
    from idbench.bench.report_decomposition import decomposition_section

    emb, plan, sw = _setup()
    dec = D.summarise(emb, plan, sw, seed=0, n_boot=100, n_perm=400)
    page = decomposition_section({"decomposition": dec}, tmp_path)
    assert "decomposition-chart" in page and "relative gap [bootstrap 95% CI] per encoder and variant" in page
    assert page.count("<b>") == sum(r.get("significant", False) for r in dec["pairwise"]) > 0
    assert "A - B" in page and "Mask sensitivity" in page
    assert decomposition_section({}, tmp_path) is None
    lines = D.summary_lines(dec)
    assert lines[0].startswith("relative gap") and any("skin" in line and "A - C" in line for line in lines)
