"""One test per registry over EVERY registered name (a new entry gets its test without writing one), and the
one registry contract: ``Registry.create`` (declared options, weight files), lazy registration, plugins.

Encoders are built from official-format test weights (the file layouts of tests/test_encoder_loaders.py,
tests/learned_weights.py) or the real file where one is installed, and run once on a real aligned face crop of
../shared/data/faces; an entry whose files cannot be made here is skipped with the reason.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from idbench.analysis.estimators import ESTIMATORS
from idbench.bench.datasets import DATASETS, load_dataset
from idbench.detectors import DETECTORS
from idbench.encoders import ENCODERS
from idbench.errors import IdbenchError, WeightsNotFoundError
from idbench.registry import UNSET, Option, Registry, Spec, UnknownOptionError
from idbench.swapper import SWAPPERS
from idbench.weights import WeightSource, resolve_weights

from conftest import FACES

REGISTRIES = {"encoder": ENCODERS, "detector": DETECTORS, "estimator": ESTIMATORS, "swapper": SWAPPERS,
              "dataset": DATASETS}
EVERY = [(kind, name) for kind, reg in REGISTRIES.items() for name in reg.names()]
PHOTOS = ("abdullah_gul/01.jpg", "ariel_sharon/01.jpg")  # LFW deep-funneled, 250 x 250, the face centred
CENTRE = np.array([125.0, 125.0])


def _centre(face) -> np.ndarray:
    return (face.box[:2] + face.box[2:]) / 2


# --- the contract every entry of every registry keeps -------------------------------------------------------

@pytest.mark.parametrize("kind,name", EVERY, ids=[f"{k}:{n}" for k, n in EVERY])
def test_every_spec_keeps_the_contract(kind, name):
    reg = REGISTRIES[kind]
    spec = reg.spec(name)
    assert isinstance(spec, Spec) and spec.name == name and spec.description.strip()
    assert all(isinstance(w, WeightSource) and w.filename and w.origin for w in spec.weights)
    names = [o.name for o in spec.options]
    assert len(names) == len(set(names)) and all(isinstance(o, Option) and o.help for o in spec.options)
    with pytest.raises(UnknownOptionError) as e:  # an undeclared option is refused before any file is read
        reg.create(name, no_such_option=1)
    assert str(e.value).startswith(f"unknown option 'no_such_option' for {kind} '{name}'")
    assert "\n" not in str(e.value)


# --- encoders --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def photos():
    """(image, dlib-HOG face nearest the centre) of two real photos of two people."""
    if not (FACES / "MANIFEST.csv").is_file():
        pytest.skip("../shared/data/faces is not available")
    from idbench.detectors import create_detector
    from idbench.imageio import read_image

    out = []
    for rel in PHOTOS:
        img = read_image(FACES / rel)
        faces = create_detector("dlib-hog").detect(img)
        out.append((img, min(faces, key=lambda f: np.linalg.norm(_centre(f) - CENTRE))))
    return out


def _iresnet(arch: str, fp16: bool):
    def make(path: Path):
        import torch
        from test_encoder_loaders import random_state_dict

        sd = random_state_dict(arch, 1)
        torch.save({k: v.half() if fp16 and v.is_floating_point() else v for k, v in sd.items()}, path)
    return make


def _ir(depth: int, lightning: bool):
    def make(path: Path):
        import torch
        from test_encoder_loaders import random_like

        from idbench.encoders.irse import IRBackbone

        sd = random_like(IRBackbone(depth, mid_bn=lightning), 12)
        torch.save({"state_dict": {f"model.{k}": v for k, v in sd.items()}, "epoch": 1} if lightning else sd, path)
    return make


def _sphere20a(path: Path):
    import torch
    from test_encoder_loaders import random_like

    from idbench.encoders.sphere20a_net import Sphere20a

    torch.save(random_like(Sphere20a(), 11, {"fc6.weight": (512, 10574)}), path)


def _facenet(classes: int):
    def make(path: Path):
        import torch
        from facenet_pytorch import InceptionResnetV1
        from test_encoder_loaders import randomise_

        torch.manual_seed(5)
        torch.save(randomise_(InceptionResnetV1(pretrained=None, classify=True, num_classes=classes), 6).state_dict(),
                   path)
    return make


def _recognition_onnx(path: Path):
    from learned_weights import identity_onnx

    made = identity_onnx(path.parent)
    made.rename(path)


def _dlib_finetuned(path: Path):
    import torch

    from idbench.encoders.dlib_resnet import DlibResNet

    torch.manual_seed(3)
    torch.save(DlibResNet().state_dict(), path)


#: official-format test weights per weight file (the layout each project releases); slow: large networks
MAKERS = {
    "ms1mv3_arcface_r18_fp16_backbone.pth": _iresnet("r18", True),
    "ms1mv3_arcface_r34_fp16_backbone.pth": _iresnet("r34", True),
    "ms1mv3_arcface_r50_fp16_backbone.pth": _iresnet("r50", True),
    "ms1mv3_arcface_r100_fp16_backbone.pth": _iresnet("r100", True),
    "arcface.pt": _iresnet("r100", False), "blendface.pt": _iresnet("r100", False),
    "blendface_r18_backbone.pth": _iresnet("r18", False), "blendface_r34_backbone.pth": _iresnet("r34", False),
    "blendface_r50_backbone.pth": _iresnet("r50", False),
    "adaface_ir50_ms1mv2.ckpt": _ir(50, True), "adaface_ir101_webface12m.ckpt": _ir(100, True),
    "CurricularFace_Backbone.pth": _ir(100, False),
    "sphere20a_20171020.pth": _sphere20a,
    "20180402-114759-vggface2.pt": _facenet(8631), "20180408-102900-casia-webface.pt": _facenet(10575),
    "w600k_r50.onnx": _recognition_onnx, "w600k_mbf.onnx": _recognition_onnx, "glintr100.onnx": _recognition_onnx,
    "dlib_finetuned.pth": _dlib_finetuned,
}
SLOW_FILES = {"ms1mv3_arcface_r34_fp16_backbone.pth", "ms1mv3_arcface_r50_fp16_backbone.pth",
              "ms1mv3_arcface_r100_fp16_backbone.pth", "arcface.pt", "blendface.pt", "blendface_r34_backbone.pth",
              "blendface_r50_backbone.pth", "adaface_ir50_ms1mv2.ckpt", "adaface_ir101_webface12m.ckpt",
              "CurricularFace_Backbone.pth", "20180402-114759-vggface2.pt", "20180408-102900-casia-webface.pt"}


def _encoder_params():
    out = []
    for name in ENCODERS.names():
        files = [w.filename for w in ENCODERS.spec(name).weights]
        slow = any(f in SLOW_FILES for f in files)
        out.append(pytest.param(name, marks=[pytest.mark.slow] if slow else [], id=name))
    return out


def _weights_or_skip(spec, folder: Path):
    """None when the entry's files are installed, else the path of official-format test weights made here."""
    from idbench.registry import resolve_spec_weights

    if spec.name.startswith("deepface."):
        pytest.importorskip("deepface", reason=f"{spec.name} needs the deepface extra (pip install idbench[deepface])")
    try:
        resolve_spec_weights(spec)
        return None
    except IdbenchError:
        pass
    made = {}
    for src in spec.weights:
        if src.filename not in MAKERS:
            pytest.skip(f"{spec.name}: no official-format test file can be made here for {src.filename}")
        MAKERS[src.filename](folder / src.filename)
        made[src.filename] = folder / src.filename
    return made


