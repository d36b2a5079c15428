"""ONNX -> trainable torch module (onnx2torch): parity with onnxruntime on the two real third-party encoders,
weights held as constants are trained, batch-norm statistics stay frozen, single output, NHWC layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import hog_faces
import torch
from torch import nn

from idbench.encoders.frozen_bn import FrozenBatchNorm
from idbench.encoders.onnx_torch import onnx_to_torch

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO.parent / "shared" / "models"
FACES = REPO.parent / "shared" / "data" / "faces"

torch.set_num_threads(2)

# the models' own README (../shared/models/README.md): raw 0..255 pixels, NHWC, RGB for mobileface, BGR for faceres
REAL = [("mobileface", "batchnorm0/add_1:0", 112, False), ("faceres", "global_pooling/Mean:0", 224, True)]


@pytest.fixture(scope="module")
def real_faces():
    """Four photos of ../shared/data/faces with their dlib-HOG face."""
    if not (MODELS / "mobileface.onnx").is_file() or not FACES.is_dir():
        pytest.skip("../shared/models or ../shared/data/faces is not available")
    return hog_faces(sorted(FACES.glob("*/01.jpg")))


def _onnxruntime(path: Path, output: str, blob: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run([output], {sess.get_inputs()[0].name: np.ascontiguousarray(blob, np.float32)})[0]


def _float_initializer_elements(path: Path, output: str) -> int:
    """Elements of the floating-point initializers with more than one element that ``output`` depends on."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    producers = {o: n for n in model.graph.node for o in n.output}
    needed, todo = set(), [output]
    while todo:  # walk back from the output: the heads it does not use hold weights the module must not have
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        if name in producers:
            todo += list(producers[name].input)
    arrays = [numpy_helper.to_array(i) for i in model.graph.initializer if i.name in needed]
    return sum(a.size for a in arrays if a.dtype.kind == "f" and a.size > 1)


@pytest.mark.parametrize("name, output, size, bgr", REAL)
def test_converted_real_model_reproduces_onnxruntime(real_faces, name, output, size, bgr):
    """Aligned real crops through the training graph (colour order, scaling, layout inside) == onnxruntime."""
    from idbench.align import align_face
    from idbench.bench.training import Preprocessed
    from idbench.encoders import create_encoder

    path = MODELS / f"{name}.onnx"
    crops = np.stack([align_face(img, f, "arcface112", size) for img, f in real_faces])
    direct = _onnxruntime(path, output, crops[..., ::-1] if bgr else crops)
    spec = create_encoder(REPO / "encoders" / "contracts" / f"{name}.toml").spec
    module = onnx_to_torch(path, "NHWC", output)
    net = Preprocessed(module, spec).train()  # frozen statistics: train mode computes what eval mode does
    with torch.no_grad():
        ours = net(torch.from_numpy(crops).permute(0, 3, 1, 2).float()).numpy()
    assert ours.shape == direct.shape
    assert np.abs(ours - direct).max() < 1e-4, np.abs(ours - direct).max()


@pytest.mark.parametrize("name, output, size, bgr", REAL)
def test_converted_real_model_trains_every_weight(name, output, size, bgr):
    """Every weight of the graph up to the chosen output is a parameter, receives a gradient, and one SGD step
    changes the embedding; the other heads (faceres' age, gender) are gone."""
    path = MODELS / f"{name}.onnx"
    if not path.is_file():
        pytest.skip("../shared/models is not available")
    module = onnx_to_torch(path, "NHWC", output).train()
    params = list(module.parameters())
    assert sum(p.numel() for p in params) == _float_initializer_elements(path, output)
    x = torch.rand(2, 3, size, size) * 255
    before = module(x)
    (before ** 2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    torch.optim.SGD(params, lr=1e-6).step()
    with torch.no_grad():
        assert (module(x) - before).abs().max() > 0


class _BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, stride=4)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 8 * 8, 16)

    def forward(self, x):
        return self.fc(torch.flatten(self.bn(torch.relu(self.conv(x))), 1))  # relu between: no conv-bn folding


def test_batch_norm_statistics_frozen_and_nhwc(tmp_path):
    """A graph with a real BatchNormalization node: the converted module keeps the running statistics in train
    mode (outputs equal onnxruntime's, statistics unchanged by a step) while its scale and shift train."""
    import onnx

    net = _BNNet()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)

    class Nhwc(nn.Module):  # a TF-style export: NHWC input
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x.permute(0, 3, 1, 2))

    path = tmp_path / "bn.onnx"
    torch.onnx.export(Nhwc().eval(), torch.zeros(1, 32, 32, 3), str(path), opset_version=17, dynamo=False,
                      input_names=["data"], output_names=["emb"], dynamic_axes={"data": {0: "n"}, "emb": {0: "n"}})
    assert "BatchNormalization" in {n.op_type for n in onnx.load(str(path)).graph.node}
    module = onnx_to_torch(path, "NHWC", "emb").train()
    bns = [m for m in module.modules() if isinstance(m, FrozenBatchNorm)]
    assert len(bns) == 1 and not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
    x = np.random.default_rng(0).uniform(0, 1, (5, 32, 32, 3)).astype(np.float32)
    out = module(torch.from_numpy(x).permute(0, 3, 1, 2))
    assert np.abs(out.detach().numpy() - _onnxruntime(path, "emb", x)).max() < 1e-5
    stats = (bns[0].running_mean.clone(), bns[0].running_var.clone())
    out.pow(2).sum().backward()
    assert bns[0].weight.grad.abs().sum() > 0 and bns[0].bias.grad.abs().sum() > 0
    torch.optim.SGD(module.parameters(), lr=0.1).step()
    assert torch.equal(bns[0].running_mean, stats[0]) and torch.equal(bns[0].running_var, stats[1])


def test_unknown_output_is_one_line(tmp_path):
    from idbench.errors import WeightsFormatError

    path = tmp_path / "bn.onnx"
    torch.onnx.export(_BNNet().eval(), torch.zeros(1, 3, 32, 32), str(path), opset_version=17, dynamo=False,
                      input_names=["data"], output_names=["emb"])
    with pytest.raises(WeightsFormatError, match="has no output 'feat'.*outputs: emb"):
        onnx_to_torch(path, "NCHW", "feat")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(WeightsFormatError, match="not a readable ONNX model"):
        onnx_to_torch(tmp_path / "junk.onnx")
