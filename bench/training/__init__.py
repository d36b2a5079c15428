"""Training of identity encoders (``bench train``), one module per stage.

==============  ===============================================================================
:mod:`.config`  ``TrainConfig`` (everything ``bench train`` takes), resume checks, identity list
:mod:`.data`    ``CropDataset``: prepared crops, BlendFace pseudo-swap augmentation, flips
:mod:`.loss`    ArcFace / CosFace margin softmax, ``MarginHead``, ``Trainee`` (network + head)
:mod:`.arch`    trainable architectures (IResNet, dlib's ResNet, any torch, ONNX or TorchScript encoder), ``--init``
:mod:`.freeze`  ``--freeze-until`` / ``--trainable-fraction``: which weights train
:mod:`.loop`    ``train``: set-up, exact resume, the step loop, progress bar
:mod:`.export`  full checkpoints, ``last.pt``, ``backbone.pth``, ``encoder.onnx`` + ``encoder.toml``
:mod:`.dist`    one process / torchrun process groups
:mod:`.batchnorm` global-batch batch norm on CPU (gloo)
:mod:`.logs`    ``log.jsonl`` / ``log.csv``
:mod:`.sources` data sources: prepared folders, insightface RecordIO (:mod:`.recordio`), aligned crops
:mod:`.landmarks` 68 landmarks + partner tables of aligned-crop sources, cached next to the data
:mod:`.validation` verification on held-out identities / ``.bin`` sets; :mod:`.guarded`: the guarded run
:mod:`.partial_fc` ``--sharded-head``: the classifier split by classes over the ranks
==============  ===============================================================================

``python -m idbench.bench.train`` (and ``torchrun ... -m idbench.bench.train``) is the entry point;
:mod:`idbench.bench.train` re-exports the public names below.
"""

from .arch import Arch, Preprocessed, build_arch
from .batchnorm import GlobalBatchNorm, convert_batch_norms
from .config import TrainConfig, config_dict
from .data import CropDataset, PseudoSwapper, blend_kernel, nearest_partners
from .dist import Dist, setup_distributed
from .export import CHECKPOINT_VERSION, backbone_state_dict, export_encoder, load_checkpoint
from .freeze import freeze_layers, ordered_parameters
from .logs import LOG_FIELDS, Logger
from .loop import class_centroids, train
from .loss import MarginHead, Trainee, default_margin, margin_logits, margin_loss

__all__ = ["Arch", "Preprocessed", "build_arch", "GlobalBatchNorm", "convert_batch_norms", "TrainConfig",
           "config_dict", "CropDataset", "PseudoSwapper", "blend_kernel", "nearest_partners", "Dist",
           "setup_distributed", "CHECKPOINT_VERSION", "backbone_state_dict", "export_encoder", "load_checkpoint",
           "freeze_layers", "ordered_parameters", "LOG_FIELDS",
           "Logger", "class_centroids", "train", "MarginHead", "Trainee", "default_margin", "margin_logits",
           "margin_loss"]