@pytest.mark.parametrize("name", _encoder_params())
def test_every_encoder_embeds_a_real_face(name, photos, tmp_path):
    from idbench.encoders import create_encoder
    from idbench.recipe_face import encoder_crop

    spec = ENCODERS.spec(name)
    enc = create_encoder(name, _weights_or_skip(spec, tmp_path))
    crops = np.stack([encoder_crop(img, face, spec) for img, face in photos])  # the crop the pipeline gives it
    raw = enc.embed(crops, normalise=False)
    assert crops.shape[1:3] == spec.input_size and raw.shape == (2, spec.embedding_size) and raw.dtype == np.float32 and np.isfinite(raw).all()
    if spec.l2_normalised:  # the spec promises unit vectors from the network itself
        np.testing.assert_allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-4)
    emb = enc.embed(crops)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.abs(raw[0] - raw[1]).max() > 0  # two people: the network looked at the pixels


# --- detectors -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DETECTORS.names())
def test_every_detector_finds_the_face_where_it_is(name, photos):
    from idbench.align import align_face, arcface_template
    from idbench.detectors import create_detector
    from idbench.errors import InputError

    spec = DETECTORS.spec(name)
    try:
        resolve_spec_weights_or_skip(spec)
        det = create_detector(name)
    except WeightsNotFoundError as e:
        pytest.skip(f"{name}: {str(e)[:120]} (no official-format test file can be made here)")
    img, hog_face = photos[0]
    try:
        faces = det.detect(img)
        centre = CENTRE
    except InputError:  # a detector of already-aligned crops: give it the ArcFace crop of the same face
        faces = det.detect(align_face(img, hog_face, "arcface112", 112))
        centre = arcface_template(112).mean(0)
    assert faces, f"{name} found no face on {PHOTOS[0]}"
    best = min(faces, key=lambda f: np.linalg.norm(_centre(f) - centre))
    assert np.linalg.norm(_centre(best) - centre) < 30 and best.landmarks5.shape == (5, 2)


