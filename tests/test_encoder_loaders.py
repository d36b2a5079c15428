"""Weight loaders of the registered encoders, on random weights saved in the official formats.

No real weights are needed: each test builds a randomly initialised network, writes it the way its
authors distribute it (arcface_torch ``backbone.pth``, BlendFace ``blendface.pt``, an ONNX export,
facenet-pytorch's ``.pt``) and checks that the registry's loader reproduces the network's outputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from idbench.encoders import create_encoder, get_spec, list_encoders
from idbench.encoders.iresnet import (IRESNET_LAYERS, build_iresnet, infer_iresnet_layers, load_iresnet_checkpoint,
                                      read_state_dict)
from idbench.errors import IdbenchError, WeightsFormatError, WeightsNotFoundError

torch.set_num_threads(2)


def randomise_(module: nn.Module, seed: int) -> nn.Module:
    """Random weights *and* BN statistics / PReLU slopes with sane activation scales (eval mode)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.normal_(0.0, m.weight[0].numel() ** -0.5, generator=g)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.05, generator=g)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.0, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
            elif isinstance(m, nn.PReLU):
                m.weight.uniform_(0.05, 0.4, generator=g)
    return module.eval()


def faces(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def reference(module: nn.Module, x: np.ndarray, mean: float, std: float) -> np.ndarray:
    t = torch.from_numpy(x).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        return module((t - mean) / std).numpy()


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def official_keys(layers) -> set:
    """arcface_torch's backbone.pth key names, written out independently of idbench's module."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"conv1.weight", "prelu.weight", "fc.weight", "fc.bias"} | {f"{p}.{s}" for p in ("bn1", "bn2", "features")
                                                                     for s in bn}
    for stage, n in enumerate(layers, 1):
        for b in range(n):
            p = f"layer{stage}.{b}"
            keys |= {f"{p}.conv1.weight", f"{p}.conv2.weight", f"{p}.prelu.weight"}
            keys |= {f"{p}.{q}.{s}" for q in ("bn1", "bn2", "bn3") for s in bn}
            if b == 0:
                keys |= {f"{p}.downsample.0.weight"} | {f"{p}.downsample.1.{s}" for s in bn}
    return keys


def arcface_torch_forward(sd, layers, x: torch.Tensor) -> torch.Tensor:
    """IResNet forward written from arcface_torch's ``IResNet.forward`` / ``IBasicBlock.forward``, on a bare
    state dict, independently of idbench's module (catches e.g. a stride on the wrong convolution)."""
    def bn(t, p):
        return F.batch_norm(t, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"],
                            False, 0.0, 1e-5)

    x = F.prelu(bn(F.conv2d(x, sd["conv1.weight"], padding=1), "bn1"), sd["prelu.weight"])
    for stage, n in enumerate(layers, 1):
        for b in range(n):
            p = f"layer{stage}.{b}"
            y = F.conv2d(bn(x, f"{p}.bn1"), sd[f"{p}.conv1.weight"], padding=1)
            y = F.prelu(bn(y, f"{p}.bn2"), sd[f"{p}.prelu.weight"])
            y = bn(F.conv2d(y, sd[f"{p}.conv2.weight"], stride=2 if b == 0 else 1, padding=1), f"{p}.bn3")
            shortcut = bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=2), f"{p}.downsample.1") if b == 0 else x
            x = y + shortcut
    x = F.linear(torch.flatten(bn(x, "bn2"), 1), sd["fc.weight"], sd["fc.bias"])
    return bn(x, "features")


def random_state_dict(arch: str, seed: int) -> dict:
    """A random arcface_torch-layout state dict (sane scales), made without building a module."""
    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in build_iresnet(arch).state_dict().items()}
    sd = {}
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(1000)
        elif k.endswith("running_var") or (k.endswith(".weight") and len(shape) == 1 and "prelu" not in k):
            sd[k] = torch.rand(shape, generator=g) * 0.5 + 0.5  # BN scales and variances
        elif k.endswith("prelu.weight"):
            sd[k] = torch.rand(shape, generator=g) * 0.35 + 0.05
        elif len(shape) == 1:  # BN shifts and means, fc bias
            sd[k] = torch.randn(shape, generator=g) * 0.1
        else:
            sd[k] = torch.randn(shape, generator=g) * shape[1:].numel() ** -0.5
    return sd


