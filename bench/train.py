"""Training of identity encoders: ArcFace / CosFace margin softmax, with optional BlendFace augmentation.

The recipe follows BlendFace's released training code (see ``docs/paper-protocol.md`` section 1):
an additive angular margin softmax (ArcFace, s=64, m=0.5; ``loss="cosface"`` gives the additive
cosine margin, m=0.35) over a classifier with L2-normalised weights, SGD (momentum 0.9, weight
decay 5e-4), polynomial decay (power 2) to zero, gradient-norm clipping at 5, and, with probability
``blend_prob`` per sample, the pseudo-swap augmentation: the anchor's inner face is blended onto a
partner (the nearest-landmark image of another identity among K random candidates) and the
result keeps the *anchor's* label; a random horizontal flip follows the blending. ``blend_prob``
0.5 is BlendFace, 0 the paired ArcFace baseline.

Runs on one CPU, one GPU or several processes under ``torchrun`` (DistributedDataParallel, gloo
on CPU, nccl on GPU). The global batch is the same whatever the world size: a seeded
``DistributedSampler`` shuffles per epoch and rank ``r`` takes positions ``r, r+W, ...`` of the
permutation, so the union of the ranks' step-``s`` batches is positions ``[sB, (s+1)B)`` of the
one-process order; the per-sample augmentation draws come from a generator keyed by
``(seed, epoch, index)``, and batch norms use statistics over the global batch (a small all-reduce
batch norm on CPU, ``SyncBatchNorm`` on GPU). Mixed precision (``torch.autocast`` + ``GradScaler``)
on GPU.

Outputs in ``out``: ``checkpoints/step_NNNNNNN.pt`` every ``save_every`` steps and at the end
(model, head, optimizer, scheduler, scaler, RNG states, step, config), ``last.pt`` (the latest),
``backbone.pth`` (the backbone's plain state dict, the layout its encoder factory reads: e.g.
``create_encoder("arcface.r50", weights="RUN/backbone.pth")``, ``create_encoder("dlib.finetuned",
weights=...)``), ``log.jsonl`` and ``log.csv`` (step, epoch, loss, accuracy, lr, blend rate).
``resume`` continues exactly from a full checkpoint.

Entry points: :func:`train` (a :class:`TrainConfig`), ``bench train`` and ``python -m idbench.bench.train``.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import json
import math
import os
import random
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from idbench.errors import IdbenchError, InputError

from .prepare import PreparedSet, load_prepared, read_names

CHECKPOINT_VERSION = 1
LOG_FIELDS = ("step", "epoch", "loss", "accuracy", "lr", "blend_rate", "grad_norm", "samples_per_s", "time")


# =================================================================================================
# Margin softmax
# =================================================================================================

def margin_logits(cosine: torch.Tensor, labels: torch.Tensor, loss: str = "arcface", scale: float = 64.0,
                  margin: Optional[float] = None) -> torch.Tensor:
    """Scaled logits with the margin applied to each sample's target class.

    * ``arcface``: ``s * cos(theta_y + m)`` for the target (InsightFace's CombinedMarginLoss with
      (1, m, 0): where ``theta_y + m > pi`` the monotone continuation ``cos(theta_y) - m sin(m)`` is used);
    * ``cosface``: ``s * (cos(theta_y) - m)``.
    Other classes: ``s * cos(theta_j)``. ``cosine`` is N x C (float32), ``labels`` N (int64).
    """
    if margin is None:
        margin = default_margin(loss)
    cosine = cosine.float().clamp(-1.0, 1.0)
    target = cosine.gather(1, labels.view(-1, 1))
    if loss == "arcface":
        sin = torch.sqrt((1.0 - target * target).clamp_min(1e-9))
        cos_m = target * math.cos(margin) - sin * math.sin(margin)
        threshold = math.cos(math.pi - margin)
        new_target = torch.where(target > threshold, cos_m, target - math.sin(math.pi - margin) * margin)
    elif loss == "cosface":
        new_target = target - margin
    else:
        raise InputError(f"loss must be 'arcface' or 'cosface', got {loss!r}")
    logits = cosine.scatter(1, labels.view(-1, 1), new_target)
    return logits * scale


def default_margin(loss: str) -> float:
    return {"arcface": 0.5, "cosface": 0.35}.get(loss, 0.5)


class MarginHead(nn.Module):
    """Classifier with L2-normalised weights (C x D); ``forward`` gives the cosine N x C in float32."""

    def __init__(self, embedding_size: int, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(embeddings.float(), dim=1), F.normalize(self.weight.float(), dim=1))


def margin_loss(cosine: torch.Tensor, labels: torch.Tensor, loss: str = "arcface", scale: float = 64.0,
                margin: Optional[float] = None, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of :func:`margin_logits` (the ArcFace / CosFace loss)."""
    return F.cross_entropy(margin_logits(cosine, labels, loss, scale, margin), labels, reduction=reduction)


