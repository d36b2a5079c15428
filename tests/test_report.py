"""The report: leaderboard.md/.tex against leaderboard.csv, ROC/DET against scikit-learn, densities and colour
scales, axis titles, the swap table, failures, old results.json, the CLI's --format.

The results come from the real per-encoder analysis (``encoder_analysis.analyse``) on seeded synthetic embeddings;
expected values are computed here by hand or by scikit-learn, never by the report code.
"""

import csv
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from idbench.analysis import roc_auc_ci
from idbench.bench import encoder_analysis as EA
from idbench.bench.cli import app
from idbench.bench.report import render_report, write_outputs
from idbench.bench.report._chromium import figures, untitled_axes
from idbench.bench.report._plot import wilson

ENCODERS = {"enc_sharp": 1.2, "enc_blurry": 2.0}  # name -> within-identity noise


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# half-widths of the swappers' 95% intervals: identity and gaze separate the two swappers, pose does not
HALF = {"id_distance[enc_sharp]": 0.05, "id_relative[enc_sharp]": 0.15, "pose_l1[pose.pnp]": 1.0,
        "expression_l2[expression.landmarks]": 0.01, "gaze_angular[gaze.mediapipe]": 0.5}


def _swapper(id_dist, id_rel, pose, expr, gaze, n=40):
    summary = {"id_distance[enc_sharp]": id_dist, "id_relative[enc_sharp]": id_rel, "pose_l1[pose.pnp]": pose,
               "expression_l2[expression.landmarks]": expr, "gaze_angular[gaze.mediapipe]": gaze,
               "pose_n[pose.pnp]": n, "n_swaps": n}
    directions = {k: ("higher" if "relative" in k else "lower") for k in summary}
    directions.update({"pose_n[pose.pnp]": "", "n_swaps": ""})
    intervals = {k: [summary[k] - h, summary[k] + h] for k, h in HALF.items()}
    return {"summary": summary, "directions": directions, "intervals": intervals, "errors": [["t_s.png", "no face in the swap"]],
            "estimators": {"pose": "pose.pnp"}, "id_encoders": ["enc_sharp"], "params": {"alpha": 1.0}}


def make_results(tmp_path, n_id=12, per=5, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_id, 32))
    labels = np.repeat([f"person_{i:02d}" for i in range(n_id)], per)
    from idbench.swapper.blend import choose_partners

    partner, _ = choose_partners(rng.normal(size=(n_id * per, 68, 2)), labels, k=10, seed=seed)
    plan = EA.plan_bias(labels, partner, seed=seed)
    encs = {}
    for name, noise in ENCODERS.items():
        emb = _unit(centers[np.arange(n_id).repeat(per)] + noise * rng.normal(size=(n_id * per, 32)))
        swap = _unit(0.7 * emb[[s[1] for s in plan.swaps]] + 0.5 * emb[[s[2] for s in plan.swaps]])
        encs[name] = EA.analyse(emb, labels, plan, swap, seed=seed, n_boot=200)
        encs[name]["saliency"] = _saliency(tmp_path / name, rng, name)
    return {"encoders": encs, "swappers": {"swap_a": _swapper(0.30, 0.9, 4.0, 0.20, 7.5),
                                           "swap_b": _swapper(0.45, 0.7, 2.5, 0.25, 6.0)},
            "dataset": {"name": "folder", "description": "synthetic clusters", "n_items": 61, "n_faces": n_id * per,
                        "skipped": [["/data/broken.jpg", "cannot decode image"]], "notes": ["a note"],
                        "split": None},
            "failures": [{"stage": "embed", "item": "/data/odd.png", "reason": "alignment failed"}],
            "provenance": {"seed": seed, "packages": {"numpy": np.__version__}}}


def _saliency(d, rng, name):
    d.mkdir(parents=True)
    maps, faces = [], []
    for i in range(3):
        crop = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
        sal = rng.random((40, 40)) * (i + 1) * (2 if name == "enc_blurry" else 1)

        mask = np.zeros((40, 40))
        mask[10:30, 12:28] = 1
        np.savez_compressed(d / f"face_{i}.npz", crop=crop, saliency=sal, mask=mask)
        maps.append(str(d / f"face_{i}.npz"))
        faces.append({"image": f"/data/person_0{i}/img_{i}.jpg", "identity": f"person_0{i}"})
    return {"method": "occlusion", "n": 3, "maps": maps, "faces": faces, "overlays": [],
            "inner_ratios": [0.5, 0.6, 0.7], "inner_ratio_mean": 0.6, "inner_ratio_std": 0.0816}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    res = make_results(d)
    write_outputs(res, d)
    from idbench.bench.samples import load_results

    return d, load_results(d)