@pytest.fixture(scope="module")
def r18(tmp_path_factory):
    """A random IResNet-18 backbone.pth, test faces, and the reference embeddings of those faces."""
    sd = random_state_dict("r18", 1)
    path = tmp_path_factory.mktemp("r18") / "backbone.pth"
    torch.save(sd, path)
    x = faces(2, 112)
    with torch.no_grad():
        ref = arcface_torch_forward(sd, IRESNET_LAYERS["r18"], (torch.from_numpy(x).permute(0, 3, 1, 2).float()
                                                                 - 127.5) / 127.5).numpy()
    assert np.abs(ref).max() > 1e-2 and np.isfinite(ref).all()
    return sd, path, x, ref


@pytest.fixture()
def empty_homes(tmp_path, monkeypatch):
    monkeypatch.setenv("IDBENCH_HOME", str(tmp_path / "idbench"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "deepface"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_registered_names_and_contracts():
    names = set(list_encoders())
    expected = {"arcface.r18", "arcface.r34", "arcface.r50", "arcface.r100", "arcface.r100_blendface_repo",
                "blendface.r100", "arcface.onnx", "arcface.onnx_glintr100", "facenet.vggface2", "facenet.casia"}
    assert expected <= names
    for n in ("arcface.r18", "arcface.r100", "blendface.r100", "arcface.r100_blendface_repo", "arcface.onnx"):
        s = get_spec(n)
        assert (s.input_size, s.alignment, s.colour, s.embedding_size, s.l2_normalised) == \
            ((112, 112), "arcface112", "RGB", 512, False)
        assert s.mean == (127.5,) * 3 and s.std == (127.5,) * 3 and s.licence and s.paper
    assert get_spec("arcface.r100").weights[0].filename == "ms1mv3_arcface_r100_fp16_backbone.pth"
    assert get_spec("blendface.r100").weights[0].filename == "blendface.pt"
    assert "CC BY-NC-SA 4.0" in get_spec("blendface.r100").licence
    fn = get_spec("facenet.casia")
    assert (fn.input_size, fn.alignment, fn.mean, fn.std, fn.l2_normalised) == \
        ((160, 160), "mtcnn160", (127.5,) * 3, (128.0,) * 3, True)
    assert get_spec("deepface.VGG-Face").embedding_size == 4096
    assert get_spec("deepface.DeepID").input_size == (55, 55)


def test_iresnet_state_dict_keys_match_arcface_torch():
    for arch in ("r18", "r34", "r50", "r100"):
        layers = IRESNET_LAYERS[arch]
        with torch.device("meta"):
            sd = build_iresnet(arch).state_dict()
        assert set(sd) == official_keys(layers), arch
        assert infer_iresnet_layers(sd) == layers
    with torch.device("meta"):
        sd = build_iresnet("r100").state_dict()
    assert len(sd) == 925 and tuple(sd["fc.weight"].shape) == (512, 512 * 7 * 7)
    assert tuple(sd["layer1.0.conv2.weight"].shape) == (64, 64, 3, 3)
    assert tuple(sd["layer2.0.downsample.0.weight"].shape) == (128, 64, 1, 1)


def test_arcface_r18_loads_backbone_pth_exactly(r18):
    sd, path, x, ref = r18
    enc = create_encoder("arcface.r18", weights=path)
    emb = enc.embed(x, normalise=False)
    np.testing.assert_allclose(emb, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(enc.embed(x[:1]), unit(ref[:1]), atol=1e-5)
    loaded = enc.module.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in sd.items())
    again = load_iresnet_checkpoint(build_iresnet("r18"), path)  # (module, path) form used by bench.train
    assert torch.equal(again.fc.weight, sd["fc.weight"])


def test_checkpoint_containers_ddp_prefix_and_fp16(r18, tmp_path):
    sd, _, x, ref = r18
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v.half() if v.is_floating_point() else v
                                          for k, v in sd.items() if not k.endswith("num_batches_tracked")}}
    path = tmp_path / "ddp_fp16.pth"
    torch.save(wrapped, path)
    enc = create_encoder("arcface.r18", weights=path)
    cos = (enc.embed(x) * unit(ref)).sum(1)
    assert cos.min() > 0.999
    t = torch.ones(2)
    for obj in ({"model": {"module.a": t}}, {"backbone": {"a": t}}, {"state_dict_backbone": {"a": t}, "opt": {}},
                {"a": t}):
        small = tmp_path / "small.pt"
        torch.save(obj, small)
        assert list(read_state_dict(small)) == ["a"]


