"""Encoder contract files: parsing and every error, graph checks, layouts, outputs, plugins, real models."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import hog_faces
import torch
from torch import nn

from idbench.encoders import create_encoder, list_encoders
from idbench.encoders.contract import REQUIRED, read_contract
from idbench.errors import ContractError, IdbenchError, WeightsNotFoundError

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = REPO / "encoders" / "contracts"
MODELS = REPO.parent / "shared" / "models"
LFW = REPO.parent / "shared" / "data" / "lfw" / "lfw-deepfunneled"

torch.set_num_threads(2)


class TinyNet(nn.Module):
    """A small random recogniser on NCHW input; ``nhwc`` makes it take NHWC (a TF-style export)."""

    def __init__(self, size=(112, 112), dim=64, nhwc=False, extra_output=False):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 8, stride=8)
        self.fc = nn.Linear(8 * (size[0] // 8) * (size[1] // 8), dim)
        self.aux = nn.Linear(dim, 3)
        self.nhwc, self.extra_output = nhwc, extra_output

    def forward(self, x):
        if self.nhwc:
            x = x.permute(0, 3, 1, 2)
        e = self.fc(torch.flatten(torch.relu(self.conv(x)), 1))
        return (self.aux(e), e) if self.extra_output else e


def export(net, path: Path, shape, outputs=("emb",), dynamic_width=False, fixed_batch=False) -> Path:
    axes = {} if fixed_batch else {"data": {0: "n"}, **{o: {0: "n"} for o in outputs}}
    if dynamic_width:
        axes[outputs[0]] = {0: "n", 1: "d"}
    torch.onnx.export(net.eval(), torch.zeros(*shape), str(path), opset_version=17, dynamo=False,
                      input_names=["data"], output_names=list(outputs), dynamic_axes=axes or None)
    return path


def write_contract(tmp_path: Path, model: Path, file: str = "c.toml", **keys) -> Path:
    base = dict(name="tiny", weights=str(model), input_size=[112, 112], colour="RGB", mean=[127.5] * 3,
                std=[127.5] * 3, alignment="arcface112")
    base.update(keys)
    lines = []
    for k, v in base.items():
        if v is None:
            continue
        if isinstance(v, str):
            lines.append(f'{k} = "{v}"')
        elif isinstance(v, bool):
            lines.append(f"{k} = {'true' if v else 'false'}")
        else:
            lines.append(f"{k} = {v!r}".replace("'", '"'))
    p = tmp_path / file
    p.write_text("\n".join(lines) + "\n")
    return p


def faces(n=3, h=112, w=112, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def torch_reference(net, x_nhwc_float: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x_nhwc_float)).permute(0, 3, 1, 2)).numpy()


@pytest.fixture(scope="module")
def nchw_onnx(tmp_path_factory):
    d = tmp_path_factory.mktemp("nchw")
    return export(TinyNet(), d / "nchw.onnx", (1, 3, 112, 112))


# --- parsing ---------------------------------------------------------------------------------------------


def test_shipped_contracts_parse():
    m = read_contract(CONTRACTS / "mobileface.toml")
    assert (m.name, m.layout, m.colour, m.input_size, m.embedding_size) == ("mobileface", "NHWC", "RGB", (112, 112),
                                                                           256)
    assert m.mean == (0.0,) * 3 and m.std == (1.0,) * 3 and m.backend == "onnx"
    assert m.weights == (REPO.parent / "shared" / "models" / "mobileface.onnx").resolve()  # relative to the TOML
    f = read_contract(CONTRACTS / "faceres.toml")
    assert (f.colour, f.input_size, f.output, f.embedding_size) == ("BGR", (224, 224), "global_pooling/Mean:0", 1024)


@pytest.mark.parametrize("key", REQUIRED)
def test_missing_key_is_named(tmp_path, nchw_onnx, key):
    p = write_contract(tmp_path, nchw_onnx, **{key: None})
    with pytest.raises(ContractError) as e:
        create_encoder(p)
    assert f"missing required key {key}" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("keys, message", [
    (dict(alignment="arcface120"), "alignment must be one of arcface112, dlib150"),
    (dict(colour="HSV"), "colour must be one of RGB, BGR, got 'HSV'"),
    (dict(layout="CHWN"), "layout must be one of NCHW, NHWC"),
    (dict(input_size=[112]), "input_size must be [height, width]"),
    (dict(input_size=[100, 100]), "height 100 is neither"),
    (dict(input_size=[112, 120]), "width <= height"),
    (dict(alignment="dlib150", input_size=[150, 140]), "not square"),
    (dict(mean=[1, 2]), "mean must be a number or a list of 3 numbers"),
    (dict(std=0), "std must not contain 0"),
    (dict(embedding_size=-3), "embedding_size must be a positive integer"),
    (dict(backend="tensorflow"), "backend must be one of onnx, torchscript"),
    (dict(colur="RGB"), "unknown key colur"),
])
def test_bad_values_are_one_line_errors(tmp_path, nchw_onnx, keys, message):
    p = write_contract(tmp_path, nchw_onnx, **keys)
    with pytest.raises(ContractError) as e:
        create_encoder(p)
    assert message in str(e.value) and str(p) in str(e.value) and "\n" not in str(e.value)


def test_backend_from_suffix_and_unknown_suffix(tmp_path, nchw_onnx):
    assert read_contract(write_contract(tmp_path, nchw_onnx)).backend == "onnx"
    assert read_contract(write_contract(tmp_path, tmp_path / "m.pt")).backend == "torchscript"
    with pytest.raises(ContractError, match="cannot tell the backend"):
        read_contract(write_contract(tmp_path, tmp_path / "m.bin"))
    (tmp_path / "bad.toml").write_text("name = 'x\n")
    with pytest.raises(ContractError, match="not valid TOML"):
        read_contract(tmp_path / "bad.toml")


def test_missing_weights_and_sha256(tmp_path, nchw_onnx):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        create_encoder(write_contract(tmp_path, tmp_path / "absent.onnx"))
    with pytest.raises(IdbenchError, match="sha256"):
        create_encoder(write_contract(tmp_path, nchw_onnx, sha256="0" * 64))


# --- checks against the graph ------------------------------------------------------------------------------


def test_contradictions_with_the_graph_name_both_values(tmp_path, nchw_onnx):
    cases = [
        (dict(layout="NHWC"), ["layout NHWC", "is NCHW"]),
        (dict(input_size=[224, 224]), ["input_size [224, 224]", "height 112"]),
        (dict(embedding_size=128), ["embedding_size 128", "gives 64 values"]),
        (dict(output="fc1"), ["output 'fc1'", "emb"]),
    ]
    for keys, parts in cases:
        with pytest.raises(ContractError) as e:
            create_encoder(write_contract(tmp_path, nchw_onnx, **keys))
        assert all(p in str(e.value) for p in parts), (keys, str(e.value))
        assert "\n" not in str(e.value)


def test_nhwc_and_nchw_exports_give_the_same_embeddings(tmp_path, nchw_onnx):
    nhwc = export(TinyNet(nhwc=True), tmp_path / "nhwc.onnx", (1, 112, 112, 3))
    a = create_encoder(write_contract(tmp_path, nchw_onnx, "a.toml"))
    b = create_encoder(write_contract(tmp_path, nhwc, "b.toml"))
    assert (a.spec.layout, b.spec.layout) == ("NCHW", "NHWC")  # read from the graphs
    x = faces()
    ea, eb = a.embed(x, normalise=False), b.embed(x, normalise=False)
    ref = torch_reference(TinyNet(), (x.astype(np.float32) - 127.5) / 127.5)
    assert np.abs(ea - ref).max() < 1e-4 and np.abs(ea - eb).max() < 1e-5


def test_bgr_and_per_channel_normalisation(tmp_path, nchw_onnx):
    mean, std = [10.0, 120.0, 200.0], [50.0, 60.0, 70.0]
    enc = create_encoder(write_contract(tmp_path, nchw_onnx, colour="BGR", mean=mean, std=std))
    x = faces()
    bgr = x[..., ::-1].astype(np.float32)
    ref = torch_reference(TinyNet(), (bgr - np.array(mean, np.float32)) / np.array(std, np.float32))
    assert np.abs(enc.embed(x, normalise=False) - ref).max() < 1e-4


def test_multi_output_needs_and_honours_output(tmp_path):
    path = export(TinyNet(extra_output=True), tmp_path / "two.onnx", (1, 3, 112, 112), outputs=("aux", "emb"))
    with pytest.raises(ContractError, match=r"2 outputs \(aux, emb\); declare"):
        create_encoder(write_contract(tmp_path, path))
    emb = create_encoder(write_contract(tmp_path, path, "e.toml", output="emb"))
    aux = create_encoder(write_contract(tmp_path, path, "x.toml", output="aux", name="aux"))
    x = faces()
    with torch.no_grad():
        ref_aux, ref_emb = (t.numpy() for t in TinyNet(extra_output=True).eval()(
            (torch.from_numpy(x).permute(0, 3, 1, 2).float() - 127.5) / 127.5))
    assert emb.spec.embedding_size == 64 and aux.spec.embedding_size == 3
    assert np.abs(emb.embed(x, normalise=False) - ref_emb).max() < 1e-4
    assert np.abs(aux.embed(x, normalise=False) - ref_aux).max() < 1e-4


class FlatConv(nn.Module):
    """Flattened conv features: the output width depends on the (symbolic) input size."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 4, 8, stride=8)

    def forward(self, x):
        return torch.flatten(self.conv(x), 1)


