"""Identity-encoder training (``bench train``) and data preparation (``bench prepare``).

Tiny sizes on CPU: a synthetic prepared folder (4 identities x 6 random 112x112 crops with fake
68-point landmarks) and a tiny registered test network with batch norms (``test.tiny``, imported
through ``--plugin`` so the torchrun workers see it too).
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from idbench.bench.prepare import load_prepared, split_identities  # noqa: E402
from idbench.bench.train import (CropDataset, TrainConfig, build_arch, margin_logits, margin_loss,  # noqa: E402
                                 nearest_partners, train)

PLUGIN = "idbench_test_tiny_arch"
PLUGIN_SRC = textwrap.dedent('''
    """A tiny trainable encoder for the training tests (registered as ``test.tiny``)."""
    import torch
    from torch import nn

    from idbench.encoders import ENCODERS, EncoderSpec, TorchEncoder, register_encoder
    from idbench.weights import WeightSource

    SPEC = EncoderSpec(name="test.tiny", input_size=(112, 112), alignment="arcface112", colour="RGB",
                       mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5), embedding_size=16,
                       l2_normalised=False, backend="torch", weights=(WeightSource("test_tiny.pth", "tests"),))


    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4, padding=2), nn.BatchNorm2d(8), nn.PReLU(8),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(7))  # 14 -> 7: exportable to ONNX
            self.fc = nn.Linear(784, 16)
            self.features = nn.BatchNorm1d(16)

        def forward(self, x):
            return self.features(self.fc(self.body(x).flatten(1)))


    if "test.tiny" not in ENCODERS:
        @register_encoder(SPEC)
        def _tiny(spec, weights_path, device="cpu"):
            m = Tiny()
            if weights_path is not None:
                m.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
            return TorchEncoder(spec, m, weights_path, device)
''')


def _template68() -> np.ndarray:
    """A plausible 68-point face in 112x112 ArcFace-crop coordinates."""
    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([56 - 38 * np.cos(t), 50 + 50 * np.sin(t)], 1)
    brows = np.concatenate([np.stack([np.linspace(25, 50, 5), np.full(5, 38.0)], 1),
                            np.stack([np.linspace(62, 87, 5), np.full(5, 38.0)], 1)])
    nose = np.concatenate([np.stack([np.full(4, 56.0), np.linspace(45, 65, 4)], 1),
                           np.stack([np.linspace(48, 64, 5), np.full(5, 70.0)], 1)])
    a = np.linspace(0, 2 * np.pi, 7)[:-1]
    eyes = np.concatenate([np.stack([cx + 6 * np.cos(a), 52 + 3 * np.sin(a)], 1) for cx in (38, 74)])
    a12, a8 = np.linspace(0, 2 * np.pi, 13)[:-1], np.linspace(0, 2 * np.pi, 9)[:-1]
    mouth = np.concatenate([np.stack([56 + 14 * np.cos(a12), 88 + 5 * np.sin(a12)], 1),
                            np.stack([56 + 9 * np.cos(a8), 88 + 2 * np.sin(a8)], 1)])
    lm = np.concatenate([jaw, brows, nose, eyes, mouth]).astype(np.float32)
    assert lm.shape == (68, 2)
    return lm


def _write_prepared(root: Path, n_ids: int = 4, per_id: int = 6, seed: int = 0) -> Path:
    """A folder in ``bench prepare``'s layout (arcface112 only), synthetic crops and landmarks."""
    rng = np.random.default_rng(seed)
    base = root / "arcface112"
    names = [f"person_{k}" for k in range(n_ids)]
    (root).mkdir(parents=True, exist_ok=True)
    (root / "identities.txt").write_text("".join(n + "\n" for n in names))
    rows, lms = [], []
    tmpl = _template68()
    for label, name in enumerate(names):
        proto = cv2.resize(rng.integers(0, 256, (7, 7, 3), dtype=np.uint8), (112, 112), interpolation=cv2.INTER_CUBIC)
        for j in range(per_id):
            img = np.clip(proto.astype(np.int16) + rng.integers(-40, 41, (112, 112, 3)), 0, 255).astype(np.uint8)
            rel = Path("crops") / name / f"{j:02d}.png"
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(base / rel), img[:, :, ::-1])
            rows.append({"crop": rel.as_posix(), "identity": name, "label": label, "source": f"{name}/{j}.jpg",
                         "face_score": "1.0"})
            lms.append(tmpl + rng.normal(0, 1.5, tmpl.shape).astype(np.float32))
    with open(base / "index.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    np.save(base / "landmarks.npy", np.asarray(lms, np.float32))
    return root


@pytest.fixture(scope="module")
def lean_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    d = tmp_path_factory.mktemp("plugin")
    (d / f"{PLUGIN}.py").write_text(PLUGIN_SRC)
    sys.path.insert(0, str(d))
    import importlib

    importlib.import_module(PLUGIN)
    yield d
    sys.path.remove(str(d))
    sys.modules.pop(PLUGIN, None)
    from idbench.encoders import ENCODERS

    ENCODERS.remove("test.tiny")  # keep the registry as other tests expect it


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _write_prepared(tmp_path_factory.mktemp("prepared"))


def _cfg(data, out, **kw) -> TrainConfig:
    base = dict(arch="test.tiny", plugins=[PLUGIN], batch_size=8, steps=6, lr=0.1, blend_prob=0.5, k_partners=5,
                workers=0, save_every=2, keep=0, progress=False, seed=1, device="cpu")
    base.update(kw)
    return TrainConfig(data=str(data), out=str(out), **base)


@pytest.fixture(scope="module")
def reference_run(data, plugin, lean_threads, tmp_path_factory):
    """6 steps (2 epochs of 3 global batches of 8), checkpoints every 2 steps."""
    out = tmp_path_factory.mktemp("run_a")
    return train(_cfg(data, out))


# --- loss ----------------------------------------------------------------------------------------

def test_arcface_loss_matches_hand_computation():
    cos = torch.tensor([[0.5, 0.1, -0.2], [0.3, 0.8, 0.0]])
    y = torch.tensor([0, 1])
    s, m = 64.0, 0.5
    expected = []
    for row, t in zip(cos.tolist(), y.tolist()):
        logits = [s * c for c in row]
        logits[t] = s * math.cos(math.acos(row[t]) + m)
        z = max(logits)
        expected.append(-(logits[t] - z - math.log(sum(math.exp(v - z) for v in logits))))
    got = margin_loss(cos, y, "arcface", s, m, reduction="none")
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert abs(margin_loss(cos, y).item() - float(np.mean(expected))) < 1e-4  # defaults s=64, m=0.5


def test_cosface_and_arcface_large_angle_branch():
    cos = torch.tensor([[0.5, 0.1, -0.2]])
    y = torch.tensor([0])
    lg = margin_logits(cos, y, "cosface")  # m = 0.35
    np.testing.assert_allclose(lg.numpy(), [[64 * (0.5 - 0.35), 6.4, -12.8]], rtol=1e-5)
    # theta + m > pi: the monotone continuation cos(theta) - m sin(m) (InsightFace), not cos(theta + m)
    far = margin_logits(torch.tensor([[-0.95, 0.0]]), torch.tensor([0]), "arcface", 1.0, 0.5)
    assert abs(far[0, 0].item() - (-0.95 - math.sin(math.pi - 0.5) * 0.5)) < 1e-5


# --- blending augmentation -----------------------------------------------------------------------

class CountingSwapper:
    def __init__(self):
        self.calls = 0

    def __call__(self, anchor, anchor_lm, partner, partner_lm, anchor_valid=None, partner_valid=None):
        self.calls += 1
        out = np.zeros_like(anchor)
        out[:, : anchor.shape[1] // 2] = 255  # left half white: shows whether a flip followed
        return out


def test_blend_prob_zero_never_calls_swapper_and_one_always(data, monkeypatch):
    prepared = load_prepared(data, "arcface112")
    sw0 = CountingSwapper()
    ds0 = CropDataset(prepared, blend_prob=0.0, swapper=sw0, seed=3)
    monkeypatch.setattr("idbench.bench.training.data.nearest_partners",
                        lambda *a, **k: pytest.fail("partners searched with blend_prob 0"))
    ds0.set_epoch(0)
    assert sum(ds0[i][2] for i in range(len(ds0))) == 0 and sw0.calls == 0
    monkeypatch.undo()

    sw1 = CountingSwapper()
    ds1 = CropDataset(prepared, blend_prob=1.0, swapper=sw1, seed=3, k_partners=5)
    ds1.set_epoch(0)
    partners = ds1.partners(0)
    flips = 0
    for i in range(len(ds1)):
        x, label, blended = ds1[i]
        assert blended == 1 and label == ds1.labels[i]  # label = the anchor's (inner face's) identity
        assert prepared.identities[partners[i]] != prepared.identities[i]
        u_flip = np.random.default_rng([3, 0, i]).random(2)[1]
        white_left = x[0, :, :56].mean().item() == 255.0
        assert white_left == (u_flip >= 0.5)  # flipped after blending exactly when the flip was drawn
        flips += u_flip < 0.5
    assert sw1.calls == len(ds1) and 0 < flips < len(ds1)


def test_nearest_partner_is_other_identity_and_nearest():
    tmpl, bend = _template68(), np.random.default_rng(0).normal(0, 1, (68, 2)).astype(np.float32)
    lm = np.stack([tmpl + 0.3 * e * bend for e in [0, 10, 1, 11, 2, 50]])  # shape differences, not offsets
    ids = ["a", "a", "b", "b", "c", "c"]
    p = nearest_partners(lm, ids, k=100, seed=0)
    assert list(p[:2]) == [2, 3]  # closest image of another identity
    assert all(ids[j] != ids[i] for i, j in enumerate(p))


def test_pseudo_swapper_keeps_inner_face_of_anchor_and_rejects_bad_overlap():
    from idbench.bench.train import PseudoSwapper

    lm = _template68()
    anchor = np.full((112, 112, 3), 200, np.uint8)
    anchor[:, :56] = 100  # the anchor's inner face: dark left half, bright right half
    partner = np.random.default_rng(0).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    sw = PseudoSwapper()
    out = sw(anchor, lm, partner, lm)
    assert out.shape == anchor.shape and out.dtype == np.uint8
    assert (out[2, 2] == partner[2, 2]).all()  # outside the face: the partner
    inner = out[55:65, 40:72].astype(float)  # face centre: the (recoloured) anchor, not the partner's noise
    left, right = inner[:, :10].reshape(-1, 3), inner[:, -10:].reshape(-1, 3)
    assert left.std(0).max() < 3 and right.std(0).max() < 3 and left.mean() < right.mean()
    assert sw(anchor, lm, partner, lm * 0.3) is None  # masks barely overlap: rejected, the anchor stays
    valid = np.ones((112, 112), np.float32)
    valid[:, :30] = 0  # the anchor crop's black border: nothing of it is blended
    out = sw(anchor, lm, partner, lm, valid, None)
    assert (out[:, :30] == partner[:, :30]).all()


# --- training: resume, registry round trip, DDP --------------------------------------------------

def _log(out: Path):
    return [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]


def test_training_logs_and_checkpoints(reference_run):
    out = Path(reference_run["out"])
    log = _log(out)
    assert [r["step"] for r in log] == list(range(1, 7))
    assert all(np.isfinite(r["loss"]) and 0 <= r["accuracy"] <= 1 for r in log)
    assert log[0]["lr"] == pytest.approx(0.1) and log[-1]["lr"] < log[0]["lr"]  # polynomial decay
    assert 0 < np.mean([r["blend_rate"] for r in log]) < 1
    with open(out / "log.csv") as f:
        assert len(list(csv.DictReader(f))) == 6
    names = sorted(p.name for p in (out / "checkpoints").glob("step_*.pt"))
    assert names == ["step_0000002.pt", "step_0000004.pt", "step_0000006.pt"]
    ck = torch.load(out / "last.pt", map_location="cpu", weights_only=True)  # plain data: no pickled objects
    assert ck["step"] == 6 and {"model", "head", "optimizer", "scheduler", "rng", "config"} <= set(ck)


def test_resume_continues_exactly(reference_run, data, tmp_path):
    a = Path(reference_run["out"])
    res = train(_cfg(data, tmp_path / "b", resume=str(a / "checkpoints" / "step_0000004.pt")))
    np.testing.assert_allclose(res["losses"], reference_run["losses"][4:], rtol=1e-6, atol=0)
    sa = torch.load(a / "backbone.pth", weights_only=True)
    sb = torch.load(tmp_path / "b" / "backbone.pth", weights_only=True)
    assert sa.keys() == sb.keys() and all(torch.allclose(sa[k].float(), sb[k].float(), atol=1e-6) for k in sa)


def test_checkpoint_loads_through_encoder_registry(reference_run, data):
    from idbench.encoders import create_encoder

    enc = create_encoder("test.tiny", weights=reference_run["backbone"])
    faces = load_prepared(data, "arcface112").images(range(5))
    got = enc.embed(faces)
    with torch.no_grad():
        ref = torch.nn.functional.normalize(reference_run["net"](torch.from_numpy(faces).permute(0, 3, 1, 2).float()))
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-5)


def test_two_process_torchrun_matches_one_process(data, plugin, lean_threads, tmp_path):
    """The same global batch of 8 on 1 process and as 2 x 4 under torchrun (gloo): same loss curve."""
    single = train(_cfg(data, tmp_path / "one", steps=3, save_every=100))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           "-m", "idbench.bench.train", "--data", str(data), "--out", str(tmp_path / "two"), "--arch", "test.tiny",
           "--plugin", PLUGIN, "--batch-size", "8", "--steps", "3", "--lr", "0.1", "--blend-prob", "0.5",
           "--k-partners", "5", "--workers", "0", "--save-every", "100", "--seed", "1", "--device", "cpu",
           "--threads", "1", "--no-progress"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    two = [rec["loss"] for rec in _log(tmp_path / "two")]
    assert len(two) == 3
    np.testing.assert_allclose(two, single["losses"], rtol=1e-4)
    assert json.loads((tmp_path / "two" / "train.json").read_text())["world_size"] == 2


# --- architectures -------------------------------------------------------------------------------

def test_dlib_finetune_export_loads_as_dlib_finetuned(tmp_path, lean_threads):
    from idbench.encoders import create_encoder

    try:
        ref = create_encoder("dlib.resnet_v1_torch")
    except Exception as e:  # noqa: BLE001 - weights ship with an optional package
        pytest.skip(f"dlib .dat weights unavailable: {e}")
    arch = build_arch("dlib.resnet_v1_torch", blend_prob=0.5)
    assert arch.export_name == "dlib.finetuned" and arch.spec.alignment == "dlib150"
    assert all(p.requires_grad for p in arch.module.parameters())
    torch.save(arch.module.state_dict(), tmp_path / "backbone.pth")
    enc = create_encoder("dlib.finetuned", weights=tmp_path / "backbone.pth")
    faces = np.random.default_rng(0).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    np.testing.assert_allclose(enc.embed(faces), ref.embed(faces), atol=1e-5)


def test_init_weights_go_through_the_one_checkpoint_reader(tmp_path, lean_threads, monkeypatch):
    """--init: containers and DDP prefixes unwrapped, pickled objects only behind IDBENCH_ALLOW_PICKLE."""
    import argparse

    from idbench.encoders.dlib_resnet import DlibResNet
    from idbench.errors import WeightsFormatError

    torch.manual_seed(5)
    sd = DlibResNet().state_dict()
    wrapped = tmp_path / "ddp.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 2}, wrapped)
    arch = build_arch("dlib.resnet_v1_torch", init=str(wrapped))
    got = arch.module.state_dict()
    assert all(torch.equal(got[k], v) for k, v in sd.items())
    assert all(p.requires_grad for p in arch.module.parameters())
    pickled = tmp_path / "pickled.pth"
    torch.save({"state_dict": sd, "args": argparse.Namespace(lr=0.1)}, pickled)
    monkeypatch.delenv("IDBENCH_ALLOW_PICKLE", raising=False)
    with pytest.raises(WeightsFormatError, match="IDBENCH_ALLOW_PICKLE"):
        build_arch("dlib.resnet_v1_torch", init=str(pickled))
    monkeypatch.setenv("IDBENCH_ALLOW_PICKLE", "1")
    trusted = build_arch("dlib.resnet_v1_torch", init=str(pickled)).module.state_dict()
    assert all(torch.equal(trusted[k], v) for k, v in sd.items())
    bad = tmp_path / "bad.pth"
    torch.save(dict(sd, **{"conv1.weight": torch.zeros(16, 3, 7, 7)}), bad)
    with pytest.raises(WeightsFormatError, match=r"'conv1.weight' has shape \(16, 3, 7, 7\)"):
        build_arch("dlib.resnet_v1_torch", init=str(bad))


# --- prepare ---------------------------------------------------------------------------------------

def test_split_identities_is_seeded_and_disjoint():
    names = [f"id{i}" for i in range(20)]
    tr, ho = split_identities(names, 0.25, seed=3)
    assert len(ho) == 5 and not set(tr) & set(ho) and sorted(tr + ho) == sorted(names)
    assert split_identities(names, 0.25, seed=3) == (tr, ho)
    assert split_identities(names, 0.25, seed=4) != (tr, ho)


def test_prepare_writes_crops_landmarks_and_index(shared_faces, tmp_path):
    from idbench.align import arcface_template, dlib_chip_matrix
    from idbench.bench.prepare import prepare
    from idbench.cache import Cache
    from idbench.encoders.pipeline import detect_file
    from idbench.faces import landmarks68_to_5

    src = tmp_path / "in"
    for ident in ("ariel_sharon", "abdullah_gul"):
        (src / ident).mkdir(parents=True)
        for name in ("01.jpg", "02.jpg"):
            (src / ident / name).symlink_to(shared_faces / ident / name)
    summary = prepare(src, tmp_path / "out", cache=Cache(enabled=False), heldout_fraction=0.5, seed=0,
                      progress=False)
    assert summary["faces"] == 4 and summary["identities"] == 2
    out = tmp_path / "out"
    assert len((out / "train_identities.txt").read_text().split()) == 1
    for alignment, size in (("arcface112", 112), ("dlib150", 150)):
        ps = load_prepared(out, alignment)
        assert len(ps) == 4 and ps.landmarks.shape == (4, 68, 2)
        assert ps.image(0).shape == (size, size, 3) and list(ps.labels) == [0, 0, 1, 1]
        assert Path(ps.sources[0]).name == "01.jpg"
        img, valid = ps.read(0)
        assert valid is not None and valid.shape == (size, size) and valid.mean() > 0.5
    # landmarks really are in crop coordinates
    ps = load_prepared(out, "arcface112")
    err = np.linalg.norm(np.stack([landmarks68_to_5(l) for l in ps.landmarks]) - arcface_template(112), axis=2)
    assert err.mean() < 5.0
    det = detect_file(src / "ariel_sharon" / "01.jpg")
    m = dlib_chip_matrix(det.image, det.faces[0])
    warped = cv2.warpAffine(det.image, m, (150, 150), flags=cv2.INTER_LINEAR)
    chips = load_prepared(out, "dlib150")
    row = [i for i, src_path in enumerate(chips.sources) if src_path.endswith("ariel_sharon/01.jpg")][0]
    assert np.abs(warped.astype(float) - chips.image(row)).mean() < 3.0


def test_iresnet18_trains_and_loads_as_arcface_r18(data, lean_threads, tmp_path):
    """Needs idbench.encoders.iresnet (IResNet, arcface_torch layout) and the arcface/blendface entries."""
    pytest.importorskip("idbench.encoders.iresnet")
    from idbench.encoders import ENCODERS, create_encoder

    if "arcface.r18" not in ENCODERS or "blendface.r18" not in ENCODERS:
        pytest.skip("arcface.r18 / blendface.r18 are not registered")
    res = train(TrainConfig(data=str(data), out=str(tmp_path / "r18"), arch="iresnet18", batch_size=8, steps=1,
                            blend_prob=0.5, k_partners=5, workers=0, progress=False, seed=1, device="cpu"))
    assert res["export_name"] == "blendface.r18" and np.isfinite(res["losses"]).all()
    faces = load_prepared(data, "arcface112").images(range(3))
    with torch.no_grad():
        ref = torch.nn.functional.normalize(res["net"](torch.from_numpy(faces).permute(0, 3, 1, 2).float()))
    for name in ("blendface.r18", "arcface.r18"):
        enc = create_encoder(name, weights=res["backbone"])
        np.testing.assert_allclose(enc.embed(faces), ref.numpy(), atol=1e-4)


def test_cli_registers_prepare_and_train():
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    r = CliRunner().invoke(app, ["train", "--help"])
    assert r.exit_code == 0 and "--blend-prob" in r.output and "--resume" in r.output
    r = CliRunner().invoke(app, ["prepare", "--help"])
    assert r.exit_code == 0 and "--split-identities" in r.output
