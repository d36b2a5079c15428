"""Fine-tuning any encoder: ``bench train --arch CONTRACT.toml | FILE.onnx | TorchScript contract``, the exported
``RUN/encoder.toml`` (ONNX + contract) benchmarked by ``bench run``, freeze options, the experiment's ``--encoder``.

Tiny sizes on CPU: the synthetic prepared folder of ``test_train`` (4 identities x 6 random 112 crops) and a small
random TF-style graph (NHWC, BGR, a MatMul weight held as a constant, a BatchNormalization, two outputs).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx2torch")

from torch import nn  # noqa: E402

from idbench.bench.prepare import load_prepared  # noqa: E402
from idbench.bench.train import Preprocessed, TrainConfig, build_arch, freeze_layers, train  # noqa: E402
from idbench.encoders import create_encoder  # noqa: E402
from idbench.encoders.frozen_bn import FrozenBatchNorm  # noqa: E402
from test_train import _write_prepared  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO.parent / "shared" / "models"
FACES = REPO.parent / "shared" / "data" / "faces"


class TfStyle(nn.Module):
    """NHWC input; conv -> relu -> batch norm (not folded into the conv) -> x @ W (W a graph constant) + aux head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 8, 8, stride=8)
        self.bn = nn.BatchNorm2d(8)
        self.w = nn.Parameter(torch.randn(8 * 14 * 14, 32) * 0.02)
        self.aux = nn.Linear(32, 2)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        e = torch.flatten(self.bn(torch.relu(self.conv(x.permute(0, 3, 1, 2)))), 1) @ self.w
        return e, torch.sigmoid(self.aux(e))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _write_prepared(tmp_path_factory.mktemp("prepared"))