# =================================================================================================
# Pseudo-swap blending (BlendFace augmentation)
# =================================================================================================

def nearest_partners(landmarks68: np.ndarray, identities: Sequence, k: int = 100, seed: int = 0) -> np.ndarray:
    """For each image, the nearest-landmark image of another identity among ``k`` random candidates.

    :func:`idbench.swapper.blend.choose_partners` (normalised 68-point landmarks, seeded candidate
    draw); ``-1`` where no image of another identity exists.
    """
    from idbench.swapper.blend import choose_partners

    return np.asarray(choose_partners(landmarks68, identities, k, seed)[0], np.int64)


def blend_kernel(size: int) -> int:
    """The paper's 11x11 blur at 112 px, scaled to a crop of ``size`` px (odd)."""
    return max(3, int(round(11 * size / 112.0)) | 1)


class PseudoSwapper:
    """BlendFace's pseudo-swap of two aligned crops (:func:`idbench.swapper.blend.blend_aligned`).

    ``__call__(anchor, anchor_lm, partner, partner_lm, anchor_valid=None, partner_valid=None)`` -> the
    anchor's inner face, recoloured, on the partner (uint8), or ``None`` when the blend is rejected
    (masks overlap too little): the official code then silently keeps the anchor, and so does
    :class:`CropDataset`. ``*_valid``: 0/1 maps of the pixels that lie inside the original photo
    (nothing is blended on a crop's black border). ``mask`` is ``"landmarks"`` (hull of jaw and
    raised brows) or ``"parsing:<BiSeNet .pth>"``.
    """

    def __init__(self, mask: str = "landmarks", min_overlap: float = 0.5):
        self.mask, self.min_overlap = mask, min_overlap
        self._fn = None

    def __getstate__(self):  # the resolved mask function (a closure / network) is rebuilt per process
        return {"mask": self.mask, "min_overlap": self.min_overlap, "_fn": None}

    def __call__(self, anchor, anchor_lm, partner, partner_lm, anchor_valid=None,
                 partner_valid=None) -> Optional[np.ndarray]:
        from idbench.swapper.blend import SwapError, blend_aligned, resolve_mask_fn

        if self._fn is None:
            self._fn = resolve_mask_fn(self.mask)
        try:
            img, _ = blend_aligned(anchor, anchor_lm, partner, partner_lm, self._fn, blend_kernel(anchor.shape[0]),
                                   self.min_overlap, anchor_valid, partner_valid)
        except SwapError:
            return None
        return img


# =================================================================================================
# Data
# =================================================================================================