def test_symbolic_width_is_declared_and_checked_at_run_time(tmp_path):
    path = tmp_path / "sym.onnx"
    torch.onnx.export(FlatConv().eval(), torch.zeros(1, 3, 112, 112), str(path), opset_version=17, dynamo=False,
                      input_names=["data"], output_names=["emb"],
                      dynamic_axes={"data": {0: "n", 2: "h", 3: "w"}, "emb": {0: "n", 1: "d"}})
    with pytest.raises(ContractError, match="symbolic width; declare embedding_size"):
        create_encoder(write_contract(tmp_path, path))
    enc = create_encoder(write_contract(tmp_path, path, embedding_size=4 * 14 * 14))
    x = faces()
    ref = torch_reference(FlatConv().eval(), (x.astype(np.float32) - 127.5) / 127.5)
    assert np.abs(enc.embed(x, normalise=False) - ref).max() < 1e-4
    wrong = create_encoder(write_contract(tmp_path, path, "w.toml", embedding_size=512))
    with pytest.raises(ContractError, match="gives 784 values per face, the contract says embedding_size 512"):
        wrong.embed(x)  # not "cannot reshape array of size ..."


def test_symbolic_spatial_dims_and_fixed_batch(tmp_path):
    net = TinyNet()
    sym = tmp_path / "hw.onnx"
    torch.onnx.export(net.eval(), torch.zeros(1, 3, 112, 112), str(sym), opset_version=17, dynamo=False,
                      input_names=["data"], output_names=["emb"],
                      dynamic_axes={"data": {0: "n", 2: "h", 3: "w"}, "emb": {0: "n"}})
    one = export(net, tmp_path / "one.onnx", (1, 3, 112, 112), fixed_batch=True)
    x = faces(5)
    ref = torch_reference(net, (x.astype(np.float32) - 127.5) / 127.5)
    for p, file in ((sym, "s.toml"), (one, "o.toml")):
        enc = create_encoder(write_contract(tmp_path, p, file))
        assert np.abs(enc.embed(x, normalise=False) - ref).max() < 1e-4