def _csv(d):
    rows = list(csv.DictReader(open(d / "leaderboard.csv")))
    return rows[0], {r["name"]: r for r in rows[1:]}


def _md_tables(text):
    """{kind: (columns, {row name: cells})} from leaderboard.md (its per-group tables joined)."""
    out = {}
    for block in text.split("\n## ")[1:]:
        lines = [l for l in block.splitlines() if l.startswith("|")]
        head = [c.strip() for c in lines[0].strip("|").split("|")]
        cols = [h.split(" ")[0] for h in head[1:]]
        kind_cols, rows = out.setdefault(head[0], ([], {}))
        kind_cols += cols
        for l in lines[2:]:
            cells = [c.strip() for c in l.strip("|").split("|")]
            rows.setdefault(cells[0], {}).update(zip(cols, cells[1:]))
    return out


def _num(cell):
    return cell.strip("*").split(" ± ")[0]


# raw cosine means and gaps are on each encoder's own scale: never bold (the rule in tables.BOLD_RULE)
NOT_COMPARABLE = {"positive_mean", "swapped_mean", "negative_mean", "bias_mean_gap", "bias_wasserstein"}


def _ci_by_hand(res, kind, name, col):
    if kind == "swapper":
        return res["swappers"][name].get("intervals", {}).get(col)
    enc = res["encoders"][name]
    paths = {"bias_mean_gap": "mean_gap_ci", "bias_relative_gap": "relative_gap_ci", "bias_auc": "auc_ci"}
    if col in paths:
        return enc["bias"][paths[col]]
    if col == "verification_auc":  # DeLong's interval, recomputed from the stored pair scores
        v = enc["verification"]
        return roc_auc_ci(v["pair_scores"], v["pair_labels"])
    if col.startswith("retrieval_top"):
        r = enc["retrieval"]
        return wilson(r[col.split("_")[1]] * r["n_probes"], r["n_probes"])
    return None


def test_markdown_shows_the_csv_numbers_with_bold_only_beyond_uncertainty(run_dir):
    d, res = run_dir
    direction, csv_rows = _csv(d)
    tables = _md_tables((d / "leaderboard.md").read_text())
    for kind in ("encoder", "swapper"):
        cols, rows = tables[kind]
        assert rows and cols
        for name, cells in rows.items():
            for c in cols:
                v, shown = float(csv_rows[name][c]), _num(cells[c])
                decimals = len(shown.split(".")[1]) if "." in shown else 0
                assert float(shown) == pytest.approx(v, abs=0.5 * 10 ** -decimals + 1e-12), (name, c)
        for c in cols:  # the bold cell, found here by hand: best beats the runner-up with disjoint 95% intervals
            vals = {n: float(csv_rows[n][c]) for n in rows}
            order = sorted(vals, key=vals.get, reverse=direction[c] == "higher")
            a, b = _ci_by_hand(res, kind, order[0], c), _ci_by_hand(res, kind, order[1], c)
            separated = (a is not None and b is not None and vals[order[0]] != vals[order[1]]
                         and (a[0] > b[1] if direction[c] == "higher" else a[1] < b[0]))
            expected = {order[0]} if separated and c not in NOT_COMPARABLE else set()
            bold = {n for n, cells in rows.items() if cells[c].startswith("**")}
            assert bold == expected, c
    # hand-picked: swap_a has the clearly smaller identity distance, swap_b the clearly smaller gaze error; their
    # pose errors (4.0 +- 1.0 vs 2.5 +- 1.0) overlap, so neither is bold
    sw = tables["swapper"][1]
    assert sw["swap_a"]["id_distance[enc_sharp]"].startswith("**")
    assert sw["swap_b"]["gaze_angular[gaze.mediapipe]"].startswith("**")
    assert not any(sw[n]["pose_l1[pose.pnp]"].startswith("**") for n in sw)
    assert not any(tables["encoder"][1][n]["positive_mean"].startswith("**") for n in tables["encoder"][1])
    assert list(tables["swapper"][0])[:2] == ["id_distance[enc_sharp]", "id_relative[enc_sharp]"]
    assert "pose_n[pose.pnp]" not in tables["swapper"][0] and "n_swaps" not in tables["swapper"][0]