class CropDataset(torch.utils.data.Dataset):
    """Prepared crops with BlendFace augmentation and horizontal flips.

    ``__getitem__(i)`` -> (float tensor 3 x H x W, RGB 0..255; label; 1 if blended else 0). All
    random draws of sample ``i`` come from a generator keyed by ``(seed, epoch, i)``, so a sample
    is augmented the same way in any process, worker or resumed run. Labels are re-numbered
    0..K-1 over ``classes`` (sorted identity names).
    """

    def __init__(self, data: PreparedSet, blend_prob: float = 0.0, k_partners: int = 100, flip: bool = True,
                 seed: int = 0, swapper: Optional[Callable] = None):
        if not 0.0 <= blend_prob <= 1.0:
            raise InputError(f"blend_prob must be in [0, 1], got {blend_prob}")
        self.data = data
        self.classes = sorted(set(data.identities))
        index = {n: i for i, n in enumerate(self.classes)}
        self.labels = np.array([index[n] for n in data.identities], np.int64)
        self.blend_prob = float(blend_prob)
        self.k_partners = int(k_partners)
        self.flip = flip
        self.seed = int(seed)
        self.swapper = swapper if swapper is not None else PseudoSwapper()
        self.epoch = 0
        self._partners: Dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if self.blend_prob > 0:
            self.partners(self.epoch)

    def partners(self, epoch: int) -> np.ndarray:
        """The partner of every image for ``epoch`` (a fresh candidate draw per epoch)."""
        if epoch not in self._partners:
            self._partners = {epoch: nearest_partners(self.data.landmarks, self.data.identities, self.k_partners,
                                                      self.seed * 1_000_003 + epoch)}
        return self._partners[epoch]

    def sample(self, i: int, epoch: int) -> Tuple[np.ndarray, bool]:
        rng = np.random.default_rng([self.seed, epoch, int(i)])
        u_blend, u_flip = rng.random(2)
        img, valid = self.data.read(i)
        blended = False
        if self.blend_prob > 0 and u_blend < self.blend_prob:
            j = int(self.partners(epoch)[i])
            if j >= 0:
                partner, partner_valid = self.data.read(j)
                out = self.swapper(img, self.data.landmarks[i], partner, self.data.landmarks[j], valid, partner_valid)
                if out is not None:  # None: blend rejected, the anchor stays (as the official code)
                    img, blended = np.asarray(out, np.uint8), True
        if self.flip and u_flip < 0.5:
            img = img[:, ::-1]
        return np.ascontiguousarray(img), blended

    def __getitem__(self, i: int):
        img, blended = self.sample(i, self.epoch)
        x = torch.from_numpy(img).permute(2, 0, 1).float()
        return x, int(self.labels[i]), int(blended)


# =================================================================================================
# Architectures
# =================================================================================================

class Preprocessed(nn.Module):
    """``backbone((x - mean) / std)`` on RGB 0..255 input (channel order swapped first for BGR networks)."""

    def __init__(self, backbone: nn.Module, spec):
        super().__init__()
        self.backbone = backbone
        self.bgr = spec.colour == "BGR"
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bgr:
            x = x.flip(1)
        return self.backbone((x - self.mean) / self.std)


@dataclass
class Arch:
    """A trainable architecture: the module, its input contract and the encoder its weights load into."""

    name: str
    module: nn.Module
    spec: object  # EncoderSpec: alignment, input size, mean/std, embedding size
    export_name: str  # registered encoder whose factory reads backbone.pth


_IRESNET = re.compile(r"^(?:iresnet|arcface\.r|blendface\.r)(\d+)$")


def _iresnet_module(depth: int) -> nn.Module:
    from idbench.encoders import iresnet as mod

    for attr in (f"iresnet{depth}",):
        if hasattr(mod, attr):
            return getattr(mod, attr)()
    for attr in ("build_iresnet", "create_iresnet", "make_iresnet"):
        if hasattr(mod, attr):
            return getattr(mod, attr)(depth)
    raise IdbenchError(f"idbench.encoders.iresnet has no constructor for depth {depth} (iresnet{depth})")


def _iresnet_spec(depth: int, blend_prob: float):
    from idbench.encoders import ENCODERS, EncoderSpec

    for name in ((f"blendface.r{depth}", f"arcface.r{depth}") if blend_prob > 0 else
                 (f"arcface.r{depth}", f"blendface.r{depth}")):
        if name in ENCODERS:
            return ENCODERS.spec(name)
    return EncoderSpec(name=f"arcface.r{depth}", input_size=(112, 112), alignment="arcface112", colour="RGB",
                       mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5), embedding_size=512,
                       l2_normalised=False, backend="torch")


