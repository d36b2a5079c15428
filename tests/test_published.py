"""The published-results table: cited rows, their mapping onto swap columns, and when a report shows them."""

import csv
import dataclasses
import json
import re

import pytest
from typer.testing import CliRunner

from idbench.bench import published as P
from idbench.bench.cli import app
from idbench.errors import InputError

@pytest.fixture(scope="module")
def rows():
    return P.load_published()


def test_every_row_is_cited(rows):
    assert len(rows) >= 12
    for r in rows:
        if r.rechecked:  # read from a repository file: its URL pins the commit it was read at
            assert re.search(r"https://github\.com/\S+/blob/[0-9a-f]{40}/", r.source), r
            assert re.search(r"[0-9a-f]{40}", r.source_version), r
        else:  # attributed only: the row says so and names the paper it is attributed to
            assert r.source.startswith("not read here") and "arxiv.org/abs/" in r.source, r
    faceshifter_line = {r.method for r in rows if r.set == "ffpp-faceshifter"}
    assert {"FaceShifter", "SimSwap", "DeepFakes", "FaceSwap", "Nirkin et al.", "IPGAN"} <= faceshifter_line
    # FaceDancer's model zoo (read at the pinned commit): configuration C on FF++
    c = {r.metric: r.value for r in rows if r.set == "ffpp-facedancer" and r.method == "FaceDancer (Config C)"}
    assert c == {"ID retrieval": 98.57, "Pose": 2.27, "Exp": 7.98}


def test_every_row_maps_to_a_swap_column_or_says_why(rows):
    from idbench.analysis import column_metric
    from idbench.analysis.estimators import list_estimators
    from idbench.bench.report.tables import column_unit
    from idbench.encoders import list_encoders

    evaluators = set(list_estimators()) | set(list_encoders())
    for r in rows:
        if not r.idbench_column:
            assert r.mapping_note.startswith("not mapped: ") and len(r.mapping_note) > 40, r
            continue
        # a swap column of the metric catalogue, suffixed with a registered evaluator (the real run's
        # leaderboard.csv below shows swap_eval writing it)
        evaluator = re.fullmatch(r"[a-z0-9_]+\[(.+)\]", r.idbench_column).group(1)
        assert column_metric(r.idbench_column).kind == "swap" and evaluator in evaluators, r
        assert r.mapping_note.startswith(f"maps to {r.idbench_column}"), r
        # the value, scaled, is in the column's units
        assert (column_unit(r.idbench_column), r.idbench_scale) in {("degrees", 1.0), ("share", 0.01)}, r
        assert r.unit.split()[0] == {"degrees": "degrees", "share": "%"}[column_unit(r.idbench_column)], r


def test_malformed_table_is_an_error(tmp_path, rows):
    p = tmp_path / "t.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(P.FIELDS)
        d = dataclasses.asdict(rows[0])
        w.writerow([{"rechecked": "maybe", "frames": ""}.get(k, d[k]) for k in P.FIELDS])
    with pytest.raises(InputError, match=r"t\.csv:2: rechecked must be yes or no"):
        P.load_published(p)
    with pytest.raises(InputError, match="unknown published set nope: choose all or "):
        P.select(rows, "nope")


def _results(dataset="ffpp", frames=10, columns=("pose_l2[pose.hopenet]",), merged=False):
    prov = {"merged_from": []} if merged else {"arguments": {"frames": frames}}
    return {"dataset": {"name": dataset, "split": "test"}, "provenance": prov,
            "swappers": {"mine": {"summary": {c: 1.0 for c in columns}}}}


def test_shown_only_where_dataset_protocol_and_evaluator_match(rows):
    pose = next(r for r in rows if r.method == "FaceShifter" and r.metric == "Pose")
    idr = next(r for r in rows if r.method == "FaceShifter" and r.metric == "ID retrieval")
    run = P.run_protocol(_results())
    assert P.why_not_shown(pose, run) is None
    assert P.why_not_shown(idr, run) == idr.mapping_note and "CosFace" in idr.mapping_note
    assert P.why_not_shown(pose, P.run_protocol(_results(dataset="lfw"))) == (
        "dataset differs: the row is on ffpp, the run on lfw")
    assert P.why_not_shown(pose, P.run_protocol(_results(columns=("pose_l2[pose.pnp]",)))) == (
        "evaluator differs: the row compares with pose_l2[pose.hopenet], which this run did not compute "
        "(the run has pose_l2[pose.pnp])")
    ten = dataclasses.replace(pose, frames=10, split="test")
    assert P.why_not_shown(ten, run) is None and P.unchecked(ten) == ""
    assert P.why_not_shown(ten, P.run_protocol(_results(frames=3))) == (
        "protocol differs: 10 frames per video in the row, 3 in the run")
    assert P.unchecked(pose) == "not stated by the source, not checked: split / video subset, frames per video"
    assert P.why_not_shown(pose, P.run_protocol(_results(merged=True))).startswith("merged report")
    block = P.published_block(_results(), "ffpp-faceshifter")
    assert {r["method"] for r in block["shown"]} == {"DeepFakes", "FaceSwap", "Nirkin et al.", "IPGAN",
                                                     "FaceShifter", "SimSwap"}
    assert all(r["metric"] == "Pose" for r in block["shown"])
    assert len(block["not_shown"]) == 6 and all("CosFace" in r["reason"] for r in block["not_shown"])