def test_arcface_onnx_matches_torch(r18, tmp_path):
    _, path, x, ref = r18
    module = load_iresnet_checkpoint(path, "r18")
    onnx_path = tmp_path / "r18.onnx"
    torch.onnx.export(module, torch.randn(1, 3, 112, 112), str(onnx_path), opset_version=17, dynamo=False,
                      input_names=["input.1"], output_names=["fc1"],
                      dynamic_axes={"input.1": {0: "None"}, "fc1": {0: "None"}})
    enc = create_encoder("arcface.onnx", weights=onnx_path)
    assert enc.spec.backend == "onnx" and enc.spec.mean == (127.5,) * 3  # no Sub/Mul in front: normalise outside
    assert np.abs(enc.embed(x) - unit(ref)).max() < 1e-4


class _InGraphNormalised(nn.Module):
    """A small recogniser that normalises pixels itself, like insightface's MXNet conversions."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 8, stride=8)
        self.fc = nn.Linear(8 * 14 * 14, 512)

    def forward(self, x):
        x = (x - 127.5) * 0.0078125
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


def test_arcface_onnx_honours_in_graph_normalisation(tmp_path):
    torch.manual_seed(3)
    net = _InGraphNormalised().eval()
    onnx_path = tmp_path / "mx.onnx"
    torch.onnx.export(net, torch.randn(1, 3, 112, 112), str(onnx_path), opset_version=17, dynamo=False,
                      input_names=["data"], output_names=["fc1"], dynamic_axes={"data": {0: "n"}, "fc1": {0: "n"}})
    import onnx

    model = onnx.load(str(onnx_path))  # name the nodes as an MXNet conversion does: insightface tests names
    for node in model.graph.node:
        node.name = {"Sub": "_minusscalar0", "Mul": "_mulscalar0"}.get(node.op_type, node.name)
    onnx.save(model, str(onnx_path))
    enc = create_encoder("arcface.onnx_glintr100", weights=onnx_path)
    assert enc.spec.mean == (0.0,) * 3 and enc.spec.std == (1.0,) * 3
    x = faces(2, 112, seed=4)
    ref = reference(net, x, 0.0, 1.0)
    assert np.abs(enc.embed(x) - unit(ref)).max() < 1e-4


def test_truncated_and_foreign_files_fail_clearly(r18, tmp_path):
    _, path, _, _ = r18
    data = path.read_bytes()
    for frac in (0.3, 0.7):  # 0.3: below the size floor; 0.7: passes it, the loader must notice
        cut = tmp_path / f"cut{frac}.pth"
        cut.write_bytes(data[: int(len(data) * frac)])
        with pytest.raises(WeightsFormatError) as e:
            create_encoder("arcface.r18", weights=cut)
        assert "\n" not in str(e.value) and ("truncated" in str(e.value) or "corrupt" in str(e.value))
    html = tmp_path / "page.pth"
    html.write_bytes(b"<!DOCTYPE html><html>Google Drive - quota exceeded</html>")
    noise = tmp_path / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).bytes(200_000))
    for bad in (html, noise):
        with pytest.raises(WeightsFormatError, match="not a PyTorch checkpoint|truncated"):
            load_iresnet_checkpoint(bad, "r18")
    with pytest.raises(WeightsFormatError, match="ONNX|onnxruntime"):
        create_encoder("arcface.onnx", weights=path)  # a torch zip is not an ONNX model
    tiny = tmp_path / "tiny.onnx"
    torch.onnx.export(_InGraphNormalised().eval(), torch.randn(1, 3, 112, 112), str(tiny), opset_version=17,
                      dynamo=False)
    blob = tiny.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(blob[: int(len(blob) * 0.6)])
    with pytest.raises(WeightsFormatError):
        create_encoder("arcface.onnx", weights=cut)


def test_wrong_architecture_is_named(r18):
    _, path, _, _ = r18
    with pytest.raises(WeightsFormatError) as e:
        create_encoder("arcface.r34", weights=path)
    msg = str(e.value)
    assert "missing" in msg and "IResNet-18" in msg and "r34" in msg and "\n" not in msg
    assert load_iresnet_checkpoint(path).layers_per_stage == IRESNET_LAYERS["r18"]  # depth inferred


def test_missing_weights_name_the_places_looked_in(empty_homes):
    tmp = empty_homes
    cases = {
        "arcface.r50": [tmp / "idbench" / "weights" / "ms1mv3_arcface_r50_fp16_backbone.pth"],
        "facenet.vggface2": [tmp / "torch" / "checkpoints" / "20180402-114759-vggface2.pt"],
        "blendface.r100": [tmp / "idbench" / "weights" / "blendface.pt", Path("checkpoints") / "blendface.pt"],
        "arcface.onnx": [tmp / "home" / ".insightface" / "models" / "buffalo_l" / "w600k_r50.onnx"],
        "deepface.ArcFace": [tmp / "deepface" / ".deepface" / "weights" / "arcface_weights.h5"],
        "arcface.buffalo_s": [tmp / "home" / ".insightface" / "models" / "buffalo_s" / "w600k_mbf.onnx"],
        "sphereface.sphere20a": [tmp / "idbench" / "weights" / "sphere20a_20171020.pth"],
        "adaface.ir101": [tmp / "idbench" / "weights" / "adaface_ir101_webface12m.ckpt"],
        "curricularface.ir101": [tmp / "idbench" / "weights" / "CurricularFace_Backbone.pth"],
    }
    for name, places in cases.items():
        with pytest.raises(WeightsNotFoundError) as e:
            create_encoder(name)
        for p in places:
            assert str(p) in str(e.value), (name, str(e.value))
        assert "\n" not in str(e.value)


def test_facenet_checkpoint_from_torch_home(empty_homes):
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(5)
    net = InceptionResnetV1(pretrained=None, classify=True, num_classes=8631)  # as distributed: with logits
    randomise_(net, 6)
    ckpt = empty_homes / "torch" / "checkpoints" / "20180402-114759-vggface2.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save(net.state_dict(), ckpt)
    enc = create_encoder("facenet.vggface2")
    assert enc.weights_path == ckpt
    net.classify = False  # embedding mode: L2-normalised 512-d
    x = faces(1, 160, seed=7)
    ref = reference(net, x, 127.5, 128.0)
    assert np.abs(np.linalg.norm(ref, axis=1) - 1).max() < 1e-5
    np.testing.assert_allclose(enc.embed(x, normalise=False), ref, atol=1e-5)
    with pytest.raises(WeightsFormatError, match="facenet.vggface2"):
        create_encoder("facenet.casia", weights=ckpt)


def test_blendface_r100_from_checkpoints_folder(empty_homes):
    sd = random_state_dict("r100", 9)
    ckpt = empty_homes / "checkpoints" / "blendface.pt"  # where the BlendFace README puts it
    ckpt.parent.mkdir()
    torch.save(sd, ckpt)
    enc = create_encoder("blendface.r100")
    assert enc.weights_path.resolve() == ckpt.resolve()
    loaded = enc.module.state_dict()
    assert len(loaded) == len(sd) == 925 and all(torch.equal(loaded[k], v) for k, v in sd.items())
    emb = enc.embed(faces(1, 112, seed=10), normalise=False)  # one r100 forward (the r18 test checks the maths)
    assert emb.shape == (1, 512) and np.isfinite(emb).all() and np.abs(emb).max() > 1e-3


def test_deepface_entries_need_the_optional_extra(tmp_path):
    import importlib.util

    from idbench.encoders.deepface_models import letterbox

    if importlib.util.find_spec("deepface") is not None:
        pytest.skip("deepface is installed")
    fake = tmp_path / "arcface_weights.h5"
    fake.write_bytes(b"\0" * 600_000)
    with pytest.raises(IdbenchError) as e:
        create_encoder("deepface.ArcFace", weights=fake)
    assert "pip install idbench[deepface]" in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, ImportError)
    boxed = letterbox(np.full((55, 55, 3), 200, np.uint8), (55, 47))  # DeepID, as deepface's resize_image
    assert boxed.shape == (55, 47, 3) and boxed[:4].max() == 0 and boxed[-4:].max() == 0 and boxed[27].min() > 0


def _fake_deepface(monkeypatch, calls: list):
    """A stand-in for the deepface package: build_model asks weight_utils for its file, as deepface does."""
    import importlib.machinery
    import sys
    import types

    def module(name):
        m = types.ModuleType(name)
        m.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        monkeypatch.setitem(sys.modules, name, m)
        return m

    root, commons, modules = module("deepface"), module("deepface.commons"), module("deepface.modules")
    weight_utils, modeling = module("deepface.commons.weight_utils"), module("deepface.modules.modeling")
    root.commons, root.modules, commons.weight_utils, modules.modeling = commons, modules, weight_utils, modeling

    def download_weights_if_necessary(file_name, source_url, compress_type=None):
        raise AssertionError("deepface tried to download")

    class Model:
        def forward(self, img):  # deepface models take N x H x W x 3 BGR floats; return the first pixels
            calls.append(img.copy())
            return img.reshape(len(img), -1)[:, :160].tolist()

    def build_model(task, model_name):
        path = weight_utils.download_weights_if_necessary(file_name="deepid_keras_weights.h5", source_url="x")
        calls.append(Path(path).read_bytes())
        try:
            weight_utils.download_weights_if_necessary(file_name="not_here.h5", source_url="x")
        except WeightsNotFoundError:
            calls.append("blocked")
        return Model()

    weight_utils.download_weights_if_necessary = download_weights_if_necessary
    modeling.build_model = build_model
    return weight_utils


def test_deepface_loads_offline_through_deepface(tmp_path, monkeypatch):
    calls: list = []
    weight_utils = _fake_deepface(monkeypatch, calls)
    monkeypatch.delenv("DEEPFACE_HOME", raising=False)
    weights = tmp_path / "elsewhere" / "deepid_keras_weights.h5"
    weights.parent.mkdir()
    weights.write_bytes(b"h5" * 300_000)
    enc = create_encoder("deepface.DeepID", weights=weights)
    assert calls[0] == weights.read_bytes() and calls[1] == "blocked"
    assert "DEEPFACE_HOME" not in os.environ and weight_utils.download_weights_if_necessary.__name__ != "no_download"
    x = faces(2, 55, seed=11)
    emb = enc.embed(x, normalise=False)
    fed = calls[2]
    assert fed.shape == (2, 55, 47, 3) and fed.dtype == np.float32 and fed[:, :4].max() == 0  # letterboxed
    inner = fed[:, 4:51]
    import cv2

    expected = np.stack([cv2.resize(f, (47, 47)) for f in x])[..., ::-1] / 255.0  # BGR, 0..1
    np.testing.assert_allclose(inner, expected, atol=1e-6)
    np.testing.assert_allclose(emb, fed.reshape(2, -1)[:, :160], atol=0)


# --- the face-swap literature's evaluators: SphereFace, AdaFace, CurricularFace, buffalo_s ------------------------


def random_like(module: nn.Module, seed: int, extra: dict = ()) -> dict:
    """Random tensors with ``module``'s state-dict shapes (sane scales), plus ``extra`` {name: shape}."""
    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in module.state_dict().items()}
    shapes.update({k: torch.Size(v) for k, v in dict(extra).items()})
    sd = {}
    for k, shape in shapes.items():
        leaf = k.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            sd[k] = torch.tensor(1000)
        elif leaf == "running_var" or (leaf == "weight" and len(shape) == 1 and not k.startswith(("relu", "prelu"))
                                       and "prelu" not in k):
            sd[k] = torch.rand(shape, generator=g) * 0.5 + 0.5
        elif len(shape) == 1 and leaf == "weight":  # PReLU slopes
            sd[k] = torch.rand(shape, generator=g) * 0.35 + 0.05
        elif len(shape) == 1:
            sd[k] = torch.randn(shape, generator=g) * 0.1
        else:
            sd[k] = torch.randn(shape, generator=g) * shape[1:].numel() ** -0.5
    return sd


