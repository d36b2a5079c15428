"""Face detectors behind one registry, each returning :class:`~idbench.faces.Face` records.

Every detector adds dlib's 68-point and 5-point landmarks for each box (``with_landmarks``), so
each face is detected once and every aligner and estimator downstream reuses the same record.
Large images are detected on a downscaled copy (longest side ``max_side``) and mapped back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .devices import is_cuda, onnx_providers
from .errors import InputError
from .faces import Face, landmarks68_to_5
from .registry import Registry, Spec
from .weights import DLIB_MODELS, WeightSource


@dataclass(frozen=True)
class DetectorSpec(Spec):
    """The shared :class:`~idbench.registry.Spec` (weights, licence, paper, options keyword-only) and:"""

    description: str = field()  # positional, second (the shared Spec has it keyword-only)
    cuda: bool = False  # runs on a GPU when given a cuda device (dlib-bin's detectors are CPU-only)
    batch: bool = False  # one network call takes a batch of same-size images (``Detector._boxes_batch``)
    stages: Tuple[str, ...] = ()  # a cascade's detectors, tried in turn


#: detectors registered in this module; others through the ``idbench.detectors`` entry-point group
DETECTORS: Registry[DetectorSpec] = Registry("detector", modules=(__name__,))

MMOD = WeightSource("mmod_human_face_detector.dat", "PyPI package face-recognition-models", search=(DLIB_MODELS,),
                    min_bytes=100_000)
SCRFD_10G = WeightSource("det_10g.onnx", "insightface model pack buffalo_l (insightface-cli model.download buffalo_l)",
                         search=("~/.insightface/models/buffalo_l",), min_bytes=1_000_000)


class Detector:
    """Base: subclasses implement ``_boxes(image) -> list of (box, score, landmarks5 or None)``.

    A detector whose network takes a batch of same-size images (``spec.batch``) also implements
    ``_boxes_batch``, which :meth:`detect_batch` runs on each group of images of equal size.
    """

    def __init__(self, spec: DetectorSpec, max_side: int = 1600, with_landmarks: bool = True):
        self.spec = spec
        self.max_side = max_side
        self.with_landmarks = with_landmarks

    def _boxes(self, image: np.ndarray):  # pragma: no cover - abstract
        raise NotImplementedError

    def _boxes_batch(self, images: np.ndarray) -> list:
        """``_boxes`` of each image of an N x H x W x 3 stack (overridden by batched detectors)."""
        return [self._boxes(im) for im in images]

    @property
    def batched(self) -> bool:
        return self.spec.batch

    def _downscaled(self, image: np.ndarray) -> Tuple[np.ndarray, float]:
        """The image to detect on (longest side at most ``max_side``) and its scale."""
        import cv2

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"detectors take uint8 RGB images H x W x 3, got {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        small = image if s == 1.0 else cv2.resize(image, (int(round(w * s)), int(round(h * s))),
                                                  interpolation=cv2.INTER_AREA)
        return small, s

    def _faces(self, image: np.ndarray, scale: float, boxes) -> List[Face]:
        """Boxes found on the downscaled copy, mapped back onto ``image`` and finished, largest first."""
        faces = []
        for box, score, lm5 in boxes:
            box = np.asarray(box, np.float32) / scale
            lm5 = None if lm5 is None else np.asarray(lm5, np.float32) / scale
            faces.append(self._finish(image, box, float(score), lm5))
        faces.sort(key=lambda f: -f.area)
        return faces

    def detect(self, image: np.ndarray) -> List[Face]:
        """All faces in an RGB uint8 image, largest first."""
        small, s = self._downscaled(image)
        return self._faces(image, s, self._boxes(small))

    def detect_batch(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """``[detect(im) for im in images]``, with one network call per group of same-size images.

        Images are grouped by the size they are detected at, not padded or resized: a batched
        detector then sees exactly the pixels it would see one image at a time.
        """
        prepared = [self._downscaled(im) for im in images]
        groups: Dict[Tuple[int, ...], List[int]] = {}
        for i, (small, _) in enumerate(prepared):
            groups.setdefault(small.shape, []).append(i)
        boxes: List[list] = [[] for _ in images]
        for idx in groups.values():
            if len(idx) == 1 or not self.batched:
                for i in idx:
                    boxes[i] = self._boxes(prepared[i][0])
                continue
            for i, b in zip(idx, self._boxes_batch(np.stack([prepared[i][0] for i in idx]))):
                boxes[i] = b
        return [self._faces(im, s, b) for im, (_, s), b in zip(images, prepared, boxes)]

    def _finish(self, image, box, score, lm5) -> Face:
        lm68 = d5 = None
        if self.with_landmarks or lm5 is None:
            from .landmarks import dlib5, landmarks68

            # dlib's predictors were trained on dlib-detector boxes: give them such a box, derived from
            # the detector's own 5 points when it has them (MTCNN/SCRFD boxes are shaped differently)
            fit_box = box if lm5 is None else dlib_box_from_landmarks5(lm5)
            lm68 = landmarks68(image, fit_box)
            d5 = dlib5(image, fit_box)
            if lm5 is None:
                lm5 = landmarks68_to_5(lm68)
        return Face(box, score, lm5.astype(np.float32), lm68, d5, self.spec.name)


def dlib_box_from_landmarks5(lm5: np.ndarray) -> np.ndarray:
    """The box dlib's HOG detector would give for a face with these 5 ArcFace-order points.

    Measured on the 736 faces of ../shared/data/faces that dlib-hog finds: the box is a square of side
    2.32 x max(inter-ocular, eye-to-mouth distance), centred 0.08 / 0.06 of that distance left of / above
    the mean of the 5 points.
    """
    p = np.asarray(lm5, np.float32)
    s = max(float(np.linalg.norm(p[1] - p[0])), float(np.linalg.norm((p[0] + p[1]) / 2 - (p[3] + p[4]) / 2)))
    c = p.mean(0) + np.array([-0.084, -0.057], np.float32) * s
    h = 2.32 * s / 2
    return np.array([c[0] - h, c[1] - h, c[0] + h, c[1] + h], np.float32)


def register_detector(spec: DetectorSpec) -> Callable:
    return DETECTORS.register(spec.name, spec)


def list_detectors(pattern: Optional[str] = None) -> List[str]:
    return DETECTORS.names(pattern)


@lru_cache(maxsize=8)
def create_detector(name: str = "auto", device: str = "cpu", weights: Optional[str] = None) -> Detector:
    """Build (once per argument set) a registered detector: ``DETECTORS.create``."""
    return DETECTORS.create(name, weights, device)


def preload_detector(name: str = "auto", device: str = "cpu") -> Detector:
    """Build a detector and load the landmark models its faces get (e.g. before forking workers)."""
    from .landmarks import preload_predictors

    det = create_detector(name, device)
    if isinstance(det, Cascade):  # its first stage; the fallback loads only if an image needs it
        create_detector(det.stage_names[0], device)
    if det.with_landmarks:
        preload_predictors()
    return det


# --- dlib HOG -------------------------------------------------------------------------------------

class DlibHog(Detector):
    def __init__(self, spec, upsample: int = 1, **kw):
        super().__init__(spec, **kw)
        import dlib

        self.upsample = upsample
        self._det = dlib.get_frontal_face_detector()

    def _boxes(self, image):
        rects, scores, _ = self._det.run(image, self.upsample, 0.0)
        return [((r.left(), r.top(), r.right(), r.bottom()), sc, None) for r, sc in zip(rects, scores)]


@register_detector(DetectorSpec("dlib-hog", "dlib's HOG + linear SVM frontal face detector (upsample 1); fast on CPU",
                                licence="Boost Software License (dlib)"))
def _dlib_hog(spec, weights, device):
    return DlibHog(spec)


# --- dlib MMOD CNN --------------------------------------------------------------------------------

class DlibMmod(Detector):
    def __init__(self, spec, path, upsample: int = 0, **kw):
        super().__init__(spec, **kw)
        import dlib

        self.upsample = upsample
        self._det = dlib.cnn_face_detection_model_v1(str(path))

    def _boxes(self, image):
        out = self._det(image, self.upsample)
        return [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), d.confidence, None) for d in out]


@register_detector(DetectorSpec("dlib-mmod", "dlib's MMOD CNN face detector (weights shipped); slow on CPU",
                                weights=(MMOD,), licence="CC0 (dlib model)"))
def _dlib_mmod(spec, weights, device):
    return DlibMmod(spec, weights)


# --- MTCNN (facenet-pytorch) ------------------------------------------------------------------------

class Mtcnn(Detector):
    def __init__(self, spec, device="cpu", **kw):
        super().__init__(spec, **kw)
        from facenet_pytorch import MTCNN

        from .mtcnn_nms import install

        install()  # a batch gives each image the boxes it gets alone
        self._det = MTCNN(keep_all=True, device=device, post_process=False)

    def _boxes(self, image):
        return self._boxes_batch(image[None])[0]

    def _boxes_batch(self, images):
        import torch

        with torch.inference_mode():  # a 4-D array is one batch (a 3-D one would be unsqueezed to it)
            boxes, probs, points = self._det.detect(images, landmarks=True)
        # MTCNN's points are left eye, right eye, nose, mouth left, mouth right: ArcFace order.
        return [[] if b is None else list(zip(b, p, pt)) for b, p, pt in zip(boxes, probs, points)]


@register_detector(DetectorSpec("mtcnn", "facenet-pytorch MTCNN (P/R/O-Net weights shipped in the package), 5 points",
                                licence="MIT (facenet-pytorch)", cuda=True, batch=True))
def _mtcnn(spec, weights, device):
    return Mtcnn(spec, device=device)


# --- SCRFD (insightface ONNX) -----------------------------------------------------------------------

class Scrfd(Detector):
    def __init__(self, spec, path, device="cpu", det_size=(640, 640), threshold=0.5, **kw):
        super().__init__(spec, **kw)
        providers = onnx_providers(device)  # CUDA asked for without its provider: an error, not a CPU run
        import onnxruntime
        from insightface.model_zoo.scrfd import SCRFD

        session = onnxruntime.InferenceSession(str(path), providers=providers)
        self._det = SCRFD(model_file=str(path), session=session)
        self._det.prepare(0 if is_cuda(device) else -1, input_size=det_size, det_thresh=threshold)
        self.det_size = det_size

    def _boxes(self, image):
        bboxes, kpss = self._det.detect(np.ascontiguousarray(image[:, :, ::-1]), input_size=self.det_size)
        out = []
        for i, b in enumerate(bboxes):
            out.append((b[:4], b[4], None if kpss is None else kpss[i]))
        return out


@register_detector(DetectorSpec("scrfd", "insightface SCRFD ONNX (user weights, det_10g.onnx from buffalo_l), 5 points",
                                weights=(SCRFD_10G,), licence="insightface models: non-commercial research only",
                                cuda=True))
def _scrfd(spec, weights, device):
    return Scrfd(spec, weights, device=device)


# --- cascade: dlib HOG first, MTCNN where HOG finds nothing --------------------------------------------

class Cascade(Detector):
    """Try each detector in turn; the first that finds a face wins (its name is kept on the faces).

    Stages are built on first use, so a run where HOG finds every face never loads MTCNN (nor torch).
    """

    def __init__(self, spec, stages: Sequence[str], device: str = "cpu", **kw):
        super().__init__(spec, **kw)
        self.stage_names = tuple(stages)
        self.device = device

    def detect(self, image: np.ndarray, stages: slice = slice(None)) -> List[Face]:
        """The first face list a stage finds; ``stages`` runs only some of them (e.g. ``slice(1)``)."""
        return self.detect_batch([image], stages)[0]

    def detect_batch(self, images: Sequence[np.ndarray], stages: slice = slice(None)) -> List[List[Face]]:
        """``detect`` of each image; each stage gets, in one ``detect_batch``, the images still without a face."""
        out: List[List[Face]] = [[] for _ in images]
        for name in self.stage_names[stages]:
            todo = [i for i, faces in enumerate(out) if not faces]
            if not todo:
                break
            for i, faces in zip(todo, create_detector(name, self.device).detect_batch([images[i] for i in todo])):
                out[i] = faces
        return out

    @property
    def batched(self) -> bool:
        return any(DETECTORS.spec(n).batch for n in self.stage_names)


@register_detector(DetectorSpec("auto", "dlib-hog, falling back to mtcnn when HOG finds no face (default)",
                                licence="Boost (dlib), MIT (facenet-pytorch)", stages=("dlib-hog", "mtcnn")))
def _auto(spec, weights, device):
    return Cascade(spec, spec.stages, device=device)


# --- already aligned crops ------------------------------------------------------------------------

class AlignedCrop(Detector):
    """No detection: the image is an ArcFace crop (insightface's ``.bin`` sets, ``train.rec``), so its five points
    are the template's (:func:`idbench.align.arcface_template`) and the face is the whole crop."""

    def _boxes(self, image):
        from .align import arcface_template

        h, w = image.shape[:2]
        try:
            lm5 = arcface_template(w)
        except ValueError:
            lm5 = None
        if h != w or lm5 is None:
            raise InputError(f"detector 'aligned' takes square ArcFace crops (112, 224, ... px), got {w}x{h}")
        return [(dlib_box_from_landmarks5(lm5), 1.0, lm5)]


@register_detector(DetectorSpec("aligned", "none: the images are already aligned ArcFace crops (112x112; .bin sets)"))
def _aligned(spec, weights, device):
    return AlignedCrop(spec)
