"""Training from insightface RecordIO with validation on a .bin set, the guard, exact resume; ``bench run --dataset
bin:PATH`` against the encoder's own runtime."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

import test_train as tt  # noqa: E402  (the tiny registered test network and its plugin fixture)
import test_training_data as td  # noqa: E402  (the RecordIO / .bin writers)

from idbench.bench.train import TrainConfig, train  # noqa: E402
from idbench.bench.training.validation import Guard  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO.parent / "shared" / "models"

plugin = tt.plugin
lean_threads = tt.lean_threads


@pytest.fixture(scope="module")
def recdata(tmp_path_factory):
    """A RecordIO training set (4 identities x 6 crops) and a .bin set of 2 other identities (6 pairs)."""
    d = tmp_path_factory.mktemp("rec")
    faces = td._faces(6, 6, seed=3)
    td.write_insightface_rec(d / "ms1m", [f for f in faces if f[0] < 4])
    val = [f for f in faces if f[0] >= 4]
    pairs = [(0, 1, True), (6, 7, True), (0, 6, False), (2, 3, True), (1, 8, False), (4, 10, False)]
    with open(d / "val.bin", "wb") as f:
        pickle.dump(([td._png(val[k][1]) for i, j, _ in pairs for k in (i, j)], [s for _, _, s in pairs]), f)
    return d


def _cfg(d: Path, out: Path, **kw) -> TrainConfig:
    base = dict(arch="test.tiny", plugins=[tt.PLUGIN], batch_size=8, steps=6, lr=0.1, blend_prob=0.0, workers=0,
                save_every=2, keep=0, progress=False, seed=1, device="cpu", val=f"bin:{d / 'val.bin'}",
                val_margin=0.0)
    base.update(kw)
    return TrainConfig(data=f"rec:{d / 'ms1m'}", out=str(out), **base)


def test_trains_from_recordio_validates_on_bin_and_resumes_exactly(recdata, plugin, lean_threads, tmp_path):
    a = train(_cfg(recdata, tmp_path / "a", blend_prob=0.5, k_partners=5))
    assert a["step"] == 6 and len(a["classes"]) == 4
    blend = [json.loads(x)["blend_rate"] for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert 0 < np.mean(blend) < 1  # pseudo-swaps from the landmarks / partners cache of the RecordIO source
    assert (recdata / "ms1m" / "train.idbench" / "landmarks68.npy").is_file()
    recs = [json.loads(x) for x in (tmp_path / "a" / "validation.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [0, 3, 6]  # the start, then every epoch (3 steps of 8 of 24 crops)
    assert all(r["set"] == "val.bin" and r["pairs"] == 6 for r in recs)
    best = json.loads((tmp_path / "a" / "best" / "validation.json").read_text())
    assert best["auc"] == max(r["auc"] for r in recs)
    ck = torch.load(tmp_path / "a" / "last.pt", map_location="cpu", weights_only=False)
    assert ck["guard"]["start"]["step"] == 0
    b = train(_cfg(recdata, tmp_path / "b", blend_prob=0.5, k_partners=5,
                   resume=str(tmp_path / "a" / "checkpoints" / "step_0000002.pt")))
    np.testing.assert_allclose(b["losses"], a["losses"][2:], rtol=1e-6, atol=0)
    sa = torch.load(tmp_path / "a" / "backbone.pth", weights_only=True)
    sb = torch.load(tmp_path / "b" / "backbone.pth", weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_guard_stops_the_run_restores_and_exports_the_best_model(recdata, plugin, lean_threads, tmp_path,
                                                                  monkeypatch):
    """Validation scripted to collapse after the first epoch (AUC 0.90 -> 0.50; the real collapse is measured in
    docs/training.md "Guarded fine-tuning"): the run stops there with the reason, and exports the best (starting) model."""
    from idbench.bench.training import guarded

    aucs = iter([0.90, 0.50, 0.95])
    monkeypatch.setattr(guarded, "validate", lambda net, vs, device, flip=False: {
        "set": "scripted", "auc": next(aucs), "accuracy": 0.5, "accuracy_std": 0.0, "pos_mean": 0.5, "neg_mean": 0.4,
        "neg_std": 0.1, "pairs": 6})
    res = train(_cfg(recdata, tmp_path / "g", steps=12, val_margin=0.02))
    assert res["step"] == 3 and "fell from 0.9000 (start) to 0.5000 at step 3" in res["stopped"]
    assert res["validation"]["best"]["step"] == 0
    best = torch.load(tmp_path / "g" / "best" / "backbone.pth", weights_only=True)
    exported = torch.load(tmp_path / "g" / "backbone.pth", weights_only=True)  # last checkpoint (damaged) ...
    assert not all(torch.equal(best[k], exported[k]) for k in best)
    import onnxruntime as ort  # ... but encoder.onnx is the best model

    from idbench.bench.training.arch import build_arch

    arch = build_arch("test.tiny")
    arch.module.load_state_dict(best)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 112, 112)).astype(np.float32)
    with torch.no_grad():
        ref = arch.module.eval()(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(tmp_path / "g" / "encoder.onnx")).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_guard_rule():
    g = Guard(0.02)
    base = {"set": "s", "auc": 0.95, "step": 0, "neg_mean": 0.1, "neg_std": 0.1, "pos_mean": 0.5}
    assert g.update(base) and g.stop_reason(base) is None
    assert g.stop_reason({**base, "auc": 0.931, "step": 5}) is None  # within 2 points
    msg = g.stop_reason({**base, "auc": 0.92, "step": 5, "neg_mean": 0.9})
    assert "0.9500 (start) to 0.9200" in msg and "0.100 +- 0.100 -> 0.900" in msg
    assert Guard(0.0, base).stop_reason({**base, "auc": 0.1}) is None  # margin 0: never stops


def _brute_force_10fold(s: np.ndarray, y: np.ndarray) -> float:
    """insightface's folds by brute force: 10 consecutive blocks; on the other nine, every threshold candidate
    (-inf, the midpoints between consecutive distinct scores, +inf) is tried and the lowest of the most accurate is
    applied to the held-out block (insightface scans a grid instead; docs/training.md says so)."""
    accs = []
    for test in np.array_split(np.arange(len(s)), 10):
        train_ = np.setdiff1d(np.arange(len(s)), test)
        u = np.unique(s[train_])
        cands = np.r_[-np.inf, (u[1:] + u[:-1]) / 2, np.inf]
        best = max(cands, key=lambda t: (np.mean((s[train_] >= t) == y[train_]), -t))
        accs.append(np.mean((s[test] >= best) == y[test]))
    return float(np.mean(accs))


def test_bench_run_on_a_bin_set_matches_the_encoders_own_runtime(shared_faces, tmp_path):
    if not (MODELS / "mobileface.onnx").is_file():
        pytest.skip("../shared/models is not available")
    from idbench.align import arcface_crop
    from idbench.bench.run import RunConfig, run
    from idbench.encoders import create_encoder
    from idbench.pipeline import detect_file

    people = sorted(p.name for p in shared_faces.iterdir() if p.is_dir())[:6]
    crops = {}
    for name in people:
        for img in sorted((shared_faces / name).glob("*.jpg"))[:2]:
            det = detect_file(img)
            crops.setdefault(name, []).append(arcface_crop(det.image, det.faces[0].landmarks5, 112))
    pairs = [(crops[n][0], crops[n][1], True) for n in people]
    pairs += [(crops[people[k]][0], crops[people[(k + 1) % 6]][1], False) for k in range(6)]
    pairs = [pairs[k // 2 + (k % 2) * 6] for k in range(12)]  # alternate same / different
    with open(tmp_path / "t.bin", "wb") as f:
        pickle.dump(([td._png(c) for a, b, _ in pairs for c in (a, b)], [s for _, _, s in pairs]), f)
    res = run(RunConfig(dataset=f"bin:{tmp_path / 't.bin'}", root=None, detector="aligned",
                        encoders=[str(REPO / "encoders" / "contracts" / "mobileface.toml")], out=str(tmp_path / "o"),
                        progress=False, saliency_faces=0, n_boot=20, analyses=["verification"], no_cache=True))
    v = res["encoders"]["mobileface"]["verification"]
    enc = create_encoder(str(REPO / "encoders" / "contracts" / "mobileface.toml"))
    e = enc.embed(np.stack([c for a, b, _ in pairs for c in (a, b)]))
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    s = np.sum(e[0::2] * e[1::2], axis=1)
    y = np.array([p[2] for p in pairs])
    np.testing.assert_allclose(v["pair_scores"], s, atol=1e-4)
    assert v["accuracy_mean"] == pytest.approx(_brute_force_10fold(s, y))


def test_heldout_validation_pairs_and_metrics_against_sklearn():
    """All same-identity pairs and the different-identity ones of a small source; AUC == sklearn's, means by hand."""
    metrics = pytest.importorskip("sklearn.metrics")
    from idbench.bench.training.validation import heldout_valset, verification_metrics

    class Src:
        identities = ["a", "a", "b", "b", "b", "c"]

        def images(self):
            return np.zeros((6, 2, 2, 3), np.uint8)

    vs = heldout_valset(Src())
    assert len(vs.pairs) == 15 and vs.issame.sum() == 1 + 3
    emb = np.random.default_rng(0).normal(size=(6, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    m = verification_metrics(emb, vs)
    s = np.array([emb[i] @ emb[j] for i, j in vs.pairs])
    assert m["auc"] == pytest.approx(metrics.roc_auc_score(vs.issame, s))
    assert m["neg_mean"] == pytest.approx(s[~vs.issame].mean()) and m["neg_std"] == pytest.approx(s[~vs.issame].std())
    assert m["pos_mean"] == pytest.approx(s[vs.issame].mean())
    capped = heldout_valset(Src(), max_negatives=4)
    assert capped.issame.sum() == 4 and (~capped.issame).sum() == 4


def test_persistent_workers_augment_each_epoch_like_the_main_process(recdata, plugin, lean_threads, tmp_path):
    """Two epochs with 2 persistent data-loader workers (the epoch travels with each index) give the losses of the
    same run loading in the main process."""
    base = dict(blend_prob=0.5, k_partners=5, val="none", save_every=100)
    a = train(_cfg(recdata, tmp_path / "w0", workers=0, **base))
    b = train(_cfg(recdata, tmp_path / "w2", workers=2, **base))
    np.testing.assert_allclose(b["losses"], a["losses"], rtol=1e-6, atol=0)