def _bn(sd, t, p):
    return F.batch_norm(t, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd.get(f"{p}.weight"), sd.get(f"{p}.bias"),
                        False, 0.0, 1e-5)


def sphere20a_forward(sd, x):
    """``net_sphere.sphere20a.forward`` (feature=True) written out on a bare state dict."""
    def u(n, t, stride=1):
        return F.prelu(F.conv2d(t, sd[f"conv{n}.weight"], sd[f"conv{n}.bias"], stride, 1), sd[f"relu{n}.weight"])

    x = u("1_1", x, 2)
    x = x + u("1_3", u("1_2", x))
    x = u("2_1", x, 2)
    x = x + u("2_3", u("2_2", x))
    x = x + u("2_5", u("2_4", x))
    x = u("3_1", x, 2)
    for a, b in (("3_2", "3_3"), ("3_4", "3_5"), ("3_6", "3_7"), ("3_8", "3_9")):
        x = x + u(b, u(a, x))
    x = u("4_1", x, 2)
    x = x + u("4_3", u("4_2", x))
    return F.linear(x.flatten(1), sd["fc5.weight"], sd["fc5.bias"])


def ir_forward(sd, units, x, mid_bn: bool):
    """face.evoLVe's IR ``Backbone.forward`` on a bare state dict: AdaFace's ``BasicBlockIR`` (``mid_bn``) or
    CurricularFace's ``bottleneck_IR``; the shortcut is ``MaxPool2d(1, stride)`` where no conv is saved."""
    x = F.prelu(_bn(sd, F.conv2d(x, sd["input_layer.0.weight"], padding=1), "input_layer.1"), sd["input_layer.2.weight"])
    i = 0
    for n in units:
        for j in range(n):
            p, stride = f"body.{i}", 2 if j == 0 else 1
            if f"{p}.shortcut_layer.0.weight" in sd:
                sc = _bn(sd, F.conv2d(x, sd[f"{p}.shortcut_layer.0.weight"], stride=stride), f"{p}.shortcut_layer.1")
            else:
                sc = x[:, :, ::stride, ::stride]
            r = f"{p}.res_layer"
            y = F.conv2d(_bn(sd, x, f"{r}.0"), sd[f"{r}.1.weight"], padding=1)
            k = 2
            if mid_bn:
                y, k = _bn(sd, y, f"{r}.2"), 3
            y = F.conv2d(F.prelu(y, sd[f"{r}.{k}.weight"]), sd[f"{r}.{k + 1}.weight"], stride=stride, padding=1)
            x = _bn(sd, y, f"{r}.{k + 2}") + sc
            i += 1
    x = F.linear(_bn(sd, x, "output_layer.0").flatten(1), sd["output_layer.3.weight"], sd["output_layer.3.bias"])
    return _bn(sd, x, "output_layer.4")  # BatchNorm1d(affine=False): no weight/bias saved


