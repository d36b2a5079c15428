"""`bench run` end to end on the embedded sample and on a folder dataset; outputs, cache and report."""

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from idbench.bench.samples import load_results
from idbench.bench.cli import app

REQUIRED_ENCODER_KEYS = {"n_faces", "n_identities", "bias", "scores", "verification", "retrieval"}


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    args = ["run", "--dataset", "sample", "--root", str(d / "sample"), "--encoders", "dlib", "--out",
            str(d / "out"), "--cache-dir", str(d / "cache"), "--n-boot", "200", "--saliency-faces", "2"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return d, args


def test_outputs_schema(sample_run):
    d, _ = sample_run
    out = d / "out"
    rows = list(csv.DictReader(open(out / "leaderboard.csv")))
    assert rows[0]["name"] == "direction" and rows[0]["verification_auc"] == "higher"
    assert rows[0]["bias_mean_gap"] == "lower"
    dlib = next(r for r in rows if r["name"] == "dlib")
    for col in ("positive_mean", "swapped_mean", "negative_mean", "bias_mean_gap", "bias_auc", "verification_auc",
                "eer", "retrieval_top1"):
        assert dlib[col] != "", col
    res = load_results(out)  # results.json with its samples.npz
    enc = res["encoders"]["dlib"]
    assert REQUIRED_ENCODER_KEYS <= set(enc)
    b = enc["bias"]
    assert b["positive_mean"] > b["negative_mean"]
    assert len(b["mean_gap_ci"]) == 2 and b["mean_gap_ci"][0] <= b["mean_gap"] <= b["mean_gap_ci"][1]
    assert len(enc["scores"]["positive"]) > 0 and len(enc["scores"]["swapped"]) > 0
    prov = res["provenance"]
    assert prov["seed"] == 0 and prov["packages"]["numpy"] and prov["weights_sha256"]["dlib"]
    assert "VERY SMALL" in res["dataset"]["description"]
    html = (out / "report.html").read_text()
    assert 'src="http' not in html and "plotly" in html.lower() and len(html) > 1_000_000  # plotly.js embedded
    assert "VERY SMALL" in html


def test_rerun_hits_cache_and_gives_same_numbers(sample_run):
    d, args = sample_run
    from idbench.bench.run import RunConfig, run

    res = run(RunConfig(dataset="sample", root=str(d / "sample"), encoders=["dlib"], out=str(d / "out2"),
                        cache_dir=str(d / "cache"), n_boot=200, saliency_faces=0, progress=False))
    assert res["cache"]["misses"] == 0 and res["cache"]["hits"] > 0
    first = json.loads((d / "out" / "results.json").read_text())["encoders"]["dlib"]
    assert res["encoders"]["dlib"]["bias"]["mean_gap"] == pytest.approx(first["bias"]["mean_gap"], abs=1e-6)


def test_report_rebuild_and_merge(sample_run, tmp_path):
    d, _ = sample_run
    r = CliRunner().invoke(app, ["report", str(d / "out"), str(d / "out"), "--out", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "m" / "leaderboard.csv")))
    assert [x["name"] for x in rows[1:]] == ["dlib"]  # the same run twice: the same numbers, one row


def _screens_dir(tmp_path) -> Path:
    """Where section screenshots go: $IDBENCH_SCREENS, else /work/screens on the project machine, else tmp."""
    import os

    if os.environ.get("IDBENCH_SCREENS"):
        return Path(os.environ["IDBENCH_SCREENS"])
    return Path("/work/screens") if Path("/work").is_dir() and os.access("/work", os.W_OK) else tmp_path / "screens"


