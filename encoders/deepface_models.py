"""``deepface.<Model>``: the face recognisers of serengil/deepface, run by deepface itself (optional extra).

``pip install idbench[deepface]`` installs deepface (and TensorFlow). idbench resolves the weight file
first (``$IDBENCH_HOME/weights/`` then ``$DEEPFACE_HOME/.deepface/weights/``, deepface's own folder;
``deepface.Dlib`` also finds dlib's model in face-recognition-models) and lets deepface load it with
downloading switched off: a file idbench did not find is never fetched.

Preprocessing is deepface's ``DeepFace.represent`` default (``normalization="base"``): the face in BGR,
letterboxed to the network's size (aspect kept, black padding, ``preprocessing.resize_image``), divided by
255. Crops are idbench's ``mtcnn160`` geometry (the detector box plus a margin, no rotation) at the
network's size, the nearest idbench alignment to deepface's detector-box crop (deepface also levels the
eyes first). DeepID takes 55 x 47: idbench hands it a 55 x 55 crop and the encoder letterboxes it as
deepface would.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Tuple

import numpy as np

from idbench.errors import IdbenchError, WeightsNotFoundError
from idbench.weights import DLIB_MODELS, WeightSource

from .base import Encoder
from .registry import register_encoder
from .spec import EncoderSpec

DEEPFACE_WEIGHTS_DIR = "$DEEPFACE_HOME/.deepface/weights"
DEEPFACE_REPO = "https://github.com/serengil/deepface"


class OptionalDependencyError(IdbenchError, ImportError):
    """An optional extra (deepface) is not installed."""


class DeepFaceModel(NamedTuple):
    filename: str
    net_size: Tuple[int, int]  # (height, width) deepface feeds the network
    dim: int
    l2: bool  # deepface's forward already L2-normalises (VGG-Face)
    backend: str
    weights_from: str
    paper: str


DEEPFACE_MODELS = {
    "VGG-Face": DeepFaceModel("vgg_face_weights.h5", (224, 224), 4096, True, "keras",
                              "Oxford VGG's VGG-Face descriptor (non-commercial terms)",
                              "Parkhi, Vedaldi, Zisserman, Deep Face Recognition (BMVC 2015)"),
    "Facenet": DeepFaceModel("facenet_weights.h5", (160, 160), 128, False, "keras",
                             "davidsandberg/facenet (MIT) via a Keras port",
                             "Schroff, Kalenichenko, Philbin, FaceNet (CVPR 2015)"),
    "Facenet512": DeepFaceModel("facenet512_weights.h5", (160, 160), 512, False, "keras",
                                "davidsandberg/facenet (MIT) via a Keras port",
                                "Schroff, Kalenichenko, Philbin, FaceNet (CVPR 2015)"),
    "ArcFace": DeepFaceModel("arcface_weights.h5", (112, 112), 512, False, "keras",
                             "InsightFace (non-commercial research) via a Keras port",
                             "Deng et al., ArcFace (CVPR 2019)"),
    "SFace": DeepFaceModel("face_recognition_sface_2021dec.onnx", (112, 112), 128, False, "onnx",
                           "OpenCV Zoo (Apache-2.0), run by cv2.FaceRecognizerSF",
                           "Zhong et al., SFace: Sigmoid-Constrained Hypersphere Loss (IEEE TIP 2021)"),
    "GhostFaceNet": DeepFaceModel("ghostfacenet_v1.h5", (112, 112), 512, False, "keras",
                                  "HamadYA/GhostFaceNets release v1.2 (see its licence)",
                                  "Alansari et al., GhostFaceNets (IEEE Access 2023)"),
    "Dlib": DeepFaceModel("dlib_face_recognition_resnet_model_v1.dat", (150, 150), 128, False, "dlib",
                          "dlib-models (CC0)", "King, dlib face recognition ResNet (dlib blog 2017)"),
    "OpenFace": DeepFaceModel("openface_weights.h5", (96, 96), 128, False, "keras",
                              "CMU OpenFace nn4.small2 (Apache-2.0) via a Keras port",
                              "Amos, Ludwiczuk, Satyanarayanan, OpenFace (CMU-CS-16-118, 2016)"),
    "DeepID": DeepFaceModel("deepid_keras_weights.h5", (55, 47), 160, False, "keras",
                            "deepface's Keras DeepID weights",
                            "Sun, Wang, Tang, Deep Learning Face Representation from Predicting 10,000 Classes "
                            "(CVPR 2014)"),
}


def require_deepface(name: str) -> None:
    if importlib.util.find_spec("deepface") is None:
        raise OptionalDependencyError(
            f"{name} needs deepface, an optional extra that is not installed: pip install idbench[deepface]")


@contextlib.contextmanager
def _offline_deepface_home(filename: str, weights_path: Path) -> Iterator[str]:
    """A DEEPFACE_HOME whose ``.deepface/weights/<filename>`` is ``weights_path``, downloads disabled."""
    from deepface.commons import weight_utils

    path = Path(weights_path).resolve()
    with contextlib.ExitStack() as stack:
        if path.name == filename and path.parent.name == "weights" and path.parent.parent.name == ".deepface":
            home = str(path.parent.parent.parent)
        else:
            home = stack.enter_context(tempfile.TemporaryDirectory(prefix="idbench_deepface_"))
            link = Path(home) / ".deepface" / "weights" / filename
            link.parent.mkdir(parents=True)
            link.symlink_to(path)

        def no_download(file_name: str, source_url: str = "", compress_type=None, **_kw) -> str:
            target = os.path.join(home, ".deepface", "weights", file_name)
            if os.path.isfile(target):
                return target
            raise WeightsNotFoundError(f"deepface asked for {file_name} ({source_url}); idbench does not download: "
                                       f"put it in {DEEPFACE_WEIGHTS_DIR} or $IDBENCH_HOME/weights")

        old_home = os.environ.get("DEEPFACE_HOME")
        old_fn = getattr(weight_utils, "download_weights_if_necessary", None)
        os.environ["DEEPFACE_HOME"] = home
        if old_fn is not None:
            weight_utils.download_weights_if_necessary = no_download
        try:
            yield home
        finally:
            if old_fn is not None:
                weight_utils.download_weights_if_necessary = old_fn
            if old_home is None:
                os.environ.pop("DEEPFACE_HOME", None)
            else:
                os.environ["DEEPFACE_HOME"] = old_home


def build_deepface_model(model_name: str, filename: str, weights_path: Path):
    from deepface.modules import modeling

    cache = getattr(modeling, "cached_models", None)
    if isinstance(cache, dict):  # deepface keeps one instance per name; build from *this* file
        cache.get("facial_recognition", {}).pop(model_name, None)
    with _offline_deepface_home(filename, weights_path):
        try:
            return modeling.build_model(task="facial_recognition", model_name=model_name)
        except TypeError:  # deepface < 0.0.93: build_model(model_name)
            return modeling.build_model(model_name)


def letterbox(img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """deepface's ``resize_image``: fit inside (h, w) keeping the aspect ratio, pad with black, centred."""
    import cv2

    th, tw = size
    if img.shape[:2] == (th, tw):
        return img
    f = min(th / img.shape[0], tw / img.shape[1])
    img = cv2.resize(img, (int(img.shape[1] * f), int(img.shape[0] * f)))
    dh, dw = th - img.shape[0], tw - img.shape[1]
    img = np.pad(img, ((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2), (0, 0)))
    return img if img.shape[:2] == (th, tw) else cv2.resize(img, (tw, th))