def test_sphere20a_loads_the_released_state_dict(tmp_path):
    from idbench.encoders.sphereface import Sphere20a

    sd = random_like(Sphere20a(), 11, {"fc6.weight": (512, 10574)})  # AngleLinear classifier, as released
    path = tmp_path / "sphere20a_20171020.pth"
    torch.save(sd, path)
    enc = create_encoder("sphereface.sphere20a", weights=path)
    assert enc.spec.input_size == (112, 96) and enc.spec.colour == "BGR"
    x = faces(2, 112)  # the 112 x 112 ArcFace crop: its centre 96 columns are SphereFace's template
    bgr = torch.from_numpy(np.ascontiguousarray(x[:, :, 8:104, ::-1])).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        ref = sphere20a_forward(sd, (bgr - 127.5) / 128.0).numpy()
    assert np.abs(ref).max() > 1e-2
    assert np.abs(enc.embed(x) - unit(ref)).max() < 1e-4
    bad = tmp_path / "no_fc5.pth"
    torch.save({k: v for k, v in sd.items() if k != "fc5.weight"}, bad)
    with pytest.raises(WeightsFormatError, match="not a SphereFace sphere20a checkpoint.*missing 'fc5.weight'"):
        create_encoder("sphereface.sphere20a", weights=bad)