def _pm(cell):
    """(the +- value shown, its rounding tolerance)."""
    pm = cell.strip("*").split(" ± ")[1]
    return float(pm), 0.5 * 10 ** -len(pm.split(".")[1]) + 1e-12


def test_plus_minus_is_half_the_bootstrap_interval_or_the_fold_std(run_dir):
    d, res = run_dir
    cols, rows = _md_tables((d / "leaderboard.md").read_text())["encoder"]
    for name, cells in rows.items():
        b = res["encoders"][name]["bias"]
        for col, key in (("bias_mean_gap", "mean_gap_ci"), ("bias_auc", "auc_ci")):
            (lo, hi), (pm, tol) = b[key], _pm(cells[col])
            assert pm == pytest.approx((hi - lo) / 2, abs=tol), col
        pm, tol = _pm(cells["verification_accuracy"])
        assert pm == pytest.approx(res["encoders"][name]["verification"]["accuracy_std"], abs=tol)


def test_latex_is_booktabs_with_one_cell_per_column(run_dir):
    d, res = run_dir
    tex = (d / "leaderboard.tex").read_text()
    _, csv_rows = _csv(d)
    assert tex.count(r"\begin{tabular}") == 2 and tex.count(r"\toprule") == 2 and tex.count(r"\bottomrule") == 2
    for m in re.finditer(r"\\begin\{tabular\}\{(l r*)\}(.*?)\\end\{tabular\}", tex, re.S):
        n_cols = len(m.group(1))
        body = m.group(2).split(r"\midrule")[1]
        rows = [r for r in body.split(r"\\") if "&" in r]
        assert rows
        for r in rows:
            assert len(re.split(r"(?<!\\)&", r)) == n_cols, r
            name = r.split("&")[0].strip().replace(r"\_", "_")
            assert name in csv_rows
    assert re.search(r"(?<!\\)_", tex.replace(r"\_", "")) is None  # every underscore escaped
    assert r"\textbf{" in tex and r"$\pm$" in tex and tex.count("{") == tex.count("}")


def test_roc_and_det_curves_follow_sklearn_with_eer_and_tar_marked(run_dir):
    from sklearn.metrics import roc_curve as sk_roc

    d, res = run_dir
    fig = next(f for f in figures((d / "report.html").read_text()) if f["id"] == "plot-verification")
    lay = fig["layout"]
    assert lay["xaxis"]["type"] == "log" and lay["xaxis"]["range"] == pytest.approx([-4, 0])
    assert lay["yaxis2"]["type"] == "log"
    for name, enc in res["encoders"].items():
        ver = enc["verification"]
        fpr, tpr, _ = sk_roc(ver["pair_labels"], ver["pair_scores"], drop_intermediate=False)
        truth = {(round(a, 9), round(b, 9)) for a, b in zip(fpr, tpr)}
        roc = next(t for t in fig["data"] if t.get("mode") == "lines" and t["name"].startswith(name))
        assert len(roc["x"]) > 5
        assert {(round(a, 9), round(b, 9)) for a, b in zip(roc["x"], roc["y"])} <= truth
        det = next(t for t in fig["data"] if t.get("mode") == "lines" and t["name"] == name)
        assert det["xaxis"] == "x2" and np.allclose(np.add(det["y"], [dict(zip(roc["x"], roc["y"]))[x]
                                                                        for x in det["x"]]), 1)
        marks = [t for t in fig["data"] if t.get("mode") == "markers" and t["legendgroup"] == name]
        eer = [t for t in marks if t["marker"]["symbol"] == "diamond" and t.get("xaxis", "x") == "x"][0]
        assert eer["x"][0] == pytest.approx(ver["eer"]) and eer["y"][0] == pytest.approx(1 - ver["eer"])
        # the EER sits where FAR = 1 - TAR on sklearn's curve, within one step of the curve
        step = 1 / min(sum(ver["pair_labels"]), len(ver["pair_labels"]) - sum(ver["pair_labels"]))
        assert np.min(np.abs(fpr - (1 - tpr))) <= step + 1e-9
        assert abs(ver["eer"] - fpr[np.argmin(np.abs(fpr - (1 - tpr)))]) <= step + 1e-9
        tar3 = [t for t in marks if t["marker"]["symbol"] == "triangle-up" and t.get("xaxis", "x") == "x"][0]
        assert tar3["x"][0] == 1e-3 and tar3["y"][0] == pytest.approx(ver["tar_at_far_1e-3"])


