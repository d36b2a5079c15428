"""``facenet.vggface2`` / ``facenet.casia``: FaceNet Inception-ResNet-v1 from facenet-pytorch.

The weights are facenet-pytorch's conversions of David Sandberg's TensorFlow FaceNet models, the
files ``InceptionResnetV1(pretrained=...)`` downloads into ``$TORCH_HOME/checkpoints``
(``~/.cache/torch/checkpoints``): ``20180402-114759-vggface2.pt`` and ``20180408-102900-casia-webface.pt``.
idbench looks there and in ``$IDBENCH_HOME/weights/`` and never downloads; it builds
``InceptionResnetV1(pretrained=None, classify=False)`` and loads the state dict itself, strictly
(the files also hold the training classifier ``logits``, 8631 VGGFace2 or 10575 CASIA-WebFace
classes, which is how a file given to the wrong entry is recognised).

Input: facenet-pytorch's MTCNN crop (``mtcnn160``: MTCNN's box + 14 px margin, 160x160; the pipeline finds
MTCNN's face matching the run's face, ``box_detector="mtcnn"``, whatever detector the run uses), RGB,
``(pixel - 127.5) / 128`` (``fixed_image_standardization``); output 512-d, L2-normalised by the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from idbench.errors import WeightsFormatError
from idbench.weights import WeightSource

from .base import TorchEncoder
from .registry import ENCODERS, register_encoder
from .spec import EncoderSpec

FACENET_RELEASES = "https://github.com/timesler/facenet-pytorch/releases/tag/v2.2.9"
TRUNK_FLOATS = 23_512_224  # parameters and BN statistics of InceptionResnetV1 without logits

#: entry tag -> (weight file, classes of its logits layer, data set)
FACENET_MODELS = {
    "vggface2": ("20180402-114759-vggface2.pt", 8631, "VGGFace2"),
    "casia": ("20180408-102900-casia-webface.pt", 10575, "CASIA-WebFace"),
}
_DATA_PAPERS = {"vggface2": "Cao et al., VGGFace2 (FG 2018)",
                "casia": "Yi et al., Learning Face Representation from Scratch (CASIA-WebFace, arXiv:1411.7923)"}


def facenet_source(filename: str) -> WeightSource:
    return WeightSource(
        filename,
        f"facenet-pytorch's releases ({FACENET_RELEASES}); InceptionResnetV1(pretrained=...) downloads it to "
        f"$TORCH_HOME/checkpoints",
        search=("$TORCH_HOME/checkpoints",),
        min_bytes=int(4 * TRUNK_FLOATS * 0.9),
    )


class FaceNetEncoder(TorchEncoder):
    """TorchEncoder around facenet-pytorch's ``InceptionResnetV1`` (embedding mode)."""

    batch_size = 64

    def __init__(self, spec: EncoderSpec, weights_path: Optional[Path], num_classes: int, device: str = "cpu"):
        import torch
        from torch import nn

        from idbench.checkpoints import load_state_dict_checked, read_state_dict

        try:
            from facenet_pytorch import InceptionResnetV1
        except ImportError as e:
            raise ImportError(f"{spec.name} needs facenet-pytorch: pip install facenet-pytorch ({e})") from None
        if weights_path is None:
            raise WeightsFormatError(f"{spec.name} needs a weight file ({spec.weights[0].filename})")
        state = read_state_dict(weights_path, spec.weights[0].origin)
        logits = state.get("logits.weight")
        if logits is not None:
            classes = int(logits.shape[0]) if logits.ndim == 2 else -1
            if classes != num_classes:
                other = next((f"facenet.{tag}" for tag, (_, n, _) in FACENET_MODELS.items() if n == classes), None)
                guess = f"; it looks like the weights of {other}" if other else ""
                raise WeightsFormatError(f"{weights_path}: classifier has {classes} classes, {spec.name} was trained "
                                         f"with {num_classes}{guess}")
        with torch.device("meta"):  # no random initialisation: every tensor comes from the file
            module = InceptionResnetV1(pretrained=None, classify=False, num_classes=num_classes)
            if logits is not None:
                module.logits = nn.Linear(512, num_classes)  # unused for embeddings; present so loading is strict
        load_state_dict_checked(module, state, "a facenet-pytorch InceptionResnetV1", weights_path)
        super().__init__(spec, module, weights_path, device)


def _register(tag: str) -> None:
    filename, classes, dataset = FACENET_MODELS[tag]
    spec = EncoderSpec(
        name=f"facenet.{tag}", input_size=(160, 160), alignment="mtcnn160", colour="RGB",
        mean=(127.5, 127.5, 127.5), std=(128.0, 128.0, 128.0), embedding_size=512, l2_normalised=True,
        backend="torch", weights=(facenet_source(filename),), box_detector="mtcnn",
        recipe="facenet-pytorch MTCNN(image_size=160, margin=14) on a numpy RGB image: MTCNN's own box "
               "(whatever detector the run uses) + 14 px of the output size, int() truncation, cv2.resize "
               "INTER_AREA to 160x160; (x - 127.5) / 128 (fixed_image_standardization)",
        licence=f"facenet-pytorch and davidsandberg/facenet: MIT; trained on {dataset}, whose own terms apply",
        paper=f"Schroff, Kalenichenko, Philbin, FaceNet (CVPR 2015); Szegedy et al., Inception-v4/Inception-ResNet "
              f"(AAAI 2017); {_DATA_PAPERS[tag]}",
        description=f"FaceNet Inception-ResNet-v1 trained on {dataset} (Sandberg's {filename[:15]} model, "
                    f"facenet-pytorch port)",
    )

    @register_encoder(spec)
    def _factory(spec, weights_path, device="cpu"):
        return FaceNetEncoder(spec, weights_path, classes, device)


for _tag in FACENET_MODELS:
    _register(_tag)

ENCODERS.set_default("facenet", "facenet.vggface2")  # facenet-pytorch's default pretrained model