@pytest.fixture(scope="module")
def tf_contract(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tf")
    torch.onnx.export(TfStyle().eval(), torch.zeros(1, 112, 112, 3), str(d / "tf.onnx"), opset_version=17,
                      dynamo=False, input_names=["input_1:0"], output_names=["emb:0", "gender:0"],
                      dynamic_axes={"input_1:0": {0: "n"}, "emb:0": {0: "n"}, "gender:0": {0: "n"}})
    (d / "tf.toml").write_text(textwrap.dedent('''\
        name = "tfstyle"
        weights = "tf.onnx"
        input_size = [112, 112]
        layout = "NHWC"
        colour = "BGR"
        mean = [127.5, 120.0, 110.0]
        std = [128.0, 64.0, 100.0]
        alignment = "arcface112"
        output = "emb:0"
        embedding_size = 32
        '''))
    return d / "tf.toml"


def _initializers(onnx_path: Path) -> dict:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    return model, {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def _torch_embeddings(arch_name: str, backbone: Path, faces: np.ndarray) -> np.ndarray:
    """The trained weights rebuilt as a torch module (the training graph: preprocessing inside), L2-normalised."""
    arch = build_arch(arch_name, init=str(backbone))
    net = Preprocessed(arch.module, arch.spec).eval()
    with torch.no_grad():
        out = net(torch.from_numpy(faces).permute(0, 3, 1, 2).float())
    return torch.nn.functional.normalize(out, dim=1).numpy()


def _bench(args):
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _train_args(data, out, arch, *extra):
    return ["train", "--data", data, "--out", out, "--arch", arch, "--batch-size", 8, "--steps", 3, "--lr", 0.05,
            "--k-partners", 5, "--workers", 0, "--device", "cpu", "--head-init", "centroids", "--no-progress",
            "--save-every", 100, *extra]


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_bench_train_contract_exports_encoder_toml(data, tf_contract, tmp_path, p):
    """The CLI on a contract: the exported encoder.toml (ONNX via onnxruntime) gives the trained torch module's
    embeddings; the constant-held weight trained, the batch-norm statistics stayed the ONNX file's."""
    out = tmp_path / "run"
    r = _bench(_train_args(data, out, tf_contract, "--blend-prob", p))
    assert r.exit_code == 0, r.output
    assert f"encoder -> {out / 'encoder.toml'}" in r.output
    enc = create_encoder(out / "encoder.toml")
    assert enc.spec.name == "tfstyle.run" and enc.spec.colour == "BGR" and enc.spec.layout == "NCHW"
    assert enc.spec.mean == (127.5, 120.0, 110.0) and enc.spec.std == (128.0, 64.0, 100.0)
    faces = load_prepared(data, "arcface112").images(range(6))
    got = enc.embed(faces)
    np.testing.assert_allclose(got, _torch_embeddings(str(tf_contract), out / "backbone.pth", faces), atol=1e-4)
    assert np.abs(got - create_encoder(tf_contract).embed(faces)).max() > 1e-4  # training moved the weights

    model, inits = _initializers(tf_contract.parent / "tf.onnx")
    state = torch.load(out / "backbone.pth", weights_only=True)
    matmul_w = inits[next(n for n in model.graph.node if n.op_type == "MatMul").input[1]]
    trained = [v.numpy() for v in state.values() if tuple(v.shape) == matmul_w.shape]
    assert len(trained) == 1 and np.abs(trained[0] - matmul_w).max() > 0
    bn = next(n for n in model.graph.node if n.op_type == "BatchNormalization")
    for key, onnx_name in (("running_mean", bn.input[3]), ("running_var", bn.input[4])):
        (value,) = [v.numpy() for k, v in state.items() if k.endswith(key)]
        np.testing.assert_array_equal(value, inits[onnx_name])


def test_bare_onnx_path_trains_like_arcface_onnx(data, tmp_path):
    """``--arch FILE.onnx``: insightface's convention (NCHW 112, RGB, (x - 127.5) / 127.5 without in-graph scaling)."""
    class Nchw(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(4)
            self.conv, self.fc = nn.Conv2d(3, 4, 8, stride=8), nn.Linear(4 * 14 * 14, 512)

        def forward(self, x):
            return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))

    path = tmp_path / "w600k_tiny.onnx"
    torch.onnx.export(Nchw().eval(), torch.zeros(1, 3, 112, 112), str(path), opset_version=17, dynamo=False,
                      input_names=["input.1"], output_names=["fc1"],
                      dynamic_axes={"input.1": {0: "n"}, "fc1": {0: "n"}})
    res = train(TrainConfig(data=str(data), out=str(tmp_path / "r"), arch=str(path), batch_size=8, steps=2, lr=0.05,
                            k_partners=5, workers=0, progress=False, device="cpu", blend_prob=0.5))
    enc = create_encoder(res["encoder"])
    assert enc.spec.name == "w600k_tiny.r" and enc.spec.mean == (127.5,) * 3 and enc.spec.std == (127.5,) * 3
    faces = load_prepared(data, "arcface112").images(range(4))
    np.testing.assert_allclose(enc.embed(faces), _torch_embeddings(str(path), Path(res["backbone"]), faces),
                               atol=1e-4)


def test_torchscript_contract_trains_and_exports(data, tmp_path, monkeypatch):
    monkeypatch.setenv("IDBENCH_ALLOW_PICKLE", "1")  # a TorchScript file is code: trusted, made here
    scripted = torch.jit.trace(TfStyle().eval(), torch.zeros(1, 112, 112, 3))
    scripted.save(str(tmp_path / "tf.pt"))
    (tmp_path / "ts.toml").write_text('name = "ts"\nweights = "tf.pt"\ninput_size = [112, 112]\nlayout = "NHWC"\n'
                                      'colour = "RGB"\nmean = 127.5\nstd = 127.5\nalignment = "arcface112"\n'
                                      'output = "0"\n')
    res = train(TrainConfig(data=str(data), out=str(tmp_path / "r"), arch=str(tmp_path / "ts.toml"), batch_size=8,
                            steps=2, lr=0.05, k_partners=5, workers=0, progress=False, device="cpu"))
    faces = load_prepared(data, "arcface112").images(range(4))
    with torch.no_grad():
        ref = torch.nn.functional.normalize(res["net"](torch.from_numpy(faces).permute(0, 3, 1, 2).float()))
    np.testing.assert_allclose(create_encoder(res["encoder"]).embed(faces), ref.numpy(), atol=1e-4)


def test_freeze_rules_by_hand():
    """sizes in use order: 0.weight 100, 0.bias 10, 1.weight 10, 1.bias 10, 2.weight 50, 2.bias 5 (185)."""
    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(10, 10), nn.BatchNorm1d(10), nn.Linear(10, 5))

    m = net()
    s = freeze_layers(m, trainable_fraction=0.3)  # >= 55.5 of 185 from the end: 2.bias, 2.weight, 1.bias (65)
    assert [n for n, p in m.named_parameters() if p.requires_grad] == ["1.bias", "2.weight", "2.bias"]
    assert s["trainable"] == 65 and s["parameters"] == 185 and s["first_trainable"] == "1"
    assert isinstance(m[1], nn.BatchNorm1d)  # its bias trains: statistics not frozen
    m = net()
    freeze_layers(m, freeze_until="2")
    assert [n for n, p in m.named_parameters() if p.requires_grad] == ["2.weight", "2.bias"]
    assert isinstance(m[1], FrozenBatchNorm)  # a frozen layer computes what it did: statistics frozen too
    stats = m[1].running_mean.clone()
    m.train()(torch.randn(16, 10) * 3 + 1)
    assert torch.equal(m[1].running_mean, stats)
    m = net()
    freeze_layers(m, freeze_until="1", trainable_fraction=0.3)  # both: the stricter wins
    assert [n for n, p in m.named_parameters() if p.requires_grad] == ["1.bias", "2.weight", "2.bias"]


