"""Paper outputs (issue: tables and figures that go into a paper unchanged): preset/column tables whose LaTeX
compiles in a two-column article at its natural width, vector figures whose PDF/SVG hold the run's text."""

import re
import shutil
from pathlib import Path
import subprocess
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from idbench.bench.cli import app
from idbench.bench.report import write_outputs
from idbench.bench.report._chromium import figures, find_chromium
from idbench.bench.report.figures import WIDTHS, write_figures
from idbench.bench.report.paper import PRESETS, paper_table, to_latex, to_markdown

from test_report import make_results


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_results(tmp_path_factory.mktemp("paper"))


def test_presets_choose_order_and_name_the_columns(results):
    t = paper_table(results, preset="blendface-swap")  # the run has no gaze_l1 nor expression_l1: skipped
    assert t.columns == ["id_distance[enc_sharp]", "pose_l1[pose.pnp]"] and t.names == ["swap_a", "swap_b"]
    md = to_markdown(paper_table(results, columns=["gaze_angular[*]", "id_distance[enc_sharp]", "pose_l1[*]"]))
    head = md.splitlines()[0]
    assert head == "| swapper | gaze angle ↓ (degrees) | ID dist. ↓ (1 - cos) | pose L1 ↓ (degrees) |"
    assert "Evaluators: gaze angle: gaze.mediapipe; ID dist.: enc_sharp; pose L1: pose.pnp." in md
    enc = to_markdown(paper_table(results, preset="encoder-bias"))
    assert enc.splitlines()[0].startswith("| encoder | rel. gap ↓ (share of P - N) | bias AUC ↓ (probability)")
    with pytest.raises(KeyError, match="Did you mean"):
        paper_table(results, columns=["pose_l3[*]"])


def _tabular(tex: str) -> str:
    return re.search(r"\\begin\{tabular\}.*?\\end\{tabular\}", tex, re.S).group(0)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (texlive-latex-base)")
@pytest.mark.parametrize("preset,env", [("encoder-bias", "table"), ("verification", "table"),
                                        ("blendface-swap", "table"), ("encoder-bias", "table*")])
def test_latex_compiles_in_a_two_column_article_at_natural_width(results, tmp_path, preset, env):
    t = paper_table(results, preset=preset)
    (tmp_path / "t.tex").write_text(to_latex(t, env, label=f"tab:{preset}"))
    (tmp_path / "tabular.tex").write_text(_tabular(to_latex(t, env)))
    width = r"\textwidth" if env == "table*" else r"\columnwidth"
    (tmp_path / "doc.tex").write_text(rf"""\documentclass[twocolumn]{{article}}
\usepackage{{booktabs}}
\begin{{document}}
\newsavebox{{\tb}}
\sbox{{\tb}}{{\footnotesize\setlength{{\tabcolsep}}{{3pt}}\input{{tabular.tex}}}}
\typeout{{IDBENCH-WIDTH=\the\wd\tb\space OF=\the{width}}}
\input{{t.tex}}
Some text so the page is not empty.
\end{{document}}
""")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:]
    m = re.search(r"IDBENCH-WIDTH=([\d.]+)pt OF=([\d.]+)pt", r.stdout)
    assert m, r.stdout[-1000:]
    natural, available = float(m.group(1)), float(m.group(2))
    assert natural <= available, f"{preset}: table {natural}pt wide in a {available}pt column"
    assert "Overfull" not in r.stdout
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def _pdf_pages_and_size(path):
    data = path.read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    return len(re.findall(rb"/Type\s*/Page\b", data)), [(float(w), float(h)) for w, h in boxes]