def test_float16_input_graph(tmp_path, nchw_onnx):
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(nchw_onnx))
    g = model.graph
    old = g.input[0].name
    for node in g.node:  # the network now reads 'data32', a Cast of the float16 input
        node.input[:] = ["data32" if i == old else i for i in node.input]
    g.node.insert(0, helper.make_node("Cast", [old], ["data32"], to=TensorProto.FLOAT))
    g.input[0].type.tensor_type.elem_type = TensorProto.FLOAT16
    f16 = tmp_path / "f16.onnx"
    onnx.save(model, str(f16))
    enc = create_encoder(write_contract(tmp_path, f16))
    assert enc.input_dtype == np.float16
    x = faces()
    ref = create_encoder(write_contract(tmp_path, nchw_onnx, "r.toml")).embed(x)
    assert np.abs(enc.embed(x) - ref).max() < 5e-3  # float16 rounding of the normalised pixels


def test_undeclared_ambiguous_layout(tmp_path):
    path = export(nn.Flatten(), tmp_path / "amb.onnx", (1, 3, 3, 3))  # 3 x 3 x 3: either axis could be colour
    with pytest.raises(ContractError, match="does not show its layout; declare layout"):
        create_encoder(write_contract(tmp_path, path, input_size=[3, 3], alignment="none"))
    enc = create_encoder(write_contract(tmp_path, path, "d.toml", input_size=[3, 3], alignment="none", layout="NHWC"))
    x = faces(2, 3, 3)
    np.testing.assert_allclose(enc.embed(x, normalise=False), (x.reshape(2, -1) - 127.5) / 127.5, atol=1e-6)