def test_freeze_until_in_a_converted_graph(data, tf_contract, tmp_path):
    """Layers of a converted graph are its nodes; a weight held as a constant belongs to the node reading it."""
    from idbench.bench.train import ordered_parameters

    layers = [layer for layer, _, _ in ordered_parameters(build_arch(str(tf_contract)).module)]
    matmul = next(layer for layer in layers if "matmul" in layer.lower())
    out = tmp_path / "run"
    r = _bench(_train_args(data, out, tf_contract, "--blend-prob", 0.5, "--freeze-until", matmul))
    assert r.exit_code == 0, r.output
    before = build_arch(str(tf_contract)).module.state_dict()
    after = torch.load(out / "backbone.pth", weights_only=True)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("conv" not in k.lower() and "batchnorm" not in k.lower() for k in changed)
    r = _bench(_train_args(data, tmp_path / "bad", tf_contract, "--freeze-until", matmul[:-1] + "x"))
    assert r.exit_code == 2 and "is no layer of this network" in r.output and "Did you mean" in r.output


def test_failed_export_is_one_line(tmp_path):
    from idbench.bench.train import export_encoder
    from idbench.encoders.spec import EncoderSpec
    from idbench.errors import IdbenchError

    spec = EncoderSpec(name="pool", input_size=(112, 112), alignment="arcface112", colour="RGB", mean=(0.0,) * 3,
                       std=(1.0,) * 3, embedding_size=48, l2_normalised=False, backend="torch")
    net = nn.Sequential(nn.Conv2d(3, 3, 8, stride=8), nn.AdaptiveAvgPool2d(4), nn.Flatten())  # 14 -> 4: no ONNX op
    with pytest.raises(IdbenchError, match="cannot export pool to ONNX .*backbone.pth is saved"):
        export_encoder(tmp_path, net, spec, "pool", "test")
    assert not (tmp_path / "encoder.toml").exists()


# --- the real ONNX encoder: CLI fine-tune, then bench run on its encoder.toml ------------------------------------


def test_mobileface_finetune_benchmarked_by_bench_run(data, tmp_path):
    if not (MODELS / "mobileface.onnx").is_file() or not FACES.is_dir():
        pytest.skip("../shared/models or ../shared/data/faces is not available")
    from idbench.bench.run import RunConfig, run

    contract = REPO / "encoders" / "contracts" / "mobileface.toml"
    r = _bench(_train_args(data, tmp_path / "mf", contract, "--blend-prob", 0.5, "--lr", 0.01))
    assert r.exit_code == 0, r.output
    root = tmp_path / "faces"
    for ident in ("abdullah_gul", "ariel_sharon", "colin_powell"):
        (root / ident).mkdir(parents=True)
        for name in ("01.jpg", "02.jpg", "03.jpg"):
            (root / ident / name).symlink_to(FACES / ident / name)
    res = run(RunConfig(dataset="folder", root=str(root), encoders=[str(tmp_path / "mf" / "encoder.toml")],
                        out=str(tmp_path / "bench"), progress=False, saliency_faces=0, n_boot=50))
    r = res["encoders"]["mobileface.mf"]
    assert r["bias"]["positive_mean"] > r["bias"]["negative_mean"] and 0 <= r["verification"]["auc"] <= 1


def test_experiment_takes_any_encoder(tmp_path):
    """``blendface_experiment --encoder CONTRACT``: prepare, both fine-tunes, the three-row table (tiny schedule)."""
    if not (MODELS / "mobileface.onnx").is_file() or not FACES.is_dir():
        pytest.skip("../shared/models or ../shared/data/faces is not available")
    from idbench.bench import blendface_experiment as bx

    faces = tmp_path / "faces"
    for ident in sorted(p.name for p in FACES.iterdir() if p.is_dir())[:5]:
        (faces / ident).mkdir(parents=True)
        for img in sorted((FACES / ident).glob("*.jpg"))[:4]:
            (faces / ident / img.name).symlink_to(img)
    work = tmp_path / "work"
    contract = REPO / "encoders" / "contracts" / "mobileface.toml"
    results = bx.main(["--encoder", str(contract), "--faces", str(faces), "--work", str(work), "--heldout", "0.4",
                       "--steps", "2", "--batch-size", "8", "--k-partners", "5", "--n-boot", "50", "--no-progress"])
    titles = [t for t in results if not t.startswith("_")]
    assert titles == ["mobileface", "mobileface + ArcFace fine-tune (p=0)", "mobileface + BlendFace fine-tune (p=0.5)"]
    assert results[titles[1]]["encoder"] == str(work / "arcface" / "encoder.toml")
    md = (work / "results.md").read_text()
    assert bx.TABLE_HEADER in md and all(f"| {t} |" in md for t in titles)
    assert results["_eval"]["identities"] == 2 and all("bias" in results[t] for t in titles)