def test_vector_figures_pdf_and_svg_sized_for_a_paper(results, tmp_path):
    files = write_figures(results, tmp_path, ["pdf", "svg"])
    names = {f.name for f in files}
    for fig in ("bias-ecdf", "bias-ci", "roc", "swaps"):
        for w in WIDTHS:
            assert {f"{fig}-{w}.pdf", f"{fig}-{w}.svg"} <= names, (fig, w)
    for f in files:
        if f.suffix == ".pdf":
            pages, boxes = _pdf_pages_and_size(f)
            assert pages == 1 and boxes, f
            want = WIDTHS[f.stem.rsplit("-", 1)[1]] * 72
            assert boxes[0][0] == pytest.approx(want, abs=0.5), f  # 3.3 in / 6.9 in wide
    # the text is text: encoder and swapper names, axis titles, in the SVG's <text> elements
    def texts(name):
        root = ET.parse(tmp_path / "figures" / name).getroot()
        return " ".join("".join(e.itertext()) for e in root.iter() if e.tag.endswith("text"))
    assert "enc_sharp" in texts("bias-ecdf-col.svg") and "cosine to the anchor" in texts("bias-ecdf-col.svg")
    assert "swap_a" in texts("swaps-wide.svg") and "degrees" in texts("swaps-wide.svg")
    assert "false accept rate" in texts("roc-col.svg")


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_pdf_figures_hold_their_text(results, tmp_path):
    files = [f for f in write_figures(results, tmp_path, ["pdf"]) if f.name == "swaps-col.pdf"]
    out = subprocess.run(["pdftotext", str(files[0]), "-"], capture_output=True, text=True).stdout
    assert "swap_a" in out and "swap_b" in out and "ID dist." in out


@pytest.mark.parametrize("n", [1, 2, 8, 12])
def test_figures_stay_readable_for_1_to_12_rows_with_40_character_names(results, n):
    import matplotlib.pyplot as plt

    from idbench.bench.report.figures import FIGURES, _style, text_overlaps

    many = dict(results)
    base = results["swappers"]["swap_a"]
    many["swappers"] = {f"method_{i:02d}_" + "x" * 29: base for i in range(n)}  # 40-character names
    many["encoders"] = {f"encoder_{i:02d}_" + "y" * 28: e for i, e in
                        zip(range(n), list(results["encoders"].values()) * n)}
    with plt.rc_context(_style()):
        for name, make in FIGURES.items():
            for width in WIDTHS.values():
                fig = make(many, width)
                overlaps = text_overlaps(fig)
                labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
                plt.close(fig)
                assert not overlaps, (name, width, overlaps[:3])
                if name == "swaps":
                    assert f"method_{n - 1:02d}_" + "x" * 29 in labels  # the full name, not cut


def test_bench_report_writes_preset_tables_and_figures(tmp_path):
    write_outputs(make_results(tmp_path), tmp_path)  # a run folder holds its maps (bench report reads no other)
    r = CliRunner().invoke(app, ["report", str(tmp_path), "--preset", "encoder-bias,blendface-swap",
                                 "--columns", "bias_relative_gap,verification_auc", "--tex-env", "table*",
                                 "--label", "tab:x", "--figures", "pdf"])
    assert r.exit_code == 0, r.output
    for f in ("tables/encoder-bias.tex", "tables/blendface-swap.md", "tables/custom.tex", "figures/roc-col.pdf"):
        assert (tmp_path / f).is_file(), f
    tex = (tmp_path / "tables" / "custom.tex").read_text()
    assert r"\begin{table*}" in tex and r"\label{tab:x-custom}" in tex and "resizebox" not in tex
    r = CliRunner().invoke(app, ["report", str(tmp_path), "--preset", "faceshiftr-swap"])
    assert r.exit_code == 2 and "Did you mean: faceshifter-swap" in r.output
    assert set(PRESETS) >= {"encoder-bias", "verification", "faceshifter-swap", "blendface-swap"}


def many_rows(results, n_swappers: int, n_encoders: int = 2) -> dict:
    """``results`` with ``n_swappers`` swappers and ``n_encoders`` encoders, all with 40-character names."""
    import copy

    out = copy.deepcopy(results)
    base = list(results["swappers"].values())
    out["swappers"] = {}
    for i in range(n_swappers):
        sw = copy.deepcopy(base[i % 2])
        sw["summary"] = {k: v * (1 + 0.03 * i) if "_n[" not in k and k != "n_swaps" else v
                         for k, v in sw["summary"].items()}
        sw["intervals"] = {k: [lo * (1 + 0.03 * i), hi * (1 + 0.03 * i)] for k, (lo, hi) in sw["intervals"].items()}
        out["swappers"][f"swapper_{i:02d}_" + "s" * 29] = sw
    encs = list(results["encoders"].values())
    out["encoders"] = {f"encoder_{i:02d}_" + "e" * 29: copy.deepcopy(encs[i % len(encs)]) for i in range(n_encoders)}
    return out