def test_insightface_heuristic_never_overrides_a_contract(tmp_path):
    """A graph named like an MXNet conversion (_minusscalar0/_mulscalar0 first): insightface's packs read
    raw pixels, a contract keeps what it declares."""
    import onnx

    class Normalising(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = TinyNet(dim=512)  # the packs' 512-d output, over the packs' 1 MB size floor

        def forward(self, x):
            return self.net((x - 127.5) * 0.0078125)

    path = export(Normalising(), tmp_path / "mx.onnx", (1, 3, 112, 112))
    model = onnx.load(str(path))
    for node in model.graph.node[:4]:
        node.name = {"Sub": "_minusscalar0", "Mul": "_mulscalar0"}.get(node.op_type, node.name)
    onnx.save(model, str(path))
    pack = create_encoder("arcface.onnx", weights=path)
    assert pack.spec.mean == (0.0,) * 3 and pack.spec.std == (1.0,) * 3
    enc = create_encoder(write_contract(tmp_path, path))
    assert enc.spec.mean == (127.5,) * 3


def test_prelu_sub_mul_does_not_trigger_the_heuristic(tmp_path):
    """TF exports decompose PReLU into Sub/Mul operators (named e.g. 'prelu/sub'): insightface tests names."""
    from idbench.encoders.arcface_onnx import graph_normalises_input

    class PReLUFirst(nn.Module):
        def forward(self, x):
            return torch.relu(x) - 0.25 * torch.relu(-x)

    path = export(PReLUFirst(), tmp_path / "p.onnx", (1, 3, 8, 8))
    import onnx

    g = onnx.load(str(path)).graph
    assert {"Sub", "Mul"} <= {n.op_type for n in g.node[:8]}
    for i, n in enumerate(g.node):
        n.name = f"prelu/{n.op_type.lower()}_{i}"
    assert not graph_normalises_input(g)


def test_cuda_without_provider_is_an_error(tmp_path, nchw_onnx):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(IdbenchError, match="no CUDAExecutionProvider"):
        create_encoder(write_contract(tmp_path, nchw_onnx), device="cuda")


def test_torchscript_contract_is_loaded_only_behind_the_trust_switch(tmp_path, monkeypatch):
    """A TorchScript file is a program: without IDBENCH_ALLOW_PICKLE=1 it is refused in one line and never loaded."""
    from typer.testing import CliRunner

    from idbench.bench.cli import app
    from idbench.errors import WeightsFormatError

    path = tmp_path / "m.pt"
    torch.jit.trace(TinyNet().eval(), torch.zeros(1, 3, 112, 112)).save(str(path))
    monkeypatch.delenv("IDBENCH_ALLOW_PICKLE", raising=False)
    loaded = []
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: loaded.append(a))
    with pytest.raises(WeightsFormatError, match=r"TorchScript model is a program.*IDBENCH_ALLOW_PICKLE=1") as e:
        create_encoder(write_contract(tmp_path, path))
    assert "\n" not in str(e.value) and not loaded
    r = CliRunner().invoke(app, ["encoder", "inspect", str(write_contract(tmp_path, path, "c.toml"))])
    assert r.exit_code == 2 and "TorchScript model is a program" in r.output and not loaded