def build_arch(name: str, init: Optional[str] = None, blend_prob: float = 0.0,
               export_name: Optional[str] = None) -> Arch:
    """The trainable module for ``name``.

    * ``iresnet18|34|50|100`` (also ``arcface.rNN``, ``blendface.rNN``): InsightFace IResNet
      (:mod:`idbench.encoders.iresnet`), from scratch or from ``init`` (any checkpoint
      ``load_iresnet_checkpoint`` reads, or a ``backbone.pth``); exported for ``blendface.rNN``
      when ``blend_prob > 0``, else ``arcface.rNN``.
    * ``dlib.resnet_v1_torch``: dlib's ResNet from its shipped ``.dat`` (fine-tuning), or from a
      torch state dict given as ``init``; exported for ``dlib.finetuned``.
    * any other registered encoder whose factory returns a :class:`~idbench.encoders.TorchEncoder`:
      built by its factory with ``init`` as the weight file (``None``: the factory's own
      initialisation); exported under its own name.
    """
    import idbench.encoders  # noqa: F401  (registers the encoders)
    from idbench.encoders import ENCODERS, get_spec
    from idbench.encoders.base import TorchEncoder
    from idbench.weights import resolve_weights

    m = _IRESNET.match(name)
    if m:
        depth = int(m.group(1))
        module = _iresnet_module(depth)
        if init:
            from idbench.encoders import iresnet as mod

            if hasattr(mod, "load_iresnet_checkpoint"):
                try:
                    loaded = mod.load_iresnet_checkpoint(module, init)
                except TypeError:
                    loaded = mod.load_iresnet_checkpoint(init)
                module = loaded if isinstance(loaded, nn.Module) else module
            else:
                module.load_state_dict(_plain_state_dict(torch.load(init, map_location="cpu", weights_only=True)))
        spec = _iresnet_spec(depth, blend_prob)
        default_export = f"{'blendface' if blend_prob > 0 else 'arcface'}.r{depth}"
        return Arch(f"iresnet{depth}", module, spec, export_name or default_export)
    if name in ("dlib.resnet_v1_torch", "dlib.finetuned"):
        from idbench.encoders import dlib_finetuned  # noqa: F401  (registers dlib.finetuned)
        from idbench.encoders.dlib_resnet import DlibResNet, load_dlib_resnet

        spec = get_spec("dlib.resnet_v1_torch")
        if init and not str(init).endswith(".dat"):
            module = DlibResNet()
            module.load_state_dict(_plain_state_dict(torch.load(init, map_location="cpu", weights_only=True)))
        else:
            module = load_dlib_resnet(init or resolve_weights(spec.weights[0]))
        for p in module.parameters():
            p.requires_grad_(True)
        return Arch("dlib.resnet_v1_torch", module, spec, export_name or "dlib.finetuned")
    spec = ENCODERS.spec(name)
    path = None
    if init:
        path = resolve_weights(spec.weights[0], init) if spec.weights else Path(init)
    enc = ENCODERS.factory(name)(spec, path, "cpu")
    if not isinstance(enc, TorchEncoder):
        raise InputError(f"encoder {name} is not a torch module ({type(enc).__name__}); it cannot be trained")
    module = enc.module
    for p in module.parameters():
        p.requires_grad_(True)
    return Arch(name, module, spec, export_name or name)


def _plain_state_dict(sd) -> Dict[str, torch.Tensor]:
    """Unwrap ``{"state_dict": ...}`` / ``{"model": ...}`` and strip ``module.`` prefixes."""
    if isinstance(sd, dict):
        for key in ("backbone", "state_dict", "model"):
            if key in sd and isinstance(sd[key], dict):
                sd = sd[key]
                break
    return {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}


# =================================================================================================
# Global-batch batch norm on CPU
# =================================================================================================

