"""Learned swappers (``inswapper``, ``blendswap``, ``simswap``) with random weights in the official formats.

Independent references:
* ``tests/data/learned_swapper_layouts.json.gz``: the state-dict layouts (key -> shape) that the OFFICIAL code
  builds (BlendFace ``swapping/blendswap.py`` BlendSwap(); SimSwap ``Generator_Adain_Upsample(3, 3, 512, 9)`` and
  ``ResNet(IRBlock, [2, 2, 2, 2])``), recorded by running that code (commits in the file's ``_source``);
* insightface's own ``INSwapper`` (installed package) run on the same ONNX graph;
* hand computations (paste-back of a constant crop, FaceShifter's AAD formula in numpy).
``test_official_code_parity`` also runs the official BlendFace / SimSwap modules when
``IDBENCH_OFFICIAL_SWAPPERS`` names a folder holding their sources (skipped otherwise).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from idbench.errors import WeightsFormatError, WeightsNotFoundError
from idbench.faces import Face
from idbench.swapper import SwapError, SwapResult, create_swapper, get_spec, list_swappers
from idbench.swapper.learned import LEARNED_SPECS
from idbench.swapper.learned.paste import crop_face, crop_mask, paste_back
from idbench.swapper.learned.spec import Crop

from test_swapper import synth_face, synth_image  # the synthetic 68-point faces of the blend tests

torch = pytest.importorskip("torch")
from learned_weights import (identity_onnx, inswapper_onnx, randomise_bn, small_arcface,  # noqa: E402
                             small_blendswap, small_simswap_generator)

LAYOUTS = Path(__file__).parent / "data" / "learned_swapper_layouts.json.gz"


def _layout(module) -> dict:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def _official(name: str) -> dict:
    return json.load(gzip.open(LAYOUTS))[name]


def _pair(seed: int = 0, size: int = 240):
    src_img, tgt_img = synth_image(seed, size, size), synth_image(seed + 1, size, size + 40)
    src = synth_face(cx=size / 2, cy=size / 2 - 5, scale=110.0)
    tgt = synth_face(cx=size / 2 + 25, cy=size / 2, scale=100.0, angle=0.15)
    return src_img, src, tgt_img, tgt


# --- official layouts ------------------------------------------------------------------------------

def test_full_size_modules_have_the_official_state_dict_layouts():
    from idbench.swapper.learned.aei_net import BlendSwapNet
    from idbench.swapper.learned.simswap_net import SimSwapArcFace, SimSwapGenerator

    with torch.device("meta"):
        blendswap, generator, arcface = BlendSwapNet(), SimSwapGenerator(), SimSwapArcFace((2, 2, 2, 2))
    assert _layout(blendswap) == _official("blendswap")  # 1825 tensors, G/E/Z_e/mask_head and their _ema copies
    assert _layout(generator) == _official("simswap_G")
    assert _layout(arcface) == _official("simswap_arcface_2222")


def test_aad_layer_is_faceshifters_formula():
    """AAD (FaceShifter eq. 1-3): h = (1 - M) * A + M * I, computed here in numpy from the layer's weights."""
    from idbench.swapper.learned.aei_net import AAD

    torch.manual_seed(0)
    layer = AAD(4, 3, id_size=5).eval()
    randomise_bn(layer, 1)
    h, z, zid = torch.randn(2, 4, 6, 6), torch.randn(2, 3, 6, 6), torch.randn(2, 5)
    with torch.no_grad():
        got = layer(h, z, zid).numpy()
    P = {k: v.numpy().astype(np.float64) for k, v in layer.state_dict().items()}
    hn, zn, idn = h.numpy().astype(np.float64), z.numpy().astype(np.float64), zid.numpy().astype(np.float64)
    bn = lambda x: ((x - P["BNorm.running_mean"][:, None, None]) / np.sqrt(P["BNorm.running_var"][:, None, None] + 1e-5)
                    * P["BNorm.weight"][:, None, None] + P["BNorm.bias"][:, None, None])

    def conv3(x, w, b):  # 3x3, padding 1, by explicit sums
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        out = np.zeros((x.shape[0], w.shape[0]) + x.shape[2:])
        for dy in range(3):
            for dx in range(3):
                patch = xp[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]
                out += np.einsum("nchw,oc->nohw", patch, w[:, :, dy, dx])
        return out + b[None, :, None, None]

    hb = bn(hn)
    m = 1 / (1 + np.exp(-(np.einsum("nchw,oc->nohw", hb, P["conv_f.weight"][:, :, 0, 0]) + P["conv_f.bias"][0])))
    ident = (idn @ P["fc_1.weight"].T + P["fc_1.bias"])[:, :, None, None] * hb + \
        (idn @ P["fc_2.weight"].T + P["fc_2.bias"])[:, :, None, None]
    attr = conv3(zn, P["conv1.weight"], P["conv1.bias"]) * hb + conv3(zn, P["conv2.weight"], P["conv2.bias"])
    np.testing.assert_allclose(got, (1 - m) * attr + m * ident, rtol=1e-4, atol=1e-5)