def test_adaface_ir50_loads_a_lightning_ckpt(tmp_path):
    from idbench.encoders.irse import IR_UNITS, IRBackbone

    sd = random_like(IRBackbone(50, mid_bn=True), 12)
    assert "body.0.res_layer.2.running_mean" in sd and "output_layer.4.weight" not in sd  # AdaFace's layout
    ckpt = {"state_dict": {**{f"model.{k}": v for k, v in sd.items()}, "head.kernel": torch.randn(512, 16)},
            "epoch": 25, "global_step": 1000, "pytorch-lightning_version": "1.8.6"}
    path = tmp_path / "adaface_ir50_ms1mv2.ckpt"
    torch.save(ckpt, path)
    enc = create_encoder("adaface.ir50", weights=path)
    x = faces(2, 112)
    bgr = torch.from_numpy(np.ascontiguousarray(x[..., ::-1])).permute(0, 3, 1, 2).float()
    with torch.no_grad():  # inference.py's to_input: ((bgr / 255) - 0.5) / 0.5
        ref = ir_forward(sd, IR_UNITS[50], (bgr / 255.0 - 0.5) / 0.5, mid_bn=True).numpy()
    assert np.abs(ref).max() > 1e-2
    assert np.abs(enc.embed(x) - unit(ref)).max() < 1e-4
    with pytest.raises(WeightsFormatError, match="not an AdaFace IR-101 checkpoint"):  # an IR-50 file
        create_encoder("adaface.ir101", weights=path)