class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: the gradient of each rank's input is the sum of all ranks' gradients."""

    @staticmethod
    def forward(ctx, t: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        out = t.clone()
        torch.distributed.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g = grad.contiguous().clone()
        torch.distributed.all_reduce(g, group=ctx.group)
        return g, None


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics cover the global batch (all ranks); CPU + gloo capable.

    Two differentiable all-reduces (sum/count, then centred sum of squares); the same code path
    with one process, so one- and multi-process runs compute the same numbers. Same parameters,
    buffers and state-dict keys as ``nn.BatchNorm1d/2d``.
    """

    def __init__(self, *args, group=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.group = group

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def _all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            return _AllReduceSum.apply(t, self.group if self.group is not None else dist.group.WORLD)
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and self.running_mean is not None:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        c = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        shape = [1, c] + [1] * (x.dim() - 2)
        xf = x.float()
        n_local = torch.tensor([x.numel() / c], dtype=torch.float32, device=x.device)
        s = self._all_reduce(torch.cat([xf.sum(dims), n_local]))
        n = s[-1]
        mean = s[:c] / n
        centred = xf - mean.view(shape)
        var = self._all_reduce((centred * centred).sum(dims)) / n
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                mom = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                unbiased = var * (n / (n - 1).clamp_min(1.0))
                self.running_mean.mul_(1 - mom).add_(mean.detach(), alpha=mom)
                self.running_var.mul_(1 - mom).add_(unbiased.detach(), alpha=mom)
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_batch_norms(module: nn.Module, group=None) -> nn.Module:
    """Replace every ``nn.BatchNorm1d/2d/3d`` by :class:`GlobalBatchNorm` (state copied)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats, group=group)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in list(module.named_children()):
        setattr(module, name, convert_batch_norms(child, group))
    return module


# =================================================================================================
# Configuration
# =================================================================================================

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
    lr: float = 0.1
    head_lr: Optional[float] = None  # default: lr
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: int = 0
    lr_power: float = 2.0
    grad_clip: float = 5.0
    head_init: str = "random"  # random | centroids
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

    # fields that must match between a checkpoint and the run resuming from it
    RESUME_KEYS = ("arch", "loss", "scale", "margin", "blend_prob", "k_partners", "flip", "batch_size", "epochs",
                   "steps", "lr", "head_lr", "momentum", "weight_decay", "warmup_steps", "lr_power", "seed",
                   "head_init")


def config_dict(cfg: TrainConfig) -> dict:
    return dataclasses.asdict(cfg)


# =================================================================================================
# Distributed helpers
# =================================================================================================

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialised_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def all_sum(self, values: Sequence[float]) -> List[float]:
        t = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        if self.world > 1:
            torch.distributed.all_reduce(t)
        return t.tolist()


def setup_distributed(device: str) -> Dist:
    """Initialise the process group from torchrun's environment (one process: nothing to do)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if device.startswith("cuda:"):
        use_cuda = True
    if use_cuda and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no GPU")
    if use_cuda:
        dev = torch.device(device if device.startswith("cuda:") and world == 1 else f"cuda:{local}")
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    d = Dist(rank, world, local, dev)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world,
                                             **({"device_id": dev} if use_cuda else {}))
        d.initialised_here = True
    return d


# =================================================================================================
# Checkpoints and logs
# =================================================================================================