def test_list_published_prints_conventions_and_sources(rows):
    r = CliRunner().invoke(app, ["list", "published"])
    assert r.exit_code == 0, r.output
    for row in rows:
        assert row.method in r.output and row.evaluator in r.output and row.mapping_note in r.output
        assert row.source.split()[-1] in r.output  # the URL
    r = CliRunner().invoke(app, ["list", "published", "aflw*"])
    assert r.exit_code == 0 and "ffpp-facedancer" not in r.output and "aflw2000-facedancer" in r.output


def test_report_rejects_unknown_set(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(_results()))
    r = CliRunner().invoke(app, ["report", str(tmp_path), "--published", "nope"])
    assert r.exit_code == 2 and "error: unknown published set nope" in r.output


# --- a miniature FF++ run (tests/test_bench_ffpp.py's tree), evaluated with and without HopeNet ---------------

from test_bench_ffpp import ffpp_root  # noqa: E402,F401  (the module-scoped miniature FF++ fixture)


@pytest.fixture(scope="module")
def hopenet_home(tmp_path_factory):
    """``$IDBENCH_HOME`` with a HopeNet in the official format (the 0.3-era state dict); random weights."""
    import torch

    from idbench.analysis.estimators import networks

    home = tmp_path_factory.mktemp("hopenet_home")
    (home / "weights").mkdir()
    torch.manual_seed(0)
    sd = networks.binned_resnet({"fc_yaw": 66, "fc_pitch": 66, "fc_roll": 66}).state_dict()
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, home / "weights" / "hopenet_robust_alpha1.pkl", _use_new_zipfile_serialization=False)
    return home


@pytest.fixture(scope="module")
def run_cache(tmp_path_factory):
    """One cache for both runs: the second reuses the detections and embeddings (its estimates differ)."""
    return tmp_path_factory.mktemp("published_cache")


def _run(ffpp_root, out, cache, extra):
    args = ["run", "--dataset", "ffpp", "--root", str(ffpp_root), "--frames", "3", "--encoders", "dlib",
            "--swappers", "ffpp:FaceShifter", "--analyses", "retrieval", "--out", str(out), "--cache-dir", str(cache),
            "--n-boot", "20", "--saliency-faces", "0", *extra]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_report_shows_published_rows_beside_a_matching_run(ffpp_root, hopenet_home, run_cache, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("IDBENCH_HOME", str(hopenet_home))
    out = tmp_path / "hopenet"
    res = _run(ffpp_root, out, run_cache, ["--swap-estimators", "pose=pose.hopenet"])
    mine = res["swappers"]["ffpp:FaceShifter"]["summary"]["pose_l2[pose.hopenet]"]
    header = next(csv.reader(open(out / "leaderboard.csv")))
    assert "pose_l2[pose.hopenet]" in header  # the column the rows map onto, as a real run writes it
    r = CliRunner().invoke(app, ["report", str(out), "--published", "ffpp-faceshifter"])
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text()
    sec = html[html.index('<section id="published">'):]
    sec = sec[:sec.index("</section>")]
    table = sec[sec.index("<table"):sec.index("</table>")]
    # the run's swapper and the six published methods side by side, on the pose row, reported values as given
    assert "<th>ffpp:FaceShifter</th>" in table and "<th>SimSwap (reported*)</th>" in table
    row = re.search(r"<tr><td[^>]*>pose_l2\[pose\.hopenet\]</td>(.*?)</tr>", table).group(1)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells[0] == "degrees" and float(cells[1]) == pytest.approx(mine, abs=5e-4)
    assert [float(c) for c in cells[2:]] == [4.14, 2.51, 3.29, 4.04, 2.96, 1.53]
    assert "not re-run" in sec and "arxiv.org/abs/1912.13457" in sec
    assert "Not shown" in sec and "CosFace" in sec and "id_retrieval_top1" not in table
    md = (out / "leaderboard.md").read_text()
    assert "## Published results (reported, not re-run)" in md
    assert re.search(r"\| pose_l2\[pose\.hopenet\] \| degrees \| [0-9.]+ \| 4\.14 \| 2\.51 \|", md)
    assert "published" not in next(csv.reader(open(out / "leaderboard.csv")))  # measured numbers only


@pytest.mark.slow
def test_report_says_why_published_rows_are_not_shown(ffpp_root, run_cache, tmp_path):
    out = tmp_path / "pnp"
    _run(ffpp_root, out, run_cache, [])  # default estimators: pose.pnp
    r = CliRunner().invoke(app, ["report", str(out), "--published", "ffpp-faceshifter", "--format", "html"])
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text()
    sec = html[html.index('<section id="published">'):]
    assert "No published row matches" in sec
    assert ("6 row(s) (Pose of DeepFakes, FaceSwap, Nirkin et al., IPGAN, FaceShifter, SimSwap): evaluator differs: "
            "the row compares with pose_l2[pose.hopenet], which this run did not compute (the run has "
            "pose_l2[pose.pnp])") in sec


def test_swap_estimators_must_name_an_estimator_of_the_kind(tmp_path):
    r = CliRunner().invoke(app, ["run", "--swap-estimators", "pose=gaze.iris", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--swap-estimators takes KIND=NAME" in r.output and "'pose=gaze.iris'" in r.output
    assert not (tmp_path / "o" / "results.json").exists()
