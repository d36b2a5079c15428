"""``TrainConfig``: everything ``bench train`` takes, and the checks a resumed run must pass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from idbench.errors import InputError

from ..prepare import read_names


@dataclass
class TrainConfig:
    """Everything ``bench train`` takes (see ``bench train --help``)."""

    data: str
    out: str
    arch: str = "iresnet50"
    init: Optional[str] = None
    alignment: Optional[str] = None  # default: the architecture's
    identities: Optional[str] = None  # file of identity names; default DATA/train_identities.txt if present
    loss: str = "arcface"
    scale: float = 64.0
    margin: Optional[float] = None  # default 0.5 (arcface) / 0.35 (cosface)
    blend_prob: float = 0.0
    k_partners: int = 100
    flip: bool = True
    batch_size: int = 128  # global
    epochs: int = 20
    steps: Optional[int] = None  # total steps; overrides epochs
    lr: Optional[float] = None  # default: 0.1 from scratch, FINETUNE_LR from pretrained weights (is_finetune)
    head_lr: Optional[float] = None  # default: lr
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: Optional[int] = None  # default: 0 from scratch, one epoch when fine-tuning
    lr_power: float = 2.0
    grad_clip: float = 5.0
    head_init: str = "random"  # random | centroids
    freeze_until: Optional[str] = None  # layer: everything before it is frozen (see .freeze)
    trainable_fraction: Optional[float] = None  # train only the last parameters holding this share of the weights
    seed: int = 2048
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (on GPU) | on | off
    sync_bn: bool = True
    workers: int = 2
    threads: Optional[int] = None
    save_every: int = 1000
    keep: int = 3  # numbered checkpoints kept (0: all)
    log_every: int = 1
    resume: Optional[str] = None  # a checkpoint path, or "auto" (OUT/last.pt if present)
    export_name: Optional[str] = None
    plugins: List[str] = field(default_factory=list)  # modules imported first (register extra encoders)
    blend_mask: str = "landmarks"  # inner-face mask of the blend: landmarks | parsing:<BiSeNet .pth>
    progress: bool = True
    val: Optional[str] = "auto"  # validation set: auto | none | heldout[:FILE] | bin:PATH (see .guarded)
    val_margin: float = 0.02  # stop when validation AUC falls more than this below the starting model's (0: never)
    val_flip: bool = False
    sharded_head: bool = False  # under torchrun: Partial-FC-style classifier split over the ranks (.partial_fc)  # validation embeddings with insightface's flip test

    # fields that must match between a checkpoint and the run resuming from it
    RESUME_KEYS = ("arch", "loss", "scale", "margin", "blend_prob", "k_partners", "flip", "batch_size", "epochs",
                   "steps", "lr", "head_lr", "momentum", "weight_decay", "warmup_steps", "lr_power", "seed",
                   "head_init", "freeze_until", "trainable_fraction")


SCRATCH_LR = 0.1
FINETUNE_LR = 0.01  # measured: README "Guarded fine-tuning" (mobileface, 50 / 25 identities of ../shared/data/faces)


def is_finetune(cfg: TrainConfig) -> bool:
    """Training starts from pretrained weights: ``--init``, a contract / ONNX file, or dlib's ResNet (its shipped
    weights); a registered architecture without ``--init`` starts from its factory's initialisation."""
    return (cfg.init is not None or cfg.arch.lower().endswith((".toml", ".onnx"))
            or cfg.arch in ("dlib.resnet_v1_torch", "dlib.finetuned"))


def resolve_defaults(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the learning rate chosen for from-scratch training or fine-tuning when not given."""
    if cfg.lr is not None:
        return cfg
    return dataclasses.replace(cfg, lr=FINETUNE_LR if is_finetune(cfg) else SCRATCH_LR)


def warmup_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """``--warmup-steps``, or by default one epoch when fine-tuning (the centroid head and the pretrained
    features meet gently) and none from scratch."""
    if cfg.warmup_steps is not None:
        return cfg.warmup_steps
    return steps_per_epoch if is_finetune(cfg) else 0


def config_dict(cfg: TrainConfig) -> dict:
    return dataclasses.asdict(cfg)


def train_identities(cfg: TrainConfig) -> Optional[List[str]]:
    if cfg.identities:
        return read_names(cfg.identities)
    from .sources import source_kind

    folder = source_kind(cfg.data)[1]
    default = (folder.parent if folder.suffix == ".rec" else folder) / "train_identities.txt"
    return read_names(default) if default.is_file() else None


def check_resume(ckpt_cfg: dict, cfg: TrainConfig, path: Path) -> None:
    diff = [k for k in TrainConfig.RESUME_KEYS if ckpt_cfg.get(k) != getattr(cfg, k)]
    if diff:
        raise InputError(f"{path} was trained with other settings: "
                         + ", ".join(f"{k}={ckpt_cfg.get(k)!r} (now {getattr(cfg, k)!r})" for k in diff)
                         + "; resume with the same settings, or train into a new --out folder")