def _rng_state() -> dict:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available() and len(st["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(st["cuda"])


def backbone_state_dict(module: nn.Module) -> Dict[str, torch.Tensor]:
    """Plain state dict of the backbone (no wrappers, prefixes or preprocessing buffers), on CPU."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: os.PathLike) -> dict:
    """A full training checkpoint written by :func:`train` (contains RNG states, hence weights_only=False)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != "idbench.train":
        raise InputError(f"{path} is not an idbench training checkpoint")
    return ckpt


def _read_log(path: Path) -> List[dict]:
    if not path.is_file():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


class Logger:
    """Appends step records to ``log.jsonl`` and ``log.csv`` (rank 0 only)."""

    def __init__(self, out: Path, enabled: bool, resume_step: int = 0):
        self.enabled = enabled
        self.jsonl, self.csv = out / "log.jsonl", out / "log.csv"
        if not enabled:
            return
        rows = [r for r in _read_log(self.jsonl) if r.get("step", 0) <= resume_step] if resume_step else []
        self.jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
        with open(self.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)

    def log(self, rec: dict) -> None:
        if not self.enabled:
            return
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(rec) + "\n")
        with open(self.csv, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore").writerow(rec)


# =================================================================================================
# Training
# =================================================================================================

class Trainee(nn.Module):
    """Network + margin head: ``forward(x, y) -> (per-sample loss, cosine)``; one module for DDP."""

    def __init__(self, net: nn.Module, head: MarginHead, loss: str, scale: float, margin: float):
        super().__init__()
        self.net, self.head = net, head
        self.loss, self.scale, self.margin = loss, scale, margin

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        emb = self.net(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            cos = self.head(emb.float())
            return margin_loss(cos, y, self.loss, self.scale, self.margin, reduction="none"), cos


def _poly_lambda(total: int, warmup: int, power: float) -> Callable[[int], float]:
    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        return max(0.0, 1.0 - (step - warmup) / max(1, total - warmup)) ** power

    return f


@torch.no_grad()
def class_centroids(net: nn.Module, ds: CropDataset, d: Dist, batch_size: int = 64) -> torch.Tensor:
    """Mean L2-normalised embedding of each class over the un-augmented training images (all ranks)."""
    was = net.training
    net.eval()
    n_cls = len(ds.classes)
    rows = list(range(d.rank, len(ds), d.world))
    sums = None
    counts = torch.zeros(n_cls, dtype=torch.float64, device=d.device)
    for s in range(0, len(rows), batch_size):
        chunk = rows[s:s + batch_size]
        x = torch.from_numpy(ds.data.images(chunk)).permute(0, 3, 1, 2).float().to(d.device)
        e = F.normalize(net(x).float(), dim=1).double()
        if sums is None:
            sums = torch.zeros(n_cls, e.shape[1], dtype=torch.float64, device=d.device)
        y = torch.as_tensor(ds.labels[chunk], device=d.device)
        sums.index_add_(0, y, e)
        counts.index_add_(0, y, torch.ones(len(chunk), dtype=torch.float64, device=d.device))
    if sums is None:  # a rank with no rows
        sums = torch.zeros(n_cls, net(torch.zeros(1, 3, *ds.data.image(0).shape[:2], device=d.device)).shape[1],
                           dtype=torch.float64, device=d.device)
    if d.world > 1:
        torch.distributed.all_reduce(sums)
        torch.distributed.all_reduce(counts)
    net.train(was)
    return F.normalize((sums / counts.clamp_min(1).unsqueeze(1)).float(), dim=1)


def _identities(cfg: TrainConfig) -> Optional[List[str]]:
    if cfg.identities:
        return read_names(cfg.identities)
    default = Path(cfg.data) / "train_identities.txt"
    return read_names(default) if default.is_file() else None


def _check_resume(ckpt_cfg: dict, cfg: TrainConfig, path: Path) -> None:
    diff = [k for k in TrainConfig.RESUME_KEYS if ckpt_cfg.get(k) != getattr(cfg, k)]
    if diff:
        raise InputError(f"{path} was trained with other settings: "
                         + ", ".join(f"{k}={ckpt_cfg.get(k)!r} (now {getattr(cfg, k)!r})" for k in diff)
                         + "; resume with the same settings, or train into a new --out folder")


def train(cfg: TrainConfig, swapper: Optional[Callable] = None) -> dict:
    """Train; returns a summary (final step, losses, paths). See the module docstring."""
    for mod in cfg.plugins:
        importlib.import_module(mod)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    if cfg.head_init not in ("random", "centroids"):
        raise InputError(f"head_init must be 'random' or 'centroids', got {cfg.head_init!r}")
    d = setup_distributed(cfg.device)
    try:
        return _train(cfg, d, swapper)
    finally:
        if d.initialised_here:
            torch.distributed.destroy_process_group()


def _train(cfg: TrainConfig, d: Dist, swapper: Optional[Callable]) -> dict:
    from tqdm.auto import tqdm

    out = Path(cfg.out)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "checkpoints").mkdir(exist_ok=True)
    d.barrier()

    ckpt = None
    if cfg.resume:
        path = out / "last.pt" if cfg.resume == "auto" else Path(cfg.resume)
        if path.is_file():
            ckpt = load_checkpoint(path)
            _check_resume(ckpt["config"], cfg, path)
        elif cfg.resume != "auto":
            raise InputError(f"checkpoint {path} not found")

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    arch = build_arch(cfg.arch, cfg.init if ckpt is None else None, cfg.blend_prob, cfg.export_name)
    alignment = cfg.alignment or arch.spec.alignment
    data = load_prepared(cfg.data, alignment, _identities(cfg))
    if len(data) == 0:
        raise InputError(f"no training images in {cfg.data}/{alignment} for the chosen identities")
    h, w = arch.spec.input_size
    if data.image(0).shape[:2] != (h, w):
        raise InputError(f"{arch.name} takes {h}x{w} crops; {cfg.data}/{alignment} holds "
                         f"{data.image(0).shape[1]}x{data.image(0).shape[0]}")
    ds = CropDataset(data, cfg.blend_prob, cfg.k_partners, cfg.flip, cfg.seed,
                     swapper if swapper is not None else PseudoSwapper(cfg.blend_mask))
    n_cls = len(ds.classes)
    if cfg.batch_size % d.world:
        raise InputError(f"the global batch {cfg.batch_size} does not divide over {d.world} processes")
    local_bs = cfg.batch_size // d.world
    spe = len(ds) // cfg.batch_size
    if spe < 1:
        raise InputError(f"{len(ds)} training images are fewer than one global batch of {cfg.batch_size}")
    total = cfg.steps if cfg.steps else cfg.epochs * spe
    margin = cfg.margin if cfg.margin is not None else default_margin(cfg.loss)

    net = Preprocessed(arch.module, arch.spec)
    use_amp = d.device.type == "cuda" if cfg.amp == "auto" else cfg.amp == "on"
    if cfg.sync_bn:
        if d.device.type == "cpu":  # a separate gloo group keeps batch-norm collectives apart from DDP's
            net = convert_batch_norms(net, torch.distributed.new_group(backend="gloo") if d.world > 1 else None)
        elif d.world > 1:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    net = net.to(d.device)
    with torch.no_grad():
        probe = net.eval()(torch.zeros(2, 3, h, w, device=d.device))
    emb_size = probe.shape[1]
    net.train()
    head = MarginHead(emb_size, n_cls).to(d.device)
    if ckpt is None and cfg.head_init == "centroids":
        head.weight.data.copy_(class_centroids(net, ds, d))
    trainee = Trainee(net, head, cfg.loss, cfg.scale, margin)

    params = [{"params": [p for p in net.parameters() if p.requires_grad]},
              {"params": list(head.parameters()), "lr": cfg.head_lr if cfg.head_lr is not None else cfg.lr}]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _poly_lambda(total, cfg.warmup_steps, cfg.lr_power))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    step = 0
    if ckpt is not None:
        arch.module.load_state_dict(ckpt["model"])
        head.load_state_dict(ckpt["head"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        step = int(ckpt["step"])
        _set_rng_state(ckpt["rng"])
    model: nn.Module = trainee
    if d.world > 1:
        model = nn.parallel.DistributedDataParallel(
            trainee, device_ids=[d.device.index] if d.device.type == "cuda" else None)

    logger = Logger(out, d.main, resume_step=step)
    meta = {"classes": ds.classes, "arch": arch.name, "export_name": arch.export_name, "alignment": alignment,
            "spec": arch.spec.name, "embedding_size": emb_size, "steps_per_epoch": spe, "total_steps": total}
    if d.main:
        (out / "train.json").write_text(json.dumps({"config": config_dict(cfg), **meta, "world_size": d.world},
                                                   indent=2, default=str))

    def save(at_step: int) -> None:
        if not d.main:
            return
        state = {"format": "idbench.train", "version": CHECKPOINT_VERSION, "step": at_step,
                 "epoch": at_step // spe, "model": backbone_state_dict(arch.module),
                 "head": {k: v.cpu() for k, v in head.state_dict().items()}, "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "scaler": scaler.state_dict() if use_amp else None,
                 "rng": _rng_state(), "config": config_dict(cfg), "world_size": d.world, **meta}
        numbered = out / "checkpoints" / f"step_{at_step:07d}.pt"
        _atomic_save(state, numbered)
        shutil.copyfile(numbered, out / ".last.pt.tmp")
        os.replace(out / ".last.pt.tmp", out / "last.pt")
        _atomic_save(state["model"], out / "checkpoints" / f"step_{at_step:07d}.backbone.pth")
        _atomic_save(state["model"], out / "backbone.pth")
        if cfg.keep > 0:
            old = sorted((out / "checkpoints").glob("step_*.pt"))[:-cfg.keep]
            for p in old:
                p.unlink(missing_ok=True)
                p.with_name(p.name[:-3] + ".backbone.pth").unlink(missing_ok=True)

    sampler = torch.utils.data.distributed.DistributedSampler(
        ds, num_replicas=d.world, rank=d.rank, shuffle=True, seed=cfg.seed, drop_last=False)
    losses: List[float] = []
    bar = tqdm(total=total, initial=step, desc="train", unit="step", disable=not (d.main and cfg.progress),
               dynamic_ncols=True)
    t_last = time.time()
    amp_dtype = torch.float16
    while step < total:
        epoch = step // spe
        sampler.set_epoch(epoch)
        ds.set_epoch(epoch)
        order = list(sampler)
        first = step - epoch * spe
        n_batches = min(spe, first + total - step)
        batches = [order[j * local_bs:(j + 1) * local_bs] for j in range(first, n_batches)]
        loader = torch.utils.data.DataLoader(ds, batch_sampler=batches, num_workers=cfg.workers,
                                             pin_memory=d.device.type == "cuda")
        for x, y, blended in loader:
            x = x.to(d.device, non_blocking=True)
            y = y.to(d.device, non_blocking=True)
            with torch.autocast(device_type=d.device.type, dtype=amp_dtype, enabled=use_amp):
                per_sample, cos = model(x, y)
            loss = per_sample.mean()
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            gnorm = torch.nn.utils.clip_grad_norm_(list(trainee.parameters()), cfg.grad_clip if cfg.grad_clip > 0
                                                   else float("inf"))
            lr = opt.param_groups[0]["lr"]
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            correct = (cos.detach().argmax(1) == y).sum().item()
            tot_loss, tot_correct, tot_blend, n = d.all_sum(
                [per_sample.detach().double().sum().item(), correct, blended.sum().item(), len(y)])
            rec_loss = tot_loss / n
            losses.append(rec_loss)
            now = time.time()
            if step % cfg.log_every == 0 or step == total:
                rec = {"step": step, "epoch": epoch, "loss": rec_loss, "accuracy": tot_correct / n, "lr": lr,
                       "blend_rate": tot_blend / n, "grad_norm": float(gnorm),
                       "samples_per_s": n / max(now - t_last, 1e-9), "time": now}
                logger.log(rec)
            t_last = now
            bar.update(1)
            bar.set_postfix(loss=f"{rec_loss:.3f}", acc=f"{tot_correct / n:.3f}", lr=f"{lr:.2e}")
            if step % cfg.save_every == 0 or step == total:
                save(step)
                d.barrier()
            if step >= total:
                break
    bar.close()
    return {"step": step, "losses": losses, "out": str(out), "backbone": str(out / "backbone.pth"),
            "last": str(out / "last.pt"), "net": net.eval(), "rank": d.rank, **meta}


def _main() -> None:  # python -m idbench.bench.train (torchrun entry point)
    import typer

    from .train_cli import train_cmd

    app = typer.Typer(add_completion=False)
    app.command()(train_cmd)
    app()


if __name__ == "__main__":
    _main()