def test_report_renders_in_chromium(sample_run, tmp_path):
    from idbench.bench.report._chromium import (dump_dom, figures, find_chromium, js_errors, section_screens,
                                                untitled_axes, with_probe)

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed")
    out = sample_run[0] / "out"
    page = (out / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(with_probe(page))
    dom, stderr = dump_dom(chromium, probe, tmp_path / "profile")
    assert js_errors(dom) == []  # no uncaught error, no console.error
    assert "Uncaught" not in stderr
    # every plot was drawn: plotly adds an svg 'main-svg' to each rendered graph div
    n_divs = dom.count('class="plotly-graph-div')
    figs = figures(page)
    assert n_divs == len(figs) >= 3 and dom.count("main-svg") >= n_divs
    assert [a for f in figs for a in untitled_axes(f)] == []  # every shown axis has a title
    results = json.loads((out / "results.json").read_text())
    shots = section_screens(results, out, _screens_dir(tmp_path), "sample", chromium, tmp_path / "sections")
    assert {"summary", "bias", "verification", "retrieval", "failures", "provenance"} <= set(shots)
    for png in shots.values():
        assert png.stat().st_size > 5_000


def test_bad_dataset_root_is_clear(tmp_path):
    r = CliRunner().invoke(app, ["run", "--dataset", "ffpp", "--root", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "original_sequences" in r.output
    r = CliRunner().invoke(app, ["run", "--dataset", "folders", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "Did you mean: folder" in r.output


def test_interrupted_run_resumes_from_cache(sample_run, tmp_path, monkeypatch):
    d, _ = sample_run
    import idbench.bench.run as R
    from idbench import pipeline

    calls = {"n": 0}
    real = pipeline.detect_item

    def dying(*a, **kw):
        calls["n"] += 1
        if calls["n"] > 15:
            raise KeyboardInterrupt  # the run is killed part-way
        return real(*a, **kw)

    cfg = R.RunConfig(dataset="sample", root=str(d / "sample"), encoders=["dlib"], out=str(tmp_path / "o"),
                      cache_dir=str(tmp_path / "cache"), n_boot=100, saliency_faces=0, progress=False)
    monkeypatch.setattr(pipeline, "detect_item", dying)
    with pytest.raises(KeyboardInterrupt):
        R.run(cfg)
    assert not (tmp_path / "o" / "results.json").exists()
    monkeypatch.setattr(pipeline, "detect_item", real)
    res = R.run(cfg)
    # the 15 images detected before the interruption came back from the cache
    assert res["cache"]["hits"] >= 15
    assert res["encoders"]["dlib"]["retrieval"]["top1"] is not None


def test_torchrun_two_ranks_match_one_process(sample_run, tmp_path):
    """The same command under torchrun (2 CPU ranks, gloo) shards the work and merges on rank 0."""
    import sys

    d, _ = sample_run
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "idbench.bench.cli", "run", "--dataset", "sample", "--root", str(d / "sample"), "--encoders", "dlib",
           "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--n-boot", "200", "--saliency-faces", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    one = json.loads((d / "out" / "results.json").read_text())["encoders"]["dlib"]
    two = json.loads((out / "results.json").read_text())["encoders"]["dlib"]
    assert two["n_faces"] == one["n_faces"]
    for key in ("positive_mean", "swapped_mean", "negative_mean", "mean_gap", "auc"):
        assert two["bias"][key] == pytest.approx(one["bias"][key], abs=1e-5), key
    assert two["verification"]["auc"] == pytest.approx(one["verification"]["auc"])
    # each rank built, detected and embedded its own contiguous block of the bias pseudo-swaps, together all
    shares = sorted((int(m[2]), int(m[3]), int(m[0]), int(m[4]), int(m[5]), int(m[6])) for m in re.findall(
        r"idbench rank (\d+)/(\d+): bias pseudo-swaps items \[(\d+), (\d+)\) of (\d+): (\d+) embedded, (\d+) failed",
        r.stderr))
    assert [s[2] for s in shares] == [0, 1] and shares[0][0] == 0 and shares[0][1] == shares[1][0] > 0
    assert shares[1][1] == shares[0][3] == shares[1][3]  # the blocks tile the plan's swaps
    assert sum(s[4] for s in shares) == two["bias"]["n_swapped"] == one["bias"]["n_swapped"]
