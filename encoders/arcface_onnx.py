"""insightface's packaged recognition ONNX models through onnxruntime.

* ``arcface.onnx``: ``w600k_r50.onnx`` of the ``buffalo_l`` pack (IResNet-50, WebFace600K), found in
  ``~/.insightface/models/buffalo_l/`` where ``insightface.app.FaceAnalysis`` keeps it;
* ``arcface.onnx_glintr100``: ``glintr100.onnx`` of the ``antelopev2`` pack (IResNet-100, Glint360K);
* ``arcface.buffalo_s`` / ``arcface.buffalo_m``: ``w600k_mbf.onnx`` (MobileFaceNet, WebFace600K) of the
  ``buffalo_s`` / ``buffalo_m`` packs (the two packs ship the same recognition file).

Any recognition ONNX with one N x 3 x 112 x 112 input and one N x D output can be given explicitly
(``create_encoder("arcface.onnx", weights="model.onnx")``); a model of another shape, layout or
normalisation wants a contract file instead (:mod:`idbench.encoders.contract`).

Preprocessing follows ``insightface.model_zoo.ArcFaceONNX``, for these packs only: a graph whose first 8
nodes are *named* ``Sub``/``_minus*`` and ``Mul``/``_mul*`` (an MXNet conversion that normalises inside
the graph) gets raw pixels (mean 0, std 1); any other gets ``(pixel - 127.5) / 127.5``. insightface
tests node names, not operator types: a PReLU exported as Sub/Mul operators must not trigger it.
insightface feeds ``cv2.dnn.blobFromImages(bgr, swapRB=True)``, i.e. RGB, which is what idbench hands in.
The encoder's ``spec`` carries the normalisation found.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from idbench.weights import WeightSource

from .arcface import INSIGHTFACE_LICENCE
from .onnx_backend import OnnxEncoder, onnx_providers  # noqa: F401  (onnx_providers: kept importable here)
from .registry import register_encoder
from .spec import EncoderSpec

INSIGHTFACE_PACKS = "https://github.com/deepinsight/insightface/tree/master/python-package#model-zoo"


def onnx_source(filename: str, pack: str, min_bytes: int = 1_000_000) -> WeightSource:
    return WeightSource(
        filename,
        f"insightface's '{pack}' model pack ({INSIGHTFACE_PACKS}; FaceAnalysis(name='{pack}') unpacks it into "
        f"~/.insightface/models/{pack}/)",
        search=(f"~/.insightface/models/{pack}",),
        min_bytes=min_bytes,
    )


def graph_normalises_input(graph, first_nodes: int = 8) -> bool:
    """insightface's test (``ArcFaceONNX.__init__``): nodes *named* Sub/_minus and Mul/_mul among the first 8."""
    names = [node.name or "" for node in list(graph.node)[:first_nodes]]
    return any(n.startswith(("Sub", "_minus")) for n in names) and any(n.startswith(("Mul", "_mul")) for n in names)


def insightface_normalisation(path: Path) -> tuple:
    """(mean, std) insightface would use for this graph."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception:  # noqa: BLE001 - unreadable: OnnxEncoder reports it with its own one-line reason
        return 127.5, 127.5
    return (0.0, 1.0) if graph_normalises_input(graph) else (127.5, 127.5)


class OnnxArcFaceEncoder(OnnxEncoder):
    """One of insightface's own packs: the normalisation is read from the graph as insightface does."""

    def __init__(self, spec: EncoderSpec, weights_path: Optional[Path], device: str = "cpu"):
        if weights_path is not None:
            mean, std = insightface_normalisation(Path(weights_path))
            spec = dataclasses.replace(spec, mean=(mean,) * 3, std=(std,) * 3)
        super().__init__(spec, weights_path, device)
        self.normalised_in_graph = self.spec.mean == (0.0,) * 3


_ONNX_KW = dict(input_size=(112, 112), alignment="arcface112", colour="RGB", mean=(127.5,) * 3, std=(127.5,) * 3,
                embedding_size=512, l2_normalised=False, backend="onnx", licence=INSIGHTFACE_LICENCE)

_PACKS = {
    "arcface.onnx": ("w600k_r50.onnx", "buffalo_l", "Deng et al., ArcFace (CVPR 2019); Zhu et al., WebFace260M "
                     "(CVPR 2021) for WebFace600K", "insightface buffalo_l recognition model (IResNet-50 ArcFace, "
                     "WebFace600K)"),
    "arcface.onnx_glintr100": ("glintr100.onnx", "antelopev2", "Deng et al., ArcFace (CVPR 2019); An et al., "
                               "Partial FC: Training 10 Million Identities on a Single Machine (ICCVW 2021; "
                               "Glint360K)", "insightface antelopev2 recognition model (IResNet-100, Glint360K)"),
    "arcface.buffalo_s": ("w600k_mbf.onnx", "buffalo_s", "Chen et al., MobileFaceNets (CCBR 2018); Deng et al., "
                          "ArcFace (CVPR 2019); Zhu et al., WebFace260M (CVPR 2021)",
                          "insightface buffalo_s recognition model (MobileFaceNet ArcFace, WebFace600K)"),
    "arcface.buffalo_m": ("w600k_mbf.onnx", "buffalo_m", "Chen et al., MobileFaceNets (CCBR 2018); Deng et al., "
                          "ArcFace (CVPR 2019); Zhu et al., WebFace260M (CVPR 2021)",
                          "insightface buffalo_m recognition model (the same MobileFaceNet file as buffalo_s)"),
}

for _name, (_file, _pack, _paper, _desc) in _PACKS.items():
    register_encoder(EncoderSpec(
        name=_name, weights=(onnx_source(_file, _pack),), paper=_paper,
        description=f"{_desc} via onnxruntime; input normalisation read from the graph as insightface does",
        **_ONNX_KW))(OnnxArcFaceEncoder)