def test_bias_densities_show_n_and_references(run_dir):
    d, res = run_dir
    figs = figures((d / "report.html").read_text())
    hists = [t for f in figs if f["id"].startswith("plot-bias-density") for t in f["data"]]
    assert len(hists) == 3 * len(ENCODERS)  # bins, ranges and outlines: tests/test_paper_outputs.py
    for name, enc in res["encoders"].items():
        for g in ("positive", "swapped", "negative"):
            v = enc["scores"][g]
            label = f"(n={len(v)}, mean {np.mean(v):.3f})"
            mine = [t for t in hists if t["name"].startswith(g) and label in t["name"]]
            assert len(mine) >= 1, (name, g)
            # the page holds the binned outline, not the scores (its size does not grow with N)
            assert len(mine[0]["y"]) <= 2 * 40 + 2  # at most 40 bins: two points each, plus both ends
    assert len({t.get("legend", "legend") for t in hists}) == len(ENCODERS)  # one legend per encoder's row
    iv = next(f for f in figs if f["id"] == "plot-bias-intervals")
    refs = sorted((s["x0"], s["xref"]) for s in iv["layout"]["shapes"])
    assert refs == [(0, "x"), (0, "x2"), (0.5, "x3")]
    # encoders sorted by relative gap, lowest first (checked against results.json by hand)
    order = sorted(res["encoders"], key=lambda n: res["encoders"][n]["bias"]["relative_gap"])
    assert [t["y"][0] for t in iv["data"] if t.get("xaxis", "x") == "x"] == order
    for t in iv["data"]:
        b = res["encoders"][t["y"][0]]["bias"]
        key = {"x": "mean_gap", "x2": "relative_gap", "x3": "auc"}[t.get("xaxis", "x")]
        assert t["x"][0] == pytest.approx(b[key])
        assert t["x"][0] + t["error_x"]["array"][0] == pytest.approx(b[key + "_ci"][1])


def test_every_plot_has_axis_titles(run_dir):
    d, _ = run_dir
    figs = figures((d / "report.html").read_text())
    assert {"plot-verification", "plot-bias-intervals", "plot-swaps", "plot-saliency"} <= {f["id"] for f in figs}
    assert [a for f in figs for a in untitled_axes(f)] == []


def test_saliency_has_one_colour_scale_captions_and_mask_outlines(run_dir):
    d, res = run_dir
    fig = next(f for f in figures((d / "report.html").read_text()) if f["id"] == "plot-saliency")
    heat = [t for t in fig["data"] if t["type"] == "heatmap"]
    allabs = np.concatenate([np.abs(np.load(d / p)["saliency"]).ravel() for e in res["encoders"].values()
                             for p in e["saliency"]["maps"]])
    per_encoder = [np.percentile(np.concatenate([np.abs(np.load(d / p)["saliency"]).ravel() for p in e["saliency"]["maps"]]),
                                 99) for e in res["encoders"].values()]
    hi, lo = max(per_encoder), max(min(per_encoder) / 20, max(per_encoder) / 1e4)
    assert len(heat) == 6 and allabs.max() > 0
    assert [(t["zmin"], t["zmax"]) for t in heat] == [pytest.approx((np.log10(lo), np.log10(hi)))] * 6  # one scale
    z, raw = np.asarray(heat[0]["z"], float), np.asarray(heat[0]["customdata"], float)
    np.testing.assert_allclose(z, np.log10(np.clip(raw, lo, hi)), atol=1e-3)  # log10 of the drop, clipped
    assert sum(bool(t.get("showscale")) for t in heat) == 1
    assert len([t for t in fig["data"] if t["type"] == "contour"]) == 6
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert any("person_01" in t and "img_1.jpg" in t and "0.60" in t for t in titles)


