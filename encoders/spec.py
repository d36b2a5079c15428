"""The typed contract of an identity encoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from idbench.align import FITS  # the 5-point fit directions (align imports no OpenCV at import time)
from idbench.registry import Spec

ALIGNMENTS = ("arcface112", "dlib150", "mtcnn160", "ffhq256", "none")
LAYOUTS = ("NCHW", "NHWC")
COLOURS = ("RGB", "BGR")


@dataclass(frozen=True)
class EncoderSpec(Spec):
    """What an encoder expects and gives back.

    Attributes:
        name: registry name, ``family.tag`` (``arcface.r100``, ``dlib``).
        input_size: (height, width) of the aligned face the network takes.
        alignment: one of :data:`ALIGNMENTS`; how :func:`idbench.align.align_face` crops the face.
        colour: channel order the *network* wants ("RGB" or "BGR"); idbench always hands RGB in and the
            encoder swaps if needed.
        mean, std: per-channel normalisation on 0..255 pixel values, in the network's channel order:
            ``x = (pixel - mean) / std``.
        embedding_size: length of the embedding.
        l2_normalised: whether the *network* already outputs unit vectors (idbench normalises anyway).
        backend: "torch", "onnx", "torchscript", "dlib" or "keras".
        weights, licence, paper, description, options: the shared :class:`~idbench.registry.Spec` fields
            (keyword-only): the weight file(s) (empty when the factory needs none), provenance shown by
            ``bench list encoders``, declared factory options.
        layout: the network's input layout ("NCHW" or "NHWC"; graph backends only).
        output: the graph output read as the embedding ("" when the graph has one output).
        fit: the 5-point fit direction of ``arcface112`` (:func:`idbench.align.fitted_matrix`):
            ``image_to_template`` (insightface's ``norm_crop``) or ``template_to_image`` (``matlab_cp2tform``).
        box_detector: the detector whose box / points the official recipe crops from ("" = the run's
            detector); the pipeline finds that detector's face matching the run's face (FaceNet: "mtcnn").
        recipe: the official crop and preprocessing, in words (shown by ``bench list encoders``).
        flip_test: the embedding is the sum of the network's outputs for the face and its mirror image, as
            arcface_torch's and CurricularFace's verification evaluate (``bench run --flip-test``).
    """

    name: str
    input_size: Tuple[int, int]
    alignment: str
    colour: str
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    embedding_size: int
    l2_normalised: bool
    backend: str
    layout: str = "NCHW"
    output: str = ""
    fit: str = "image_to_template"
    box_detector: str = ""
    recipe: str = ""
    flip_test: bool = False

    def __post_init__(self) -> None:
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"{self.name}: alignment must be one of {ALIGNMENTS}, got {self.alignment!r}")
        if self.colour not in COLOURS:
            raise ValueError(f"{self.name}: colour must be RGB or BGR, got {self.colour!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"{self.name}: layout must be NCHW or NHWC, got {self.layout!r}")
        if self.fit not in FITS:
            raise ValueError(f"{self.name}: fit must be one of {FITS}, got {self.fit!r}")