def resolve_spec_weights_or_skip(spec):
    from idbench.registry import resolve_spec_weights

    return resolve_spec_weights(spec)


# --- estimators -----------------------------------------------------------------------------------------

from test_estimators import net_weights  # noqa: E402,F401  (fixture: official-format estimator weights)


@pytest.mark.parametrize("name", ESTIMATORS.names())
def test_every_estimator_measures_a_real_face(name, photos, net_weights):  # noqa: F811
    from idbench.analysis.estimators import create_estimator

    spec = ESTIMATORS.spec(name)
    weights = None
    if spec.weights:
        weights = {w.filename: net_weights / w.filename for w in spec.weights if (net_weights / w.filename).is_file()}
        if len(weights) < len(spec.weights):
            pytest.skip(f"{name}: no official-format test file for {[w.filename for w in spec.weights]}")
    if name.startswith("gaze.iris"):
        pytest.importorskip("mediapipe", reason=f"{name} needs mediapipe")
    est = create_estimator(name, weights=weights)
    img, face = photos[0]
    out = est.estimate(img, face)
    assert out.shape == (len(spec.columns),) and out.dtype == np.float64 and np.isfinite(out).all()


# --- swappers -------------------------------------------------------------------------------------------

def _ffpp_tree(root: Path, method: str, photo: np.ndarray) -> Path:
    import cv2

    vids = root / "manipulated_sequences" / method / "c23" / "videos"
    vids.mkdir(parents=True)
    (root / "original_sequences" / "youtube" / "c23" / "videos").mkdir(parents=True)
    small = cv2.resize(photo, (128, 128), interpolation=cv2.INTER_AREA)
    vw = cv2.VideoWriter(str(vids / "000_001.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (128, 128))
    for _ in range(6):
        vw.write(np.ascontiguousarray(small[:, :, ::-1]))
    vw.release()
    return root


@pytest.mark.parametrize("name", SWAPPERS.names())
def test_every_swapper_swaps_or_reads_outputs(name, photos, learned_home, tmp_path):
    from idbench.swapper import create_swapper

    spec = SWAPPERS.spec(name)
    (src_img, src), (tgt_img, tgt) = photos
    if spec.kind in ("pseudo", "learned"):  # pair swappers: one swap of two real photos
        res = create_swapper(name, seed=0).swap(src_img, src, tgt_img, tgt)
        assert res.image.shape == tgt_img.shape and res.image.dtype == np.uint8
        x1, y1, x2, y2 = tgt.box.astype(int)
        inside = np.abs(res.image[y1:y2, x1:x2].astype(int) - tgt_img[y1:y2, x1:x2]).mean()
        assert inside > 1.0, f"{name} left the target face unchanged"
    elif name.startswith("ffpp:"):  # a method's published outputs: the frames of its videos
        method = name.split(":", 1)[1]
        frames = list(create_swapper(name, root=_ffpp_tree(tmp_path, method, tgt_img), frames=3))
        assert [(f.target_id, f.source_id) for f in frames] == [("000", "001")] * 3
        assert all(f.image.shape == (128, 128, 3) for f in frames)
    elif spec.arg:  # outputs in a folder (results:DIR): built from it, what is not an output is listed
        from idbench.swapper import SwapContext

        (tmp_path / "notes.txt").write_text("not an output")
        sw = create_swapper(f"{name}:{tmp_path}", frames=3)
        assert sw.params() == {spec.arg: str(tmp_path), "frames": 3}
        items, fails = sw.plan(SwapContext(table=None, labels=np.array(["ann", "bob"])))
        assert items == [] and [f["reason"] for f in fails] == ["not an image, video or frame folder"]
    else:
        pytest.skip(f"swapper {name}: no test input in its layout here")


# --- datasets -------------------------------------------------------------------------------------------

def _images(folder: Path, n: int, seed: int) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        cv2.imwrite(str(folder / f"{folder.name}_{i + 1:04d}.jpg"), rng.integers(0, 255, (40, 40, 3), np.uint8))


def _folder_root(tmp: Path):
    for k, who in enumerate(("ann", "bob", "cid")):
        _images(tmp / who, 2, k)
    return dict(root=tmp), {"items": 6, "identities": ["ann", "bob", "cid"]}


def _lfw_root(tmp: Path):
    for k, who in enumerate(("Ann_A", "Bob_B")):
        _images(tmp / "lfw" / who, 2, k)
    (tmp / "pairs.txt").write_text("1 1\nAnn_A 1 2\nAnn_A 1 Bob_B 2\n")
    return dict(root=tmp), {"items": 3, "identities": ["Ann_A", "Bob_B"], "pairs": [[0, 1, 1], [0, 2, 0]]}


def _ffpp_root(tmp: Path):
    import cv2

    vids = tmp / "original_sequences" / "youtube" / "c23" / "videos"
    vids.mkdir(parents=True)
    for vid in ("000", "001"):
        vw = cv2.VideoWriter(str(vids / f"{vid}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
        for f in range(5):
            vw.write(np.full((64, 64, 3), 40 * f + int(vid), np.uint8))
        vw.release()
    (tmp / "splits").mkdir()
    (tmp / "splits" / "test.json").write_text(json.dumps([["000", "001"]]))
    return dict(root=tmp, frames=2, progress=False), {"items": 4, "identities": ["000", "001"]}


#: a small folder in each dataset's own layout, and what reading it gives
DATASET_FOLDERS = {"folder": _folder_root, "lfw": _lfw_root, "ffpp": _ffpp_root}


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_loads_a_small_folder(name, tmp_path):
    if name not in DATASET_FOLDERS:
        if name == "sample":
            pytest.skip("sample needs no folder: built by the bench run tests from installed packages' photos")
        pytest.skip(f"dataset {name}: no small test folder in its layout here (add one to DATASET_FOLDERS)")
    options, want = DATASET_FOLDERS[name](tmp_path)
    ds = DATASETS.create(name, **options)
    assert ds.name == name and len(ds.items) == want["items"] and ds.identities == want["identities"]
    assert all(Path(it.path).is_file() for it in ds.items)
    if "pairs" in want:
        assert ds.pairs.tolist() == want["pairs"]
    again = load_dataset(name, options.pop("root"), split="test", compression="c23", frames=2, splits=None,
                         progress=False)  # bench run's generic options: each dataset takes the ones it declares
    assert len(again.items) == want["items"]


# --- Registry.create ------------------------------------------------------------------------------------

def test_an_undeclared_option_is_one_did_you_mean_line():
    from idbench.swapper import create_swapper

    with pytest.raises(UnknownOptionError) as e:
        create_swapper("blend", sed=1)
    assert str(e.value).startswith("unknown option 'sed' for swapper 'blend'; did you mean 'seed'?")
    with pytest.raises(IdbenchError, match="unknown option 'folcal' for estimator 'pose.pnp'; did you mean 'focal'"):
        ESTIMATORS.create("pose", folcal=800)
    with pytest.raises(IdbenchError, match="for dataset 'ffpp'; did you mean 'frames'"):
        DATASETS.create("ffpp", frame=3)


def test_declared_defaults_are_filled_and_unset_ones_left_to_the_factory():
    reg = Registry("thing", group="idbench.test-none")
    seen = {}

    @reg.register("a", Spec("a", description="d", options=(Option("k", 7, "k"), Option("mode", UNSET, "m"))))
    def make(spec, weights, device, **options):
        seen.update(options, weights=weights, device=device)
        return spec.name

    assert reg.create("a", device="cuda:1") == "a"
    assert seen == {"k": 7, "weights": None, "device": "cuda:1"}
    reg.create("a", mode="crop", k=1)
    assert seen["mode"] == "crop" and seen["k"] == 1


def test_every_missing_weight_file_is_one_line_naming_where_it_goes(tmp_path, monkeypatch):
    monkeypatch.setenv("IDBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsNotFoundError) as e:
        SWAPPERS.create("simswap")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("simswap misses 2 weight files")
    for needle in ("latest_net_G.pth not found", "arcface_checkpoint.tar not found", str(tmp_path / "home" / "weights"),
                   "github.com/neuralchen/SimSwap"):
        assert needle in msg
    with pytest.raises(WeightsNotFoundError, match=r"^det_10g.onnx not found.*put it in"):
        DETECTORS.create("scrfd")
    given = tmp_path / "nowhere.pth"
    with pytest.raises(WeightsNotFoundError, match=f"weight file {given} does not exist"):
        ENCODERS.create("arcface", weights=given)


def test_weights_are_resolved_once_and_given_by_file_or_entry_name(tmp_path):
    reg = Registry("thing", group="idbench.test-none")
    a, b = WeightSource("a.bin", "test"), WeightSource("b.bin", "test")
    for f in ("a.bin", "b.bin"):
        (tmp_path / f).write_bytes(b"x")
    reg.add("one", Spec("one", description="d", weights=(a,)), lambda spec, w, device: w)
    reg.add("two", Spec("two", description="d", weights=(a, b)), lambda spec, w, device: w)
    assert reg.create("one", weights={"one": tmp_path / "a.bin"}) == tmp_path / "a.bin"
    assert reg.create("one", weights=tmp_path / "a.bin") == tmp_path / "a.bin"
    assert reg.create("two", weights={"a.bin": tmp_path / "a.bin", "b.bin": tmp_path / "b.bin"}) == {
        "a.bin": tmp_path / "a.bin", "b.bin": tmp_path / "b.bin"}


# --- lazy registration and plugins ------------------------------------------------------------------------

def test_registration_is_lazy_and_needs_no_torch():
    import subprocess

    code = ("import sys; import idbench.encoders as E, idbench.bench.datasets, idbench.swapper.registry, "
            "idbench.analysis.estimators; "
            "assert not E.ENCODERS._loaded and not E.ENCODERS._entries, 'imported at package import'; "
            "assert 'idbench.encoders.arcface' not in sys.modules; "
            "n = E.list_encoders(); assert 'arcface.r100' in n and 'idbench.encoders.arcface' in sys.modules; "
            "heavy = [m for m in ('torch', 'cv2') if m in sys.modules]; assert not heavy, heavy")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize("kind", [*REGISTRIES, "analysis"])
def test_a_plugin_registers_through_its_group_and_a_broken_one_is_listed(kind, tmp_path, monkeypatch):
    import importlib.metadata as md

    from idbench.bench.steps import STEPS

    reg = {**REGISTRIES, "analysis": STEPS}[kind]
    module = f"idb_fake_{kind}_plugin"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(f"""
        from idbench.registry import Spec

        REG = None  # the registry under test, set below


        def register():
            REG.add("fake-{kind}", Spec("fake-{kind}", description="a plugin entry"), lambda spec, w, d: "{kind}!")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = __import__(module)
    mod.REG = reg
    eps = md.EntryPoints([md.EntryPoint("fake", f"{module}:register", reg.group),
                          md.EntryPoint("broken", "idb_no_such_plugin_module", reg.group)])
    real = md.entry_points
    monkeypatch.setattr(md, "entry_points", lambda group=None, **kw: eps.select(group=group) if group else real())
    try:
        with pytest.warns(RuntimeWarning, match="broken"):
            assert reg.create(f"fake-{kind}") == f"{kind}!"
        assert f"fake-{kind}" in reg.names("fake")
        broken = [k for k in reg.import_errors if k.startswith("plugin:broken")]
        assert broken and "idb_no_such_plugin_module" in reg.import_errors[broken[0]]
        with pytest.raises(IdbenchError, match="modules that failed to load: plugin:broken"):
            reg.create(f"fake-{kind}-missing")
    finally:
        reg.remove(f"fake-{kind}")
        for k in [k for k in reg.import_errors if k.startswith("plugin:")]:
            reg.import_errors.pop(k)
        reg._plugins_seen -= {f"fake={module}:register", "broken=idb_no_such_plugin_module"}
        sys.modules.pop(module, None)


def test_build_swappers_passes_the_run_values_of_exactly_the_declared_options(tmp_path):
    from idbench.bench.run import RunConfig, build_swappers
    from idbench.swapper import SwapperSpec, register_swapper

    seen = {}
    spec = SwapperSpec("recipe-recorder", "records what it is given", "pseudo", weights=(WeightSource("rec.bin", "t"),),
                       options=(Option("seed", 0, "seed"), Option("frames", 1, "frames"),
                                Option("identity_weights", None, "an encoder's file", weights_key="enc.x")))

    @register_swapper(spec)
    def _make(spec, weights, device, **options):
        seen.update(options, weights=weights, device=device)
        return "built"

    (tmp_path / "rec.bin").write_bytes(b"x")
    try:
        cfg = RunConfig(swappers=["recipe-recorder", "blend"], seed=5, k_partners=7, frames=4, root=str(tmp_path),
                        weights={"recipe-recorder": str(tmp_path / "rec.bin"), "enc.x": "/p/enc.onnx"})
        built = build_swappers(cfg)
    finally:
        SWAPPERS.remove("recipe-recorder")
    assert built["recipe-recorder"] == "built"
    assert seen == {"seed": 5, "frames": 4, "identity_weights": "/p/enc.onnx", "weights": tmp_path / "rec.bin",
                    "device": "cpu"}  # not k, root, compression: it does not declare them
    assert (built["blend"].seed, built["blend"].k) == (5, 7)