def test_sections_in_order_with_failures_listed(run_dir):
    d, res = run_dir
    page = (d / "report.html").read_text()
    pos = [page.index(f'<section id="{s}"') for s in ("summary", "bias", "verification", "retrieval", "swaps",
                                                         "saliency", "leaderboard", "failures", "provenance")]
    assert pos == sorted(pos)
    fail = page[pos[7]:pos[8]]
    for item in ("/data/broken.jpg", "cannot decode image", "/data/odd.png", "alignment failed", "t_s.png"):
        assert item in fail
    assert "<details>" in page[pos[8]:] and "pre class='wrap'" in page
    summary = page[pos[0]:pos[1]]
    b = res["encoders"]["enc_sharp"]["bias"]
    assert f"{b['mean_gap']:.4f} [{b['mean_gap_ci'][0]:.4f}, {b['mean_gap_ci'][1]:.4f}]" in summary
    assert "see Failures" in summary and "61 images, 60 faces" in summary
    assert "alpha=1.0" in page  # the swapper's params


def test_swap_table_grouped_with_units_and_charts_only_for_several(run_dir, tmp_path):
    d, res = run_dir
    page = (d / "report.html").read_text()
    sw = page[page.index('<section id="swaps"'):page.index('<section id="saliency"')]
    heads = re.findall(r'<th colspan="(\d+)">([^<]*)</th>', sw)
    assert [h for _, h in heads if h] == ["identity", "pose", "expression", "gaze"]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr><td>([^<]+)</td>.*?</tr>", sw)}
    assert "<td>degrees</td><td>↓ lower</td>" in rows["pose_l1[pose.pnp]"]
    assert "<td>share</td><td>↑ higher</td>" in rows["id_relative[enc_sharp]"]
    assert "<td>inter-ocular distances</td>" in rows["expression_l2[expression.landmarks]"]
    # best by hand: swap_a (first column) has the clearly smaller id distance; the pose errors' intervals overlap
    assert rows["id_distance[enc_sharp]"].endswith('<td class="best">0.300 ± 0.050</td><td>0.450 ± 0.050</td></tr>')
    assert rows["pose_l1[pose.pnp]"].endswith('<td>4.00 ± 1.00</td><td>2.50 ± 1.00</td></tr>')
    assert "pose_n[pose.pnp]" not in rows and rows["swaps evaluated"].endswith("<td>40</td><td>40</td></tr>")
    one = dict(res, swappers={"swap_a": res["swappers"]["swap_a"]})
    single = render_report(one, d, sections=["swaps"])
    assert "plot-swaps" not in single and 'class="best"' not in single  # nothing to compare against


def test_old_results_without_new_fields_still_render(run_dir, tmp_path):
    d, res = run_dir
    old = json.loads(json.dumps(res))
    old.pop("failures")
    for e in old["encoders"].values():
        e["verification"].pop("pair_scores")
        e["verification"].pop("pair_labels")
        e["saliency"] = {"overlays": [], "inner_ratio_mean": 0.5, "inner_ratio_std": 0.1, "n": 2}
    for s in old["swappers"].values():
        s.pop("params")
    write_outputs(old, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "No per-pair scores stored" in page and "/data/broken.jpg" in page
    assert [a for f in figures(page) for a in untitled_axes(f)] == []


def test_wilson_interval_by_hand():
    lo, hi = wilson(8, 10)  # Wilson (1927) score interval for 8/10, z = 1.96
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)


def test_report_cli_format(run_dir, tmp_path):
    d, _ = run_dir
    target = tmp_path / "r"
    target.mkdir()
    (target / "results.json").write_text((d / "results.json").read_text())
    r = CliRunner().invoke(app, ["report", str(target), "--format", "md"])
    assert r.exit_code == 0, r.output
    assert (target / "leaderboard.md").is_file() and not (target / "report.html").exists()
    assert not (target / "leaderboard.tex").exists()
    r = CliRunner().invoke(app, ["report", str(target), "--format", "tex", "--format", "html"])
    assert r.exit_code == 0 and (target / "leaderboard.tex").is_file() and (target / "report.html").is_file()
    r = CliRunner().invoke(app, ["report", str(target), "--format", "pdf"])
    assert r.exit_code == 2 and "html | md | tex" in r.output