@pytest.mark.skipif(find_chromium() is None, reason="chromium not installed")
@pytest.mark.parametrize("n", [2, 8, 12])
def test_report_charts_have_no_overlapping_text_in_chromium(results, tmp_path, n):
    from idbench.bench.report._chromium import dump_dom, js_errors, text_overlaps, with_probe
    from idbench.bench.report.layout import render_report

    res = many_rows(results, n, n_encoders=min(n, 4))
    page = render_report(res, tmp_path, sections=["bias", "swaps"])
    assert 'id="plot-swaps"' in page and 'id="plot-bias-density"' in page
    f = tmp_path / "page.html"
    f.write_text(with_probe(page))
    dom, _ = dump_dom(find_chromium(), f, tmp_path / "profile")
    assert js_errors(dom) == []
    assert text_overlaps(dom) == []
    fig = next(x for x in figures(page) if x["id"] == "plot-swaps")
    bars = [t for t in fig["data"] if t.get("error_x")]
    assert len(bars) == n * len([c for c in res["swappers"][next(iter(res["swappers"]))]["intervals"]])


def test_bias_densities_each_encoder_on_its_own_range_as_outlines(results):
    import numpy as np

    from idbench.bench.report.layout import render_report

    page = render_report(results, Path("."), sections=["bias"])
    fig = next(x for x in figures(page) if x["id"] == "plot-bias-density")
    by_axis = {}
    for t in fig["data"]:
        by_axis.setdefault(t.get("xaxis", "x"), []).append(t)
        assert t["type"] == "scatter" and t["mode"] == "lines" and "fill" not in t  # outlines, no colour mixing
    assert len(by_axis) == len(results["encoders"])
    for axis, traces in by_axis.items():  # rows are sorted by relative gap: find each row's encoder by its means
        name = next(n for n, e in results["encoders"].items()
                    if f"mean {np.mean(e['scores']['positive']):.3f})" in traces[0]["name"])
        enc = results["encoders"][name]
        allv = np.concatenate([enc["scores"][g] for g in ("positive", "swapped", "negative")])
        lo, hi = fig["layout"]["xaxis" + axis[1:]]["range"]
        assert lo < allv.min() and hi > allv.max() and (hi - lo) < 1.2 * (allv.max() - allv.min())  # its own range
        assert len({t["line"]["dash"] for t in traces}) == 3
        for t, g in zip(traces, ("positive", "swapped", "negative")):
            x, y = np.asarray(t["x"]), np.asarray(t["y"])
            edges = np.unique(x)
            dens, _ = np.histogram(enc["scores"][g], bins=edges, density=True)  # by hand, numpy
            assert np.allclose(y[1:-1:2], dens) and np.allclose(y[2:-1:2], dens)


def test_merging_runs_keeps_one_row_per_encoder_and_dataset(results, tmp_path):
    import copy

    from idbench.bench.report import merge_results

    a, b = tmp_path / "a" / "run", tmp_path / "b" / "run"  # two runs whose folders share a name
    results = copy.deepcopy(results)
    for e in results["encoders"].values():
        e.pop("saliency")  # its maps live outside these run folders
    write_outputs(results, a)
    other = copy.deepcopy(results)
    other["encoders"]["enc_blurry"]["bias"]["relative_gap"] += 0.1  # another seed or model: other numbers
    write_outputs(other, b)
    merged = merge_results([a, b])
    assert sorted(merged["encoders"]) == ["b/run/enc_blurry", "enc_blurry", "enc_sharp"]  # enc_sharp once
    assert any("enc_sharp: also in run b/run with the same numbers" in n for n in merged["dataset"]["notes"])
    assert any("shown as its own row b/run/enc_blurry" in n for n in merged["dataset"]["notes"])
    assert sorted(merged["swappers"]) == ["swap_a", "swap_b"]