def test_torchscript_contract(tmp_path, monkeypatch):
    monkeypatch.setenv("IDBENCH_ALLOW_PICKLE", "1")  # trusted: made here
    net = TinyNet(extra_output=True).eval()
    path = tmp_path / "m.pt"
    torch.jit.trace(net, torch.zeros(1, 3, 112, 112)).save(str(path))
    with pytest.raises(ContractError, match="returns 2 outputs"):
        create_encoder(write_contract(tmp_path, path))
    enc = create_encoder(write_contract(tmp_path, path, "t.toml", output="1"))
    assert enc.spec.backend == "torchscript" and enc.spec.embedding_size == 64  # read by a dry run
    x = faces()
    ref = torch_reference(lambda t: net(t)[1], (x.astype(np.float32) - 127.5) / 127.5)
    assert np.abs(enc.embed(x, normalise=False) - ref).max() < 1e-4
    with pytest.raises(ContractError, match="embedding_size 32 but the model output gives 64"):
        create_encoder(write_contract(tmp_path, path, "w.toml", output="1", embedding_size=32))


def test_narrow_input_takes_the_centre_of_the_square_crop(tmp_path):
    """112 x 96 (SphereFace): the centre 96 columns of the 112 x 112 ArcFace crop."""
    net = TinyNet(size=(112, 96))
    path = export(net, tmp_path / "n.onnx", (1, 3, 112, 96))
    enc = create_encoder(write_contract(tmp_path, path, input_size=[112, 96]))
    x = faces()
    np.testing.assert_array_equal(enc.embed(x), enc.embed(np.ascontiguousarray(x[:, :, 8:104])))


# --- plugins and discovery ----------------------------------------------------------------------------------


def test_entry_point_plugin_registers_an_encoder(tmp_path, monkeypatch):
    from idbench.encoders import load_plugins

    (tmp_path / "idb_fake_plugin.py").write_text(textwrap.dedent("""
        import numpy as np
        from idbench.encoders import Encoder, EncoderSpec, register_encoder

        @register_encoder(EncoderSpec("fakeplugin.mean", (112, 112), "arcface112", "RGB", (0.0,) * 3, (1.0,) * 3,
                                      3, False, "numpy"))
        class MeanColour(Encoder):
            def __init__(self, spec, weights_path, device="cpu"):
                super().__init__(spec, weights_path)

            def _embed_batch(self, faces):
                return faces.reshape(len(faces), -1, 3).mean(1)
    """))
    (tmp_path / "idb_broken_plugin.py").write_text("raise ImportError('needs libfoo')\n")
    dist = tmp_path / "idb_fake_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: idb-fake-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[idbench.encoders]\nfake = idb_fake_plugin\nbroken = idb_broken_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from idbench.encoders import IMPORT_ERRORS

    assert "fake" in load_plugins()
    assert "fakeplugin.mean" in list_encoders()
    x = faces(2)
    np.testing.assert_allclose(create_encoder("fakeplugin.mean").embed(x, normalise=False),
                               x.reshape(2, -1, 3).mean(1), rtol=1e-6)
    broken = [k for k in IMPORT_ERRORS if k.startswith("plugin:broken")]
    assert broken and "needs libfoo" in IMPORT_ERRORS[broken[0]]
    with pytest.raises(IdbenchError, match="needs libfoo"):  # named when an unknown encoder is asked for
        create_encoder("fakeplugin.missing")
    for k in broken:
        IMPORT_ERRORS.pop(k)
    sys.modules.pop("idb_fake_plugin", None)