def test_curricularface_ir101_loads_the_backbone_pth(tmp_path):
    from idbench.encoders.irse import IR_UNITS, IRBackbone

    sd = random_like(IRBackbone(100, mid_bn=False), 13)
    assert "body.0.res_layer.4.running_mean" in sd and "body.0.res_layer.5.weight" not in sd
    path = tmp_path / "CurricularFace_Backbone.pth"
    torch.save(sd, path)
    enc = create_encoder("curricularface.ir101", weights=path)
    x = faces(2, 112)
    rgb = torch.from_numpy(x).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        ref = ir_forward(sd, IR_UNITS[100], (rgb - 127.5) / 127.5, mid_bn=False).numpy()
    assert np.abs(ref).max() > 1e-2
    assert np.abs(enc.embed(x) - unit(ref)).max() < 1e-4


def test_buffalo_s_mobilefacenet_onnx(tmp_path):
    net = _InGraphNormalised().eval()  # torch-exported node names ('/Sub'): insightface's test does not fire
    path = tmp_path / "w600k_mbf.onnx"
    torch.onnx.export(net, torch.randn(1, 3, 112, 112), str(path), opset_version=17, dynamo=False,
                      input_names=["input.1"], output_names=["fc1"],
                      dynamic_axes={"input.1": {0: "n"}, "fc1": {0: "n"}})
    enc = create_encoder("arcface.buffalo_s", weights=path)
    assert enc.spec.mean == (127.5,) * 3 and enc.spec.std == (127.5,) * 3
    x = faces(2, 112, seed=5)
    ref = reference(net, x, 127.5, 127.5)
    assert np.abs(enc.embed(x) - unit(ref)).max() < 1e-4
