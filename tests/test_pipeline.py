"""The one pipeline and the one Swapper interface, end to end on a small folder of real photos.

Counts detector/encoder/estimator calls by wrapping the factories, checks that a swap without a face
is a listed failure (not scored), that a failing estimator is reported, that the three former
``blend`` paths give identical swaps, ``results:DIR`` naming with ``_`` in identities, fail-fast.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from idbench.bench.cli import app

FAST_ESTIMATORS = {"pose": "pose.pnp", "expression": "expression.landmarks"}  # no mediapipe start-up


@pytest.fixture(scope="module")
def small_folder(faces_manifest, shared_faces, tmp_path_factory):
    """4 identities x 3 photos of ../shared/data/faces (names with '_'), copied into a folder dataset."""
    by_id = {}
    for r in faces_manifest:
        by_id.setdefault(r["identity"], []).append(shared_faces / r["path"])
    root = tmp_path_factory.mktemp("small") / "faces"
    for ident in [i for i in sorted(by_id) if len(by_id[i]) >= 3][:4]:
        (root / ident).mkdir(parents=True)
        for p in by_id[ident][:3]:
            shutil.copy(p, root / ident / p.name)
    return root


def _cfg(root, out, cache, **kw):
    from idbench.bench.run import RunConfig

    base = dict(dataset="folder", root=str(root), encoders=["dlib"], out=str(out), cache_dir=str(cache),
                detector="dlib-hog", n_boot=50, saliency_faces=1, progress=False, k_partners=20)
    base.update(kw)
    return RunConfig(**base)


class _Counted:
    """An encoder/detector/estimator proxy counting calls of one method."""

    def __init__(self, obj, method: str, counter: dict, key: str):
        self._obj, self._method, self._counter, self._key = obj, method, counter, key

    def __getattr__(self, name):
        attr = getattr(self._obj, name)
        if name != self._method:
            return attr

        def counted(*a, **kw):
            self._counter[self._key] = self._counter.get(self._key, 0) + 1
            return attr(*a, **kw)

        return counted


def _count_calls(monkeypatch) -> dict:
    import idbench.analysis.estimators as E
    import idbench.bench.run as R
    import idbench.bench.swap_eval as SE
    import idbench.pipeline as P

    calls: dict = {}
    real_det, real_enc, real_est = P.create_detector, R.create_encoders, E.create_estimator
    monkeypatch.setattr(P, "create_detector", lambda *a, **k: _Counted(real_det(*a, **k), "detect", calls, "detect"))
    monkeypatch.setattr(R, "create_encoders", lambda *a, **k: {n: _Counted(e, "embed", calls, "embed")
                                                              for n, e in real_enc(*a, **k).items()})
    monkeypatch.setattr(E, "create_estimator", lambda *a, **k: _Counted(real_est(*a, **k), "estimate", calls,
                                                                         "estimate"))
    monkeypatch.setattr(SE, "ESTIMATOR_DEFAULTS", FAST_ESTIMATORS)
    return calls


def test_warm_rerun_makes_no_detector_encoder_or_estimator_call(small_folder, tmp_path, monkeypatch):
    from idbench.bench.run import run

    calls = _count_calls(monkeypatch)
    cold = run(_cfg(small_folder, tmp_path / "cold", tmp_path / "cache", swappers=["blend"]))
    assert calls["detect"] > 0 and calls["embed"] > 0 and calls["estimate"] > 0  # the counters do count
    calls.clear()
    warm = run(_cfg(small_folder, tmp_path / "warm", tmp_path / "cache", swappers=["blend"]))
    assert calls == {}, calls
    assert warm["cache"]["misses"] == 0
    assert warm["encoders"]["dlib"]["bias"] == cold["encoders"]["dlib"]["bias"]
    assert warm["swappers"]["blend"]["summary"] == cold["swappers"]["blend"]["summary"]
    assert warm["encoders"]["dlib"]["saliency"]["inner_ratios"] == cold["encoders"]["dlib"]["saliency"]["inner_ratios"]
    # the parameters used are recorded, once for the bias analysis and once per swapper
    assert warm["swappers"]["blend"]["params"]["partner"] == "nearest-landmark"
    assert warm["encoders"]["dlib"]["bias"]["swap_params"] == warm["swappers"]["blend"]["params"]
    assert warm["encoders"]["dlib"]["saliency"]["region"] == "inner"


class _TestSwapper:
    """A learned-swapper stand-in: pastes nothing (returns the target), blanks one pair, fails another."""

    def __init__(self):
        self.calls = 0

    def swap(self, source_image, source_face, target_image, target_face):
        from idbench.swapper import SwapError, SwapResult

        self.calls += 1
        if self.calls == 1:
            return SwapResult(np.full_like(target_image, 128), np.zeros(target_image.shape[:2], np.float32))
        if self.calls == 2:
            raise SwapError("bad pair", "the stand-in refuses this one")
        return SwapResult(target_image.copy(), np.zeros(target_image.shape[:2], np.float32))


def _results_dir(small_folder: Path, tmp_path: Path) -> Path:
    ids = sorted(p.name for p in small_folder.iterdir())
    d = tmp_path / "my_method"
    d.mkdir()
    t0 = sorted((small_folder / ids[0]).iterdir())[0]
    s1, s2 = (sorted((small_folder / i).iterdir())[0].stem for i in ids[1:3])
    shutil.copy(t0, d / f"{ids[0]}@{t0.stem}__{ids[1]}@{s1}.jpg")  # the documented separator, exact images
    shutil.copy(t0, d / f"{ids[0]}@{t0.stem}_{ids[2]}@{s2}.jpg")  # the older single '_', still unambiguous here
    s3 = sorted((small_folder / ids[3]).iterdir())[0].stem
    (d / f"{ids[0]}@{t0.stem}__{ids[3]}@{s3}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # unreadable: a per-item failure
    shutil.copy(t0, d / "nobody__{}.jpg".format(ids[1]))  # no such identity: listed
    return d


def test_swap_failures_estimator_failure_and_results_dir(small_folder, tmp_path, monkeypatch):
    import idbench.analysis.estimators as E
    import idbench.bench.run as R
    from idbench.swapper import PairSwapper, create_swapper

    stand_in = _TestSwapper()
    rdir = _results_dir(small_folder, tmp_path)
    swappers = {"stand-in": PairSwapper.wrap(stand_in, "stand-in", k=20),
                f"results:{rdir}": create_swapper(f"results:{rdir}")}
    monkeypatch.setattr(R, "build_swappers", lambda cfg: swappers)
    real = E.create_estimator

    def broken(name, *a, **kw):
        if name == "gaze.iris":
            raise RuntimeError("model file unreadable")
        return real(name, *a, **kw)

    monkeypatch.setattr(E, "create_estimator", broken)
    res = R.run(_cfg(small_folder, tmp_path / "o", tmp_path / "cache", saliency_faces=0, bias=False))
    fails = res["failures"]
    est = [f for f in fails if f["stage"] == "estimator"]
    assert est == [{"stage": "estimator", "item": "gaze.iris", "reason": "RuntimeError: model file unreadable"}]
    sw = res["swappers"]["stand-in"]
    planned = sw["n_planned"]
    assert planned == res["dataset"]["n_faces"] >= 10 and sw["summary"]["n_swaps"] == planned - 2  # the blank and the refused are not scored
    names = set(sw["per_sample"]["name"])
    no_face = [f for f in sw["failures"] if f["stage"] == "swap-detect"]
    refused = [f for f in sw["failures"] if f["stage"] == "swap"]
    assert len(no_face) == 1 and "no face" in no_face[0]["reason"] and no_face[0]["item"] not in names
    assert len(refused) == 1 and "bad pair" in refused[0]["reason"] and refused[0]["item"] not in names
    assert not any(k.startswith("gaze") for k in sw["summary"]) and "pose_l1[pose.pnp]" in sw["summary"]
    # a returned target copy keeps the target's identity: distance to the source is that of another person
    assert sw["summary"]["id_relative[dlib]"] == 0.0
    r = res["swappers"]["my_method"]  # the folder's name
    assert r["summary"]["n_swaps"] == 2  # '__' and the unambiguous '_' name, both matched
    stages = sorted((Path(f["item"]).name, f["stage"]) for f in r["failures"])
    ids = sorted(p.name for p in small_folder.iterdir())
    s3 = sorted((small_folder / ids[3]).iterdir())[0].stem
    t0 = sorted((small_folder / ids[0]).iterdir())[0].stem
    assert stages == sorted([(f"{ids[0]}@{t0}__{ids[3]}@{s3}.png", "swap"), (f"nobody__{ids[1]}.jpg", "swap-plan")])
    assert all(f in fails for f in r["failures"] + sw["failures"])  # one list in results.json


def test_results_names_match_dataset_identities():
    from idbench.swapper.results import split_pair

    names = ["abdullah_gul", "ariel_sharon", "a", "a_b", "b"]
    assert split_pair("abdullah_gul__ariel_sharon", names) == (("abdullah_gul", "ariel_sharon"), "")
    assert split_pair("abdullah_gul_ariel_sharon", names) == (("abdullah_gul", "ariel_sharon"), "")
    pair, why = split_pair("a_b_b", names)  # a | b_b? no; a_b | b: one reading only
    assert pair == ("a_b", "b")
    pair, why = split_pair("a_b_a_b", names + ["b_a", "a_b_a", "b_a_b"])
    assert pair is None and "ambiguous" in why
    assert split_pair("x__y", names)[0] is None


def test_three_blend_paths_give_identical_swaps(small_folder, tmp_path):
    """bench swap, the bias analysis and --swappers blend: same parameters -> same partners, same pixels."""
    from idbench.bench import encoder_analysis as EA
    from idbench.bench.datasets import load_dataset
    from idbench.bench.run import _detect_dataset, bias_swapper
    from idbench.bench.swap_folder import swap_images
    from idbench.cache import Cache
    from idbench.imageio import read_image
    from idbench.swapper import SwapContext, SwapItem, plan_partners

    cfg = _cfg(small_folder, tmp_path / "o", tmp_path / "cache")
    cache = Cache(cfg.cache_dir)
    ds = load_dataset("folder", str(small_folder))
    table = _detect_dataset(cfg, ds, {}, cache, 0, 1)
    labels = np.array([Path(p).parent.name for p in table.paths])
    ctx = SwapContext(table, labels)
    blend = bias_swapper(cfg)
    run_items, _ = blend.plan(ctx)  # --swappers blend
    partner, _ = plan_partners(table.faces, labels, blend.partner, blend.k, blend.seed, blend.usable(ctx))
    bias = EA.plan_bias(labels, partner, seed=cfg.seed)  # the bias analysis
    run_pairs = {(it.source, it.target) for it in run_items}
    assert {(s, p) for _, s, p in bias.swaps} <= run_pairs
    summary = swap_images("blend", [small_folder], tmp_path / "sw", seed=cfg.seed, k=cfg.k_partners,
                          detector=cfg.detector, cache=cache)  # bench swap, default parameters
    assert summary["params"] == blend.params()
    rows = list(csv.DictReader(open(tmp_path / "sw" / "manifest.csv")))
    row_of = {p: r for r, p in enumerate(table.paths)}
    cli_pairs = {(row_of[x["source_path"]], row_of[x["target_path"]]) for x in rows if x["status"] == "ok"}
    assert cli_pairs == run_pairs
    bias_items = [SwapItem(p, str(labels[s]), "", source=s) for _, s, p in bias.swaps[:3]]
    outs = list(blend.outputs(bias_items, ctx))
    keys_run = {o.key for o in blend.outputs(run_items, ctx)}
    for o in outs:
        assert o.key in keys_run  # one cache entry serves both
        x = next(x for x in rows if row_of[x["source_path"]] == o.item.source)
        assert np.array_equal(o.load(), read_image(tmp_path / "sw" / x["output_path"]))


def test_unknown_swapper_or_missing_results_dir_fail_before_any_work(tmp_path, monkeypatch):
    import idbench.bench.datasets as D

    def never(*a, **k):
        raise AssertionError("the dataset was loaded before the swappers were checked")

    monkeypatch.setattr(D, "load_dataset", never)
    r = CliRunner().invoke(app, ["run", "--swappers", "blnd", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "Did you mean: blend" in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(app, ["run", "--swappers", f"results:{tmp_path / 'nope'}", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_list_swappers_shows_every_swapper_with_parameters():
    from idbench.swapper import SWAPPERS

    r = CliRunner().invoke(app, ["list", "swappers"])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    for name in SWAPPERS.names():
        line = next(x for x in lines if x.split()[0].startswith(name))
        assert len(SWAPPERS.spec(name).params) > 0
        assert SWAPPERS.spec(name).params[0][0] in line
    assert "results:DIR" in r.output and "partner" in r.output and "nearest-landmark | random" in r.output


def test_device_cuda_without_cuda_is_an_error():
    torch = pytest.importorskip("torch")
    from idbench.bench.run import resolve_device
    from idbench.errors import InputError

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")
