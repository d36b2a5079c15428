"""``arcface.onnx`` / ``arcface.onnx_glintr100``: insightface's packaged ArcFace ONNX models through onnxruntime.

* ``arcface.onnx``: ``w600k_r50.onnx`` of the ``buffalo_l`` pack (IResNet-50, WebFace600K), found in
  ``~/.insightface/models/buffalo_l/`` where ``insightface.app.FaceAnalysis`` keeps it;
* ``arcface.onnx_glintr100``: ``glintr100.onnx`` of the ``antelopev2`` pack (IResNet-100, Glint360K),
  in ``~/.insightface/models/antelopev2/``.

Any recognition ONNX with one N x 3 x 112 x 112 input and one N x D output can be given explicitly
(``create_encoder("arcface.onnx", weights="model.onnx")``, e.g. an arcface_torch model exported with
``torch.onnx.export``).

Preprocessing follows ``insightface.model_zoo.ArcFaceONNX``: a model whose first graph nodes subtract
and multiply (an MXNet conversion that normalises inside the graph) gets raw pixels (mean 0, std 1);
any other gets ``(pixel - 127.5) / 127.5``. insightface feeds ``cv2.dnn.blobFromImages(bgr, swapRB=True)``,
i.e. RGB, which is what idbench hands in. The encoder's ``spec`` carries the normalisation found.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import List, Optional

import numpy as np

from idbench.errors import WeightsFormatError
from idbench.weights import WeightSource

from .arcface import INSIGHTFACE_LICENCE
from .base import Encoder
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
    """insightface's test: a Sub and a Mul among the first nodes mean the graph normalises pixels itself."""
    found_sub = found_mul = False
    for node in list(graph.node)[:first_nodes]:
        name = node.name or ""
        if node.op_type == "Sub" or name.startswith(("Sub", "_minus")):
            found_sub = True
        if node.op_type == "Mul" or name.startswith(("Mul", "_mul")):
            found_mul = True
    return found_sub and found_mul


def onnx_providers(device: str) -> List[str]:
    import onnxruntime as ort

    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _static(dim) -> Optional[int]:
    return dim if isinstance(dim, int) and dim > 0 else None


class OnnxArcFaceEncoder(Encoder):
    """An insightface-style recognition ONNX model run by onnxruntime."""

    batch_size = 64

    def __init__(self, spec: EncoderSpec, weights_path: Optional[Path], device: str = "cpu"):
        import onnx
        import onnxruntime as ort

        if weights_path is None:
            raise WeightsFormatError(f"{spec.name} needs a weight file ({spec.weights[0].filename})")
        origin = spec.weights[0].origin if spec.weights else ""
        path = Path(weights_path)
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as e:  # noqa: BLE001 - protobuf DecodeError, ValueError, OSError ...
            raise WeightsFormatError(f"{path}: not a readable ONNX model, truncated or another format "
                                     f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}); "
                                     f"get it again from {origin}") from None
        if len(model.graph.node) == 0 or not model.graph.input:
            raise WeightsFormatError(f"{path}: parses as an empty ONNX graph (truncated or not an ONNX model); "
                                     f"get it again from {origin}")
        normalised_in_graph = graph_normalises_input(model.graph)
        del model
        mean, std = (0.0, 1.0) if normalised_in_graph else (127.5, 127.5)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=onnx_providers(device))
        except Exception as e:  # noqa: BLE001 - onnxruntime's Fail / InvalidGraph / InvalidProtobuf
            raise WeightsFormatError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0][:160]}); "
                                     f"truncated or corrupt? Get it again from {origin}") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise WeightsFormatError(f"{path}: has {len(inputs)} inputs and {len(outputs)} outputs; a recognition "
                                     f"model has one of each (a detector or landmark model?)")
        shape = list(inputs[0].shape)
        h, w = spec.input_size
        if len(shape) != 4 or _static(shape[1]) not in (None, 3) or \
                any(_static(s) not in (None, t) for s, t in zip(shape[2:], (h, w))):
            raise WeightsFormatError(f"{path}: input shape {shape} is not N x 3 x {h} x {w}")
        out_shape = list(outputs[0].shape)
        dim = _static(out_shape[-1]) if out_shape else None
        if dim is not None and dim != spec.embedding_size:
            raise WeightsFormatError(f"{path}: outputs {dim}-d vectors, {spec.name} expects {spec.embedding_size}")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.input_dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
        if _static(shape[0]) == 1:
            self.batch_size = 1  # exported with a fixed batch of one
        self.normalised_in_graph = normalised_in_graph
        spec = dataclasses.replace(spec, mean=(mean,) * 3, std=(std,) * 3)
        super().__init__(spec, path)
        self.device = device
        self.providers = self.session.get_providers()

    def preprocess(self, faces: np.ndarray) -> np.ndarray:
        """uint8 RGB N x H x W x 3 -> the network's N x 3 x H x W blob (RGB, as insightface's swapRB blob)."""
        x = faces.astype(np.float32).transpose(0, 3, 1, 2)
        if self.spec.colour == "BGR":
            x = x[:, ::-1]
        mean = np.asarray(self.spec.mean, np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(self.spec.std, np.float32).reshape(1, 3, 1, 1)
        return np.ascontiguousarray((x - mean) / std, dtype=self.input_dtype)

    def _embed_batch(self, faces: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output_name], {self.input_name: self.preprocess(faces)})[0]
        return np.asarray(out, np.float32).reshape(len(faces), -1)


_ONNX_KW = dict(input_size=(112, 112), alignment="arcface112", colour="RGB", mean=(127.5,) * 3, std=(127.5,) * 3,
                embedding_size=512, l2_normalised=False, backend="onnx", licence=INSIGHTFACE_LICENCE)


@register_encoder(EncoderSpec(
    name="arcface.onnx", weights=(onnx_source("w600k_r50.onnx", "buffalo_l"),),
    paper="Deng et al., ArcFace (CVPR 2019); Zhu et al., WebFace260M (CVPR 2021) for WebFace600K",
    description="insightface buffalo_l recognition model (IResNet-50 ArcFace, WebFace600K) via onnxruntime; "
                "input normalisation read from the graph as insightface does", **_ONNX_KW))
def _arcface_onnx(spec, weights_path, device="cpu"):
    return OnnxArcFaceEncoder(spec, weights_path, device)


@register_encoder(EncoderSpec(
    name="arcface.onnx_glintr100", weights=(onnx_source("glintr100.onnx", "antelopev2"),),
    paper="Deng et al., ArcFace (CVPR 2019); An et al., Partial FC: Training 10 Million Identities on a Single "
          "Machine (ICCVW 2021; Glint360K)",
    description="insightface antelopev2 recognition model (IResNet-100, Glint360K) via onnxruntime; "
                "input normalisation read from the graph as insightface does", **_ONNX_KW))
def _arcface_onnx_glintr100(spec, weights_path, device="cpu"):
    return OnnxArcFaceEncoder(spec, weights_path, device)
