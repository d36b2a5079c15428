"""The learned swappers through the command line: ``bench swap``, ``bench run`` on a folder, ``bench list``,
missing and wrong weight files. Weights: the official formats written by ``tests/learned_weights.py``."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from idbench.bench.samples import load_results
from idbench.bench.cli import app

pytest.importorskip("torch")
LEARNED = ("inswapper", "blendswap", "simswap")


@pytest.fixture(scope="module")
def folder(faces_manifest, shared_faces, tmp_path_factory) -> Path:
    """4 identities x 2 photos of ../shared/data/faces."""
    by_id = {}
    for r in faces_manifest:
        by_id.setdefault(r["identity"], []).append(shared_faces / r["path"])
    root = tmp_path_factory.mktemp("learned_folder") / "faces"
    for ident in [i for i in sorted(by_id) if len(by_id[i]) >= 2][:4]:
        (root / ident).mkdir(parents=True)
        for p in by_id[ident][:2]:
            shutil.copy(p, root / ident / p.name)
    return root


def _one_line_error(r) -> str:
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    return lines[0]


def _swap(folder: Path, out: Path, swapper: str, *extra: str):
    return CliRunner().invoke(app, ["swap", "--swapper", swapper, "--out", str(out), "--k", "5", "--detector",
                                    "dlib-hog", "--no-cache", *extra, str(folder)])


def _pairs(manifest: Path):
    return {(r["source_path"], r["target_path"]) for r in csv.DictReader(open(manifest)) if r["status"] == "ok"}


def test_bench_swap_writes_pasted_back_full_frames(folder, learned_home, tmp_path):
    from idbench.imageio import read_image

    assert _swap(folder, tmp_path / "blend", "blend").exit_code == 0
    blend_pairs = _pairs(tmp_path / "blend" / "manifest.csv")
    for name in LEARNED:
        out = tmp_path / name
        r = _swap(folder, out, name)
        assert r.exit_code == 0, r.output
        rows = list(csv.DictReader(open(out / "manifest.csv")))
        assert len(rows) == 8 and all(x["status"] == "ok" for x in rows), rows
        assert _pairs(out / "manifest.csv") == blend_pairs  # the pair rule of every pair swapper, same seed
        for x in rows[:3]:
            target, swap = read_image(x["target_path"]), read_image(out / x["output_path"])
            mask = read_image(out / x["mask_path"])[:, :, 0]
            assert swap.shape == target.shape  # the full target frame
            diff = np.abs(swap.astype(int) - target.astype(int)).max(axis=2)
            assert diff[mask == 0].max() <= 1 and (mask == 255).sum() > 2000  # untouched outside the paste mask
            assert diff[mask == 255].mean() > 3  # the face was rewritten
            assert x["target_identity"] != x["source_identity"] == Path(x["source_path"]).parent.name
        summary = json.loads((out / "swap.json").read_text())
        for f, info in summary["provenance"]["weights"].items():
            assert info["sha256"] == hashlib.sha256((learned_home / "weights" / f).read_bytes()).hexdigest()
        assert summary["params"]["seed"] == 0 and summary["params"]["k"] == 5
        assert (out / "contact_sheet.png").is_file()
    r = _swap(folder, tmp_path / "x", "simswap", "--mode", "crop")
    assert "blend's options" in _one_line_error(r)


def test_bench_run_on_a_folder_side_by_side_with_blend(folder, learned_home, tmp_path):
    """Seeded pairs (the pseudo-swap's rule) on a folder dataset; both conventions for every swapper."""
    out = tmp_path / "run"
    args = ["run", "--dataset", "folder", "--root", str(folder), "--encoders", "dlib", "--detector", "dlib-hog",
            "--swappers", "blend," + ",".join(LEARNED), "--analyses", "retrieval", "--k-partners", "5",
            "--saliency-faces", "0", "--n-boot", "50", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    res = load_results(out)  # results.json with its samples.npz
    blend = res["swappers"]["blend"]
    n_faces = res["dataset"]["n_faces"]
    assert n_faces == 8 and blend["n_planned"] == 8
    for name in LEARNED:
        sw = res["swappers"][name]
        assert sw["n_planned"] == 8 and sw["summary"]["n_swaps"] >= 6, (name, sw["failures"])
        assert set(sw["per_sample"]["name"]) <= set(blend["per_sample"]["name"])  # same seeded pairs
        assert {"id_retrieval_top1[dlib]", "id_distance[dlib]", "id_relative[dlib]", "pose_l2[pose.pnp]",
                "pose_l1[pose.pnp]", "expression_l2[expression.landmarks]", "gaze_l1[gaze.iris]",
                "pose_relative[pose.pnp]"} <= set(sw["summary"])
        assert sw["params"]["seed"] == 0 and sw["params"]["k"] == 5 and sw["params"]["weights_sha256"]
    rows = {x["name"] for x in csv.DictReader(open(out / "leaderboard.csv"))}
    assert {"dlib", "blend", *LEARNED} <= rows
    # bench swap with the same seed and k plans the same pairs as bench run
    assert _swap(folder, tmp_path / "sw", "blendswap").exit_code == 0
    stem = lambda p: f"{Path(p).parent.name}/{Path(p).stem}"
    cli = {f"{stem(s)}->{stem(t)}" for s, t in _pairs(tmp_path / "sw" / "manifest.csv")}
    assert cli == set(blend["per_sample"]["name"])


def test_bench_list_swappers_weight_status(learned_home, tmp_path, monkeypatch):
    r = CliRunner().invoke(app, ["list", "swappers"])
    assert r.exit_code == 0, r.output
    lines = {ln.split()[0]: ln for ln in r.output.splitlines() if ln.strip()}
    for name in LEARNED:
        assert lines[name].split()[1:3] == ["learned", "present"], lines[name]
    monkeypatch.setenv("IDBENCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["list", "swappers"])
    lines = {ln.split()[0]: ln for ln in r.output.splitlines() if ln.strip()}
    weights_dir = str(tmp_path / "empty" / "weights")
    assert "missing (inswapper_128.onnx)" in lines["inswapper"] and "~/.insightface/models/" in lines["inswapper"]
    assert "missing (latest_net_G.pth)" in lines["simswap"] and "./checkpoints/people/" in lines["simswap"]
    assert "missing (blendswap.pth)" in lines["blendswap"] and weights_dir in lines["blendswap"]


@pytest.fixture
def empty_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("IDBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _never_load(monkeypatch):
    import idbench.bench.datasets as D

    def never(*a, **k):
        raise AssertionError("the dataset was loaded before the weights were checked")

    monkeypatch.setattr(D, "load_dataset", never)


@pytest.mark.parametrize("name, where", [("inswapper", ".insightface/models/inswapper_128.onnx"),
                                         ("blendswap", "checkpoints/blendswap.pth"),
                                         ("simswap", "checkpoints/people/latest_net_G.pth")])
def test_missing_weights_through_the_cli(name, where, folder, empty_home, monkeypatch):
    err = _one_line_error(_swap(folder, empty_home / "o", name))
    assert "not found" in err and where in err and str(empty_home / "home" / "weights") in err
    _never_load(monkeypatch)
    r = CliRunner().invoke(app, ["run", "--dataset", "folder", "--root", str(folder), "--swappers", name,
                                 "--out", str(empty_home / "r")])
    assert where in _one_line_error(r)


def test_wrong_weight_files_through_the_cli(folder, learned_home, tmp_path, monkeypatch):
    w = learned_home / "weights"
    # a SimSwap generator given as blendswap's file: the wrong architecture
    err = _one_line_error(_swap(folder, tmp_path / "o", "blendswap", "--weights",
                                f"blendswap={w / 'latest_net_G.pth'}"))
    assert "not a BlendSwap" in err
    # the recognition graph given as inswapper's: no 512 x 512 emap
    err = _one_line_error(_swap(folder, tmp_path / "o", "inswapper", "--weights",
                                f"inswapper_128.onnx={w / 'w600k_r50.onnx'}"))
    assert "emap is 512 x 512" in err
    # an HTML page where the resolver finds blendswap.pth: bench run stops before the dataset is read
    home = tmp_path / "home"
    shutil.copytree(learned_home, home)
    (home / "weights" / "blendswap.pth").write_text("<html>" + "x" * 2000)
    monkeypatch.setenv("IDBENCH_HOME", str(home))
    _never_load(monkeypatch)
    r = CliRunner().invoke(app, ["run", "--dataset", "folder", "--root", str(folder), "--swappers", "blendswap",
                                 "--out", str(tmp_path / "r")])
    assert "not a PyTorch checkpoint" in _one_line_error(r)
    err = _one_line_error(_swap(folder, tmp_path / "o", "simswap", "--weights", f"latest_net_G={w}"))
    assert "Did you mean: latest_net_G.pth" in err


def test_explicit_weight_paths_through_the_cli(folder, learned_weights_dir, empty_home):
    """--weights FILE=PATH (or the swapper's name, with one file; inswapper's encoder as arcface.onnx)."""
    w = learned_weights_dir / "weights"
    given = {"inswapper": [f"inswapper={w / 'inswapper_128.onnx'}", f"arcface.onnx={w / 'w600k_r50.onnx'}"],
             "simswap": [f"latest_net_G.pth={w / 'latest_net_G.pth'}",
                         f"arcface_checkpoint.tar={w / 'arcface_checkpoint.tar'}"]}
    for name, items in given.items():
        out = empty_home / name
        r = _swap(folder, out, name, "--limit", "2", *[x for item in items for x in ("--weights", item)])
        assert r.exit_code == 0, r.output
        summary = json.loads((out / "swap.json").read_text())
        assert summary["n_ok"] == 2
        prov = summary["provenance"]
        used = {Path(v["path"]) for v in prov["weights"].values()} | ({Path(prov["identity_weights"])}
                                                                      if name == "inswapper" else set())
        assert used == {Path(item.split("=", 1)[1]) for item in items}  # the given files, not searched for