# --- registry, specs, missing and wrong files ------------------------------------------------------

def test_registered_with_typed_specs_and_import_is_light():
    for name in ("inswapper", "blendswap", "simswap"):
        assert name in list_swappers()
        assert get_spec(name).kind == "learned"
        spec = LEARNED_SPECS[name]
        assert spec.weights and spec.licence and spec.paper and spec.identity_encoder
    assert LEARNED_SPECS["inswapper"].target == Crop("arcface", 128, LEARNED_SPECS["inswapper"].target.pixels)
    assert (LEARNED_SPECS["blendswap"].target.alignment, LEARNED_SPECS["blendswap"].target.size) == ("ffhq", 256)
    assert LEARNED_SPECS["simswap"].weight_files() == ("latest_net_G.pth", "arcface_checkpoint.tar")
    code = ("import sys, idbench.swapper; from idbench.swapper.learned import LEARNED_SPECS; "
            "[s.weight_status() for s in LEARNED_SPECS.values()]; "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "torch" not in out and "onnxruntime" not in out


def test_bench_list_swappers_shows_weight_status(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    torch.save({"x": torch.zeros(512)}, tmp_path / "checkpoints" / "blendswap.pth")  # present (not loaded here)
    r = CliRunner().invoke(app, ["list", "swappers"])
    assert r.exit_code == 0, r.output
    lines = {ln.split()[0]: ln for ln in r.output.splitlines() if ln.strip()}
    assert "missing (inswapper_128.onnx)" in lines["inswapper"] and "learned" in lines["inswapper"]
    assert "missing (latest_net_G.pth)" in lines["simswap"]
    assert " present " in lines["blendswap"] and "none needed" in lines["blend"]


@pytest.mark.parametrize("name, where", [("inswapper", ".insightface/models/inswapper_128.onnx"),
                                         ("blendswap", "checkpoints/blendswap.pth"),
                                         ("simswap", "checkpoints/people/latest_net_G.pth")])
def test_missing_weights_is_one_line_saying_where_it_goes(name, where, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert LEARNED_SPECS[name].weight_status().startswith("missing")
    with pytest.raises(WeightsNotFoundError) as e:
        create_swapper(name)
    msg = str(e.value)
    assert "\n" not in msg and where in msg and LEARNED_SPECS[name].repository in msg


def test_wrong_files_are_weights_format_errors(tmp_path):
    html = tmp_path / "blendswap.pth"
    html.write_text("<html>" + "x" * 2000)
    with pytest.raises(WeightsFormatError, match="not a PyTorch checkpoint"):
        create_swapper("blendswap", weights=html)
    g = tmp_path / "g.pth"
    torch.save(small_simswap_generator().state_dict(), g)
    with pytest.raises(WeightsFormatError, match="not a BlendSwap") as e:
        create_swapper("blendswap", weights=g)  # a SimSwap generator is not a BlendSwap checkpoint
    assert "\n" not in str(e.value)
    with pytest.raises(WeightsFormatError, match="emap"):
        create_swapper("inswapper", weights=identity_onnx(tmp_path), identity_encoder=object())
    with pytest.raises(WeightsFormatError, match="not a readable ONNX"):
        create_swapper("inswapper", weights=html, identity_encoder=object())


# --- paste-back ----------------------------------------------------------------------------------

def test_paste_back_of_a_constant_crop_by_hand():
    frame = synth_image(3, 220, 260)
    face = synth_face(cx=130, cy=110, scale=100.0, angle=0.3)
    crop, m = crop_face(frame, face, Crop("arcface", 128, ""))
    image, mask = paste_back(frame, np.full_like(crop, 200), m)
    assert image.shape == frame.shape and mask.shape == frame.shape[:2]
    assert np.array_equal(image[mask == 0], frame[mask == 0])  # untouched outside the mask
    inner = mask > 0.999
    assert inner.sum() > 0.3 * (100 * 100) and np.all(np.abs(image[inner].astype(int) - 200) <= 1)
    # the mask is 0 on the crop border: the crop's corners, mapped back, are outside it
    import cv2

    inv = cv2.invertAffineTransform(m)
    for x, y in [(1, 1), (126, 1), (1, 126), (126, 126)]:
        fx, fy = inv @ [x, y, 1]
        assert mask[int(round(fy)), int(round(fx))] < 0.05
    assert crop_mask(128)[64, 64] == pytest.approx(1.0, abs=1e-6) and crop_mask(128)[0].max() == 0.0


def test_pasting_the_unchanged_crop_back_keeps_the_frame():
    frame = synth_image(4, 240, 240)
    face = synth_face(cx=120, cy=120, scale=110.0)
    for crop_spec in (Crop("arcface", 224, ""), Crop("ffhq", 256, "")):
        crop, m = crop_face(frame, face, crop_spec)
        image, mask = paste_back(frame, crop, m)
        diff = np.abs(image.astype(int) - frame.astype(int))[mask > 0.5]
        assert diff.mean() < 3.0, crop_spec  # only resampling blur of a smooth texture


# --- BlendSwap -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def blendswap_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("blendswap") / "blendswap.pth"
    torch.save(small_blendswap().state_dict(), path)  # the official format: BlendSwap's whole state_dict()
    return path


@pytest.fixture(scope="module")
def blendswap(blendswap_file):
    return create_swapper("blendswap", weights=blendswap_file)


def test_blendswap_loads_official_keys_runs_and_pastes_back(blendswap, blendswap_file):
    sw = blendswap
    src_img, src, tgt_img, tgt = _pair(0)
    res = sw.swap(src_img, src, tgt_img, tgt)
    assert isinstance(res, SwapResult) and res.face is tgt
    assert res.image.shape == tgt_img.shape and res.image.dtype == np.uint8
    assert np.array_equal(res.image[res.mask == 0], tgt_img[res.mask == 0])
    assert (res.mask > 0.99).sum() > 2000 and np.abs(res.image.astype(int) - tgt_img).max() > 10
    assert res.provenance["swapper"] == "blendswap" and res.provenance["target_crop"] == "ffhq256"
    assert len(res.provenance["weights"]["blendswap.pth"]["sha256"]) == 64
    again = create_swapper("blendswap", weights=blendswap_file).swap(src_img, src, tgt_img, tgt)
    assert again.image.tobytes() == res.image.tobytes()  # deterministic, also across instances


def test_blendswap_generate_is_the_official_forward(blendswap):
    """``generate`` (identity once per source) equals BlendSwap.forward(target, source) on the same crops."""
    sw = blendswap.model
    src_img, src, tgt_img, tgt = _pair(1)
    s_crop, _ = crop_face(src_img, src, sw.spec.source)
    t_crop, _ = crop_face(tgt_img, tgt, sw.spec.target)
    with torch.no_grad():
        ref = sw.net(sw._tensor(t_crop), sw._tensor(s_crop))[0].permute(1, 2, 0).numpy()
    out = sw.generate(t_crop, sw.identity(s_crop))
    # inference.py's uint8 conversion truncates: (output * 255).astype(np.uint8)
    d = out.astype(float) - ref * 255
    assert d.max() <= 1e-3 and d.min() > -1 - 1e-3
    assert np.mean(out == (ref * 255).astype(np.uint8)) > 0.999


def test_blendswap_mask_head_decides_what_changes(tmp_path):
    """Mask head bias -50: the output is the target crop (the frame barely moves); +50: the generator's."""
    net = small_blendswap(2)
    src_img, src, tgt_img, tgt = _pair(2)
    outs = {}
    for bias in (-50.0, 50.0):
        with torch.no_grad():
            net.mask_head_ema.weight.zero_()
            net.mask_head_ema.bias.fill_(bias)
        path = tmp_path / f"b{bias}.pth"
        torch.save(net.state_dict(), path)
        outs[bias] = create_swapper("blendswap", weights=path).swap(src_img, src, tgt_img, tgt)
    keep, gen = outs[-50.0], outs[50.0]
    m = keep.mask > 0.5
    assert np.abs(keep.image.astype(int) - tgt_img)[m].mean() < 3.0
    assert np.abs(gen.image.astype(int) - tgt_img)[m].mean() > 10.0


def test_blendswap_bad_faces_are_swap_errors(blendswap):
    sw = blendswap
    src_img, src, tgt_img, tgt = _pair(0)
    tiny = synth_face(cx=50, cy=50, scale=10.0)
    with pytest.raises(SwapError, match="too small"):
        sw.swap(src_img, src, tgt_img, tiny)
    nan = Face(src.box, 1.0, np.full((5, 2), np.nan, np.float32), None)
    with pytest.raises(SwapError, match="not finite"):
        sw.swap(src_img, nan, tgt_img, tgt)
    with pytest.raises(SwapError, match="uint8 RGB"):
        sw.swap(src_img.astype(np.float32), src, tgt_img, tgt)


# --- SimSwap -------------------------------------------------------------------------------------

def _save_pickled_like_simswap(module, path: Path, where: str = "models.arcface_models") -> None:
    """``torch.save(model)`` with the classes under one of SimSwap's own paths (``models.arcface_models`` or
    ``models``, which re-exports them)."""
    from idbench.swapper.learned import simswap_net as N

    fake = types.ModuleType("models.arcface_models")
    pkg = types.ModuleType("models")
    pkg.arcface_models = fake
    home = fake if where == "models.arcface_models" else pkg
    renamed = {}
    for base in (N.ResNet, N.IRBlock, N.SEBlock):
        cls = type(base.__name__, (base,), {"__module__": where, "__qualname__": base.__name__})
        setattr(home, base.__name__, cls)
        renamed[base] = cls
    for m in module.modules():
        if type(m) in renamed:
            m.__class__ = renamed[type(m)]
    sys.modules["models"], sys.modules["models.arcface_models"] = pkg, fake
    try:
        torch.save(module, path)
    finally:
        del sys.modules["models"], sys.modules["models.arcface_models"]


@pytest.fixture(scope="module")
def simswap_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("simswap")
    torch.save(small_simswap_generator().state_dict(), d / "latest_net_G.pth")
    _save_pickled_like_simswap(small_arcface(), d / "arcface_checkpoint.tar")
    _save_pickled_like_simswap(small_arcface(), d / "arcface_models_pkg.tar", where="models")
    torch.save(small_arcface().state_dict(), d / "arcface_state_dict.pth")
    return d


def test_simswap_pickled_arcface_needs_the_trust_switch(simswap_files, monkeypatch):
    weights = {"latest_net_G.pth": simswap_files / "latest_net_G.pth",
               "arcface_checkpoint.tar": simswap_files / "arcface_checkpoint.tar"}
    monkeypatch.delenv("IDBENCH_ALLOW_PICKLE", raising=False)
    with pytest.raises(WeightsFormatError, match="IDBENCH_ALLOW_PICKLE"):
        create_swapper("simswap", weights=weights)
    monkeypatch.setenv("IDBENCH_ALLOW_PICKLE", "1")
    pickled = create_swapper("simswap", weights=weights)
    assert "models" not in sys.modules  # the class-path alias is gone after loading
    pkg_path = create_swapper("simswap", weights={**weights, "arcface_checkpoint.tar": simswap_files /
                                                  "arcface_models_pkg.tar"})
    for a, b in zip(pickled.model.arcface.state_dict().values(), pkg_path.model.arcface.state_dict().values()):
        assert torch.equal(a, b)
    weights["arcface_checkpoint.tar"] = simswap_files / "arcface_state_dict.pth"
    monkeypatch.delenv("IDBENCH_ALLOW_PICKLE")
    resaved = create_swapper("simswap", weights=weights)
    for a, b in zip(pickled.model.arcface.state_dict().values(), resaved.model.arcface.state_dict().values()):
        assert torch.equal(a, b)


def test_simswap_runs_pastes_back_and_is_deterministic(simswap_files):
    weights = {"latest_net_G.pth": simswap_files / "latest_net_G.pth",
               "arcface_checkpoint.tar": simswap_files / "arcface_state_dict.pth"}
    sw = create_swapper("simswap", weights=weights)
    src_img, src, tgt_img, tgt = _pair(3)
    res = sw.swap(src_img, src, tgt_img, tgt)
    assert res.image.shape == tgt_img.shape and res.face is tgt
    assert np.array_equal(res.image[res.mask == 0], tgt_img[res.mask == 0])
    assert np.abs(res.image.astype(int) - tgt_img)[res.mask > 0.99].mean() > 5
    assert res.provenance["target_crop"] == "arcface224"
    assert create_swapper("simswap", weights=weights).swap(src_img, src, tgt_img, tgt).image.tobytes() == \
        res.image.tobytes()
    # the identity matters: another source gives another swap
    other = sw.swap(synth_image(9, 240, 240), src, tgt_img, tgt)
    assert not np.array_equal(other.image, res.image)


# --- inswapper -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inswapper_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inswapper")
    return inswapper_onnx(d), identity_onnx(d)


def test_inswapper_matches_insightfaces_own_inswapper(inswapper_files):
    ins = pytest.importorskip("insightface.model_zoo.inswapper")
    model, ident = inswapper_files
    pair_swapper = create_swapper("inswapper", weights=model, identity_weights=ident)
    sw = pair_swapper.model
    src_img, src, tgt_img, tgt = _pair(4)
    s_crop, _ = crop_face(src_img, src, sw.spec.source)
    latent = sw.identity(s_crop)
    ref = ins.INSwapper(model_file=str(model))
    emb = sw.encoder.embed(s_crop[None])[0]
    np.testing.assert_allclose(ref.emap, sw.emap)
    expected = emb @ ref.emap
    np.testing.assert_allclose(latent[0], expected / np.linalg.norm(expected), rtol=1e-5, atol=1e-6)
    bgr = np.ascontiguousarray(tgt_img[:, :, ::-1])
    fake = types.SimpleNamespace(kps=tgt.landmarks5)
    source = types.SimpleNamespace(normed_embedding=emb)
    bgr_fake, m = ref.get(bgr, fake, source, paste_back=False)
    ours_crop, ours_m = crop_face(tgt_img, tgt, sw.spec.target)
    np.testing.assert_allclose(ours_m, m, atol=1e-3)  # the same 128 arcface crop geometry
    import cv2

    aimg = cv2.warpAffine(bgr, m, (128, 128), borderValue=0.0)  # insightface's norm_crop2, on its own matrix
    assert np.abs(aimg[:, :, ::-1].astype(int) - ours_crop).max() <= 1
    # on the very same crop and latent, our run of the graph gives insightface's bytes
    assert np.array_equal(sw.generate(np.ascontiguousarray(aimg[:, :, ::-1]), latent), bgr_fake[:, :, ::-1])
    res = sw.swap(src_img, src, tgt_img, tgt)
    merged = ref.get(bgr, fake, source, paste_back=True)[:, :, ::-1]
    # compare the inner half of the crop, where both paste-back masks are 1
    ys, xs = np.mgrid[0:tgt_img.shape[0], 0:tgt_img.shape[1]]
    cx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    cy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    inner = (cx > 32) & (cx < 96) & (cy > 32) & (cy < 96)
    assert inner.sum() > 1000
    assert np.mean(np.abs(res.image.astype(int) - merged.astype(int))[inner] <= 2) > 0.99
    assert np.array_equal(res.image[res.mask == 0], tgt_img[res.mask == 0])


def test_inswapper_is_deterministic_and_checks_its_graph(inswapper_files, tmp_path):
    model, ident = inswapper_files
    src_img, src, tgt_img, tgt = _pair(5)
    a = create_swapper("inswapper", weights=model, identity_weights=ident).swap(src_img, src, tgt_img, tgt)
    b = create_swapper("inswapper", weights=model, identity_weights=ident).swap(src_img, src, tgt_img, tgt)
    assert a.image.tobytes() == b.image.tobytes() and a.provenance["identity_encoder"] == "arcface.onnx"
    sw = create_swapper("inswapper", weights=model, identity_weights=ident)
    from idbench.weights import sha256_file

    assert sw.params()["weights_sha256"] == {"inswapper_128.onnx": sha256_file(model),
                                             "w600k_r50.onnx": sha256_file(ident)}  # both files key the cache
    import onnx
    from onnx import numpy_helper

    bad = onnx.load(str(model))
    bad.graph.initializer.append(numpy_helper.from_array(np.zeros((3, 3), np.float32), "not_emap"))
    onnx.save(bad, str(tmp_path / "bad.onnx"))
    with pytest.raises(WeightsFormatError, match="512 x 512"):
        create_swapper("inswapper", weights=tmp_path / "bad.onnx", identity_weights=ident)


# --- against the official code (optional) ----------------------------------------------------------

OFFICIAL = os.environ.get("IDBENCH_OFFICIAL_SWAPPERS", "")


@pytest.mark.skipif(not OFFICIAL, reason="set IDBENCH_OFFICIAL_SWAPPERS to a folder with BlendFace's swapping/ "
                                         "and SimSwap's models/ to compare with the official modules")
def test_official_code_parity():
    """Our modules with the official modules' weights give the official outputs (full size, CPU; slow)."""
    root = Path(OFFICIAL)
    sys.path[:0] = [str(root / "swapping"), str(root)]
    from model.encoder import MultilevelAttributesEncoder  # BlendFace swapping/model/encoder.py
    from model.generator import ADDGenerator
    from models.fs_networks import Generator_Adain_Upsample  # SimSwap

    from idbench.swapper.learned.aei_net import AADGenerator, AttributesEncoder
    from idbench.swapper.learned.simswap_net import SimSwapGenerator

    torch.manual_seed(0)
    pairs = [(ADDGenerator(512, 3), AADGenerator()), (MultilevelAttributesEncoder(), AttributesEncoder()),
             (Generator_Adain_Upsample(3, 3, 512, n_blocks=9, deep=False), SimSwapGenerator())]
    for official, ours in pairs:
        randomise_bn(official, 3)
        ours.load_state_dict(official.state_dict(), strict=True)
        official.eval(), ours.eval()
    x256, x224, z = torch.rand(1, 3, 256, 256), torch.rand(1, 3, 224, 224), torch.nn.functional.normalize(
        torch.randn(1, 512))
    with torch.no_grad():
        maps_o, maps_u = pairs[1][0](x256), pairs[1][1](x256)
        for a, b in zip(maps_o, maps_u):
            torch.testing.assert_close(a, b)
        torch.testing.assert_close(pairs[0][0](z, maps_o), pairs[0][1](z, maps_u))
        torch.testing.assert_close(pairs[2][0](x224, z), pairs[2][1](x224, z))


def test_simswap_on_a_real_photo_changes_only_the_target_face(simswap_files, t1_image):
    """insightface's t1.jpg (dlib HOG faces): face 0's identity onto face 1; the rest of the frame is untouched."""
    from idbench.detectors import create_detector

    faces = create_detector("dlib-hog").detect(t1_image)
    assert len(faces) >= 2
    weights = {"latest_net_G.pth": simswap_files / "latest_net_G.pth",
               "arcface_checkpoint.tar": simswap_files / "arcface_state_dict.pth"}
    res = create_swapper("simswap", weights=weights).swap(t1_image, faces[0], t1_image, faces[1])
    changed = np.any(res.image != t1_image, axis=2)
    assert changed.sum() > 0.5 * faces[1].area and not (changed & (res.mask == 0)).any()
    x1, y1, x2, y2 = faces[1].box
    assert res.mask[int((y1 + y2) / 2), int((x1 + x2) / 2)] > 0.99  # the target face is inside the mask
    for f in faces[:1] + faces[2:]:  # every other face is untouched
        bx1, by1, bx2, by2 = np.round(f.box).astype(int)
        assert not changed[max(by1, 0):by2, max(bx1, 0):bx2].any()