class DeepFaceEncoder(Encoder):
    """A deepface ``FacialRecognition`` model behind idbench's encoder contract."""

    batch_size = 32

    def __init__(self, spec: EncoderSpec, weights_path: Optional[Path], model_name: str):
        require_deepface(spec.name)
        super().__init__(spec, weights_path)
        info = DEEPFACE_MODELS[model_name]
        self.model_name, self.net_size = model_name, info.net_size
        self.model = build_deepface_model(model_name, info.filename, weights_path)

    def preprocess(self, faces: np.ndarray) -> np.ndarray:
        x = faces[..., ::-1] if self.spec.colour == "BGR" else faces
        x = np.stack([letterbox(np.ascontiguousarray(f), self.net_size) for f in x]).astype(np.float32)
        return (x - np.float32(self.spec.mean[0])) / np.float32(self.spec.std[0])

    def _embed_batch(self, faces: np.ndarray) -> np.ndarray:
        out = self.model.forward(self.preprocess(faces))
        return np.asarray(out, np.float32).reshape(len(faces), -1)


def _register(model_name: str, info: DeepFaceModel) -> None:
    side = max(info.net_size)
    search = (DEEPFACE_WEIGHTS_DIR, DLIB_MODELS) if model_name == "Dlib" else (DEEPFACE_WEIGHTS_DIR,)
    origin = (f"deepface ({DEEPFACE_REPO}; optional extra: pip install idbench[deepface]): "
              f"DeepFace.build_model('{model_name}') downloads it into {DEEPFACE_WEIGHTS_DIR}")
    source = WeightSource(info.filename, origin, search=search, min_bytes=500_000)
    spec = EncoderSpec(
        name=f"deepface.{model_name}", input_size=(side, side), alignment="mtcnn160", colour="BGR",
        mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0), embedding_size=info.dim, l2_normalised=info.l2,
        backend=info.backend, weights=(source,),
        licence=f"deepface: MIT; weights: {info.weights_from}", paper=info.paper,
        description=f"deepface's {model_name} ({info.net_size[0]}x{info.net_size[1]}, {info.dim}-d) run by "
                    f"deepface (optional extra: pip install idbench[deepface])",
    )

    @register_encoder(spec)
    def _factory(spec, weights_path, device="cpu"):
        return DeepFaceEncoder(spec, weights_path, model_name)


for _name, _info in DEEPFACE_MODELS.items():
    _register(_name, _info)