def test_module_discovery_reports_a_broken_module(tmp_path, monkeypatch):
    from idbench.encoders import IMPORT_ERRORS, discover_modules

    pkg = tmp_path / "idb_fake_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text("from idbench.encoders import register_encoder  # noqa\nLOADED = True\n")
    (pkg / "bad.py").write_text("import idb_no_such_dependency  # then register_encoder(...)\n")
    (pkg / "network.py").write_text("raise RuntimeError('a network module: imported by its factory only')\n")
    (pkg / "_private.py").write_text("raise RuntimeError('never imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="idb_fake_pkg.bad failed to load"):
        discover_modules("idb_fake_pkg", skip=("network",))  # network-only modules are named, not read as text
    assert sys.modules["idb_fake_pkg.good"].LOADED and "idb_fake_pkg.network" not in IMPORT_ERRORS
    assert "idb_no_such_dependency" in IMPORT_ERRORS.pop("idb_fake_pkg.bad")
    assert not any("_private" in k for k in IMPORT_ERRORS)


def test_every_project_module_loads():
    from idbench.encoders import IMPORT_ERRORS

    assert not {k: v for k, v in IMPORT_ERRORS.items() if k.startswith("idbench.")}
    for name in ("sphereface.sphere20a", "adaface.ir101", "adaface.ir50", "curricularface.ir101",
                 "arcface.buffalo_s", "arcface.buffalo_m"):
        assert name in list_encoders()


# --- the CLI --------------------------------------------------------------------------------------------------


def test_inspect_prints_graph_and_a_template_that_parses_once_filled(tmp_path, nchw_onnx):
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    r = CliRunner().invoke(app, ["encoder", "inspect", str(nchw_onnx)])
    assert r.exit_code == 0, r.output
    assert "input  data" in r.output and "layout NCHW" in r.output and "output emb" in r.output
    template = "\n".join(line for line in r.output.splitlines() if not line.startswith("#"))
    filled = template.replace('colour = "FILL_IN"', 'colour = "RGB"').replace("FILL_IN, FILL_IN, FILL_IN", "127.5")
    (tmp_path / "t.toml").write_text(filled)
    enc = create_encoder(tmp_path / "t.toml")
    assert enc.spec.embedding_size == 64 and enc.spec.name == "nchw"
    r = CliRunner().invoke(app, ["encoder", "inspect", str(tmp_path / "t.toml")])
    assert r.exit_code == 0 and "contract OK" in r.output


def test_weights_name_means_the_same_everywhere(tmp_path, nchw_onnx):
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    c = write_contract(tmp_path, tmp_path / "elsewhere.onnx")
    for args in (["embed", "--encoder", "dlib", "--out", str(tmp_path / "o.npz"), str(tmp_path)],
                 ["run", "--encoders", "dlib", "--out", str(tmp_path / "r")]):
        r = CliRunner().invoke(app, args + ["--weights", "arcface.r100=/x.pth"])
        assert r.exit_code == 2 and "which this command does not use" in r.output, r.output
        r = CliRunner().invoke(app, args + ["--weights", "/x.pth"])
        assert r.exit_code == 2 and "NAME=PATH" in r.output
    # a contract's name (or its path) picks the weights that override its own
    out = tmp_path / "e.npz"
    r = CliRunner().invoke(app, ["embed", "--encoder", str(c), "--weights", f"tiny={nchw_onnx}", "--out", str(out),
                                 str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert str(np.load(out)["encoder"]) == "tiny"


# --- the two real third-party models ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lfw_faces():
    if not (MODELS / "mobileface.onnx").is_file() or not LFW.is_dir():
        pytest.skip("../shared/models or ../shared/data/lfw is not available")
    return hog_faces(sorted(LFW.glob("A*/*_0001.jpg")))


@pytest.mark.parametrize("contract, output, bgr", [("mobileface", "batchnorm0/add_1:0", False),
                                                    ("faceres", "global_pooling/Mean:0", True)])
def test_real_models_through_contracts_match_onnxruntime(lfw_faces, contract, output, bgr):
    import onnxruntime as ort

    from idbench.align import align_face

    enc = create_encoder(CONTRACTS / f"{contract}.toml")
    size = enc.spec.input_size[0]
    crops = np.stack([align_face(img, f, "arcface112", size) for img, f in lfw_faces])
    sess = ort.InferenceSession(str(MODELS / f"{contract}.onnx"), providers=["CPUExecutionProvider"])
    blob = crops[..., ::-1] if bgr else crops  # the models' README: raw 0..255, NHWC
    direct = sess.run([output], {sess.get_inputs()[0].name: np.ascontiguousarray(blob, np.float32)})[0]
    ours = enc.embed(crops, normalise=False)
    assert ours.shape == direct.shape and np.abs(ours - direct).max() < 1e-5


def test_arcface112_scaled_like_insightface_norm_crop(lfw_faces):
    from insightface.utils.face_align import norm_crop

    from idbench.align import align_face

    img, face = lfw_faces[0]
    for size in (112, 224):
        ref = norm_crop(img, face.landmarks5.astype(np.float32), image_size=size)
        ours = align_face(img, face, "arcface112", size)
        assert ours.shape == (size, size, 3)
        assert np.abs(ours.astype(int) - ref.astype(int)).mean() < 1.0
