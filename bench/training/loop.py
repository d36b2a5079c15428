"""The training loop: set up data, network, head and optimiser, restore a checkpoint, run the steps.

One CPU, one GPU or several processes under ``torchrun`` (DDP: gloo on CPU, nccl on GPU). The global
batch is the same whatever the world size: a seeded ``DistributedSampler`` shuffles per epoch and rank
``r`` takes positions ``r, r+W, ...`` of the permutation, so the union of the ranks' step-``s`` batches
is positions ``[sB, (s+1)B)`` of the one-process order; batch norms use global-batch statistics
(:mod:`.batchnorm` on CPU, ``SyncBatchNorm`` on GPU). Mixed precision (autocast + GradScaler) on GPU.
"""

from __future__ import annotations

import importlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from idbench.errors import InputError

from .arch import Arch, Preprocessed, build_arch
from .batchnorm import convert_batch_norms
from .config import TrainConfig, check_resume, config_dict, resolve_defaults, train_identities, warmup_steps
from .data import CropDataset, PseudoSwapper
from .dist import Dist, setup_distributed
from .export import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, backbone_state_dict, export_encoder, load_checkpoint,
                     rng_state, save_run, set_rng_state)
from .freeze import freeze_layers
from .logs import Logger
from .sources import open_source
from .guarded import check_validation, restore_best, start_validation, validation_set
from .validation import Guard, ValSet
from .loss import MarginHead, Trainee, default_margin
from .partial_fc import ShardedMarginHead, ShardedTrainee, sharded_optimizer_state


@dataclass
class _Run:
    """Everything one training run holds, built by :func:`_setup` and advanced by :func:`_step`."""

    cfg: TrainConfig
    d: Dist
    out: Path
    arch: Arch
    ds: CropDataset
    net: nn.Module
    head: MarginHead
    trainee: Trainee
    model: nn.Module  # the trainee, DDP-wrapped under torchrun
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    use_amp: bool
    local_bs: int
    meta: dict
    step: int = 0
    val: Optional[ValSet] = None
    guard: Optional[Guard] = None
    stopped: Optional[str] = None  # the guard's message when it stopped the run

    @property
    def steps_per_epoch(self) -> int:
        return self.meta["steps_per_epoch"]

    @property
    def total(self) -> int:
        return self.meta["total_steps"]


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


def _resume_checkpoint(cfg: TrainConfig, out: Path) -> Optional[dict]:
    """The checkpoint to resume from (``None``: a fresh run); its settings must match ``cfg``."""
    if not cfg.resume:
        return None
    path = out / "last.pt" if cfg.resume == "auto" else Path(cfg.resume)
    if path.is_file():
        ckpt = load_checkpoint(path)
        check_resume(ckpt["config"], cfg, path)
        return ckpt
    if cfg.resume != "auto":
        raise InputError(f"checkpoint {path} not found")
    return None


def _dataset(cfg: TrainConfig, arch: Arch, swapper: Optional[Callable]) -> CropDataset:
    alignment = cfg.alignment or arch.spec.alignment
    data = open_source(cfg.data, alignment, train_identities(cfg))
    if len(data) == 0:
        raise InputError(f"no training images in {cfg.data} ({alignment}) for the chosen identities")
    h, w = arch.spec.input_size
    if data.image(0).shape[:2] != (h, w):
        raise InputError(f"{arch.name} takes {h}x{w} crops; {cfg.data}/{alignment} holds "
                         f"{data.image(0).shape[1]}x{data.image(0).shape[0]}")
    return CropDataset(data, cfg.blend_prob, cfg.k_partners, cfg.flip, cfg.seed,
                       swapper if swapper is not None else PseudoSwapper(cfg.blend_mask))


def _network(cfg: TrainConfig, arch: Arch, d: Dist) -> nn.Module:
    """The preprocessing-wrapped backbone on the device, batch norms over the global batch."""
    net = Preprocessed(arch.module, arch.spec)
    if cfg.sync_bn:
        if d.device.type == "cpu":  # a separate gloo group keeps batch-norm collectives apart from DDP's
            net = convert_batch_norms(net, torch.distributed.new_group(backend="gloo") if d.world > 1 else None)
        elif d.world > 1:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    return net.to(d.device)


def _optimiser(cfg: TrainConfig, net: nn.Module, head: MarginHead, total: int, warmup: int, use_amp: bool):
    params = [{"params": [p for p in net.parameters() if p.requires_grad]},
              {"params": list(head.parameters()), "lr": cfg.head_lr if cfg.head_lr is not None else cfg.lr}]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _poly_lambda(total, warmup, cfg.lr_power))
    return opt, sched, torch.amp.GradScaler("cuda", enabled=use_amp)


def _schedule(cfg: TrainConfig, n_images: int, d: Dist) -> tuple:
    """(per-rank batch, steps per epoch, total steps)."""
    if cfg.batch_size % d.world:
        raise InputError(f"the global batch {cfg.batch_size} does not divide over {d.world} processes")
    spe = n_images // cfg.batch_size
    if spe < 1:
        raise InputError(f"{n_images} training images are fewer than one global batch of {cfg.batch_size}")
    return cfg.batch_size // d.world, spe, cfg.steps if cfg.steps else cfg.epochs * spe


def _setup(cfg: TrainConfig, d: Dist, out: Path, ckpt: Optional[dict], swapper: Optional[Callable]) -> _Run:
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    arch = build_arch(cfg.arch, cfg.init if ckpt is None else None, cfg.blend_prob, cfg.export_name)
    frozen = freeze_layers(arch.module, cfg.freeze_until, cfg.trainable_fraction)
    ds = _dataset(cfg, arch, swapper)
    local_bs, spe, total = _schedule(cfg, len(ds), d)
    net = _network(cfg, arch, d)
    with torch.no_grad():
        emb_size = net.eval()(torch.zeros(2, 3, *arch.spec.input_size, device=d.device)).shape[1]
    net.train()
    margin = cfg.margin if cfg.margin is not None else default_margin(cfg.loss)
    sharded = cfg.sharded_head and d.world > 1
    head = (ShardedMarginHead(emb_size, len(ds.classes), cfg.loss, cfg.scale, margin) if sharded
            else MarginHead(emb_size, len(ds.classes))).to(d.device)
    if ckpt is None and cfg.head_init == "centroids":
        centroids = class_centroids(net, ds, d)
        head.load_full(centroids) if sharded else head.weight.data.copy_(centroids)
    use_amp = d.device.type == "cuda" if cfg.amp == "auto" else cfg.amp == "on"
    opt, sched, scaler = _optimiser(cfg, net, head, total, warmup_steps(cfg, spe), use_amp)
    ddp = (lambda m: nn.parallel.DistributedDataParallel(
        m, device_ids=[d.device.index] if d.device.type == "cuda" else None)) if d.world > 1 else (lambda m: m)
    if sharded:  # DDP over the network only: each rank's head shard is its own
        trainee = model = ShardedTrainee(ddp(net), head)
    else:
        trainee = Trainee(net, head, cfg.loss, cfg.scale, margin)
        model = ddp(trainee)
    val = validation_set(cfg, arch.spec)
    meta = {"classes": ds.classes, "arch": arch.name, "export_name": arch.export_name,
            "alignment": cfg.alignment or arch.spec.alignment, "spec": arch.spec.name, "embedding_size": emb_size,
            "steps_per_epoch": spe, "total_steps": total, "freeze": frozen,
            "warmup": warmup_steps(cfg, spe)}
    return _Run(cfg, d, out, arch, ds, net, head, trainee, model, opt, sched, scaler, use_amp, local_bs, meta,
                val=val, guard=Guard(cfg.val_margin) if val is not None else None)


def _restore(run: _Run, ckpt: dict) -> None:
    """Continue exactly where ``ckpt`` stopped: weights, optimiser, schedule, scaler, RNG states, step."""
    run.arch.module.load_state_dict(ckpt["model"])
    opt_state = ckpt["optimizer"]
    if isinstance(run.head, ShardedMarginHead):  # this rank's rows of the full head and of its momentum
        run.head.load_full(ckpt["head"]["weight"])
        opt_state = sharded_optimizer_state(run.head, opt_state, ckpt["head_momentum"])
    else:
        run.head.load_state_dict(ckpt["head"])
    run.opt.load_state_dict(opt_state)
    run.sched.load_state_dict(ckpt["scheduler"])
    if ckpt.get("scaler"):
        run.scaler.load_state_dict(ckpt["scaler"])
    run.step = int(ckpt["step"])
    set_rng_state(ckpt["rng"])
    if run.guard is not None and ckpt.get("guard"):
        run.guard = Guard(run.cfg.val_margin, ckpt["guard"]["start"], ckpt["guard"]["best"])


def _save(run: _Run) -> None:
    sharded = isinstance(run.head, ShardedMarginHead)
    if sharded:  # collectives: every rank takes part
        head = {"weight": run.head.full_weight().cpu()}
        momentum = run.opt.state.get(run.head.weight, {}).get("momentum_buffer")
        momentum = run.head.gather_rows(momentum).cpu() if momentum is not None else None
    if not run.d.main:
        return
    if not sharded:
        head, momentum = {k: v.cpu() for k, v in run.head.state_dict().items()}, None
    state = {"head_momentum": momentum, "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": run.step,
             "epoch": run.step // run.steps_per_epoch, "model": backbone_state_dict(run.arch.module),
             "head": head, "optimizer": run.opt.state_dict(),
             "scheduler": run.sched.state_dict(), "scaler": run.scaler.state_dict() if run.use_amp else None,
             "rng": rng_state(), "config": config_dict(run.cfg), "world_size": run.d.world,
             "guard": run.guard.state() if run.guard is not None else None, **run.meta}
    save_run(run.out, state, run.step, run.cfg.keep)


def _step(run: _Run, x: torch.Tensor, y: torch.Tensor, blended: torch.Tensor) -> dict:
    """One optimiser step on a (per-rank) batch; returns the global-batch log record."""
    d, cfg = run.d, run.cfg
    x, y = x.to(d.device, non_blocking=True), y.to(d.device, non_blocking=True)
    with torch.autocast(device_type=d.device.type, dtype=torch.float16, enabled=run.use_amp):
        per_sample, *out = run.model(x, y)
    run.opt.zero_grad(set_to_none=True)
    run.scaler.scale(per_sample.mean()).backward()
    run.scaler.unscale_(run.opt)
    gnorm = torch.nn.utils.clip_grad_norm_(list(run.trainee.parameters()),
                                           cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
    lr = run.opt.param_groups[0]["lr"]
    run.scaler.step(run.opt)
    run.scaler.update()
    run.sched.step()
    run.step += 1
    if isinstance(run.head, ShardedMarginHead):  # per_sample already covers the global batch on every rank
        y_all, pred = out
        tot_loss, tot_correct, n = per_sample.detach().double().sum().item(), (pred == y_all).sum().item(), len(y_all)
        tot_blend = d.all_sum([blended.sum().item()])[0]
    else:
        correct = (out[0].detach().argmax(1) == y).sum().item()
        tot_loss, tot_correct, tot_blend, n = d.all_sum(
            [per_sample.detach().double().sum().item(), correct, blended.sum().item(), len(y)])
    return {"step": run.step, "epoch": (run.step - 1) // run.steps_per_epoch, "loss": tot_loss / n,
            "accuracy": tot_correct / n, "lr": lr, "blend_rate": tot_blend / n, "grad_norm": float(gnorm), "n": n}


class EpochBatches:
    """The batch sampler of the one training DataLoader: the current epoch's batches of ``(epoch, row)``,
    replaced at every epoch (it is iterated in the main process, so the workers can stay alive)."""

    def __init__(self, batches=()):
        self.batches = list(batches)

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


PREFETCH = 4  # batches each worker prepares ahead


def make_loader(ds, batches, workers: int, pin: bool) -> torch.utils.data.DataLoader:
    """The training DataLoader: persistent workers, ``PREFETCH`` batches ahead each, pinned memory on GPU."""
    return torch.utils.data.DataLoader(ds, batch_sampler=batches, num_workers=workers, pin_memory=pin,
                                       persistent_workers=workers > 0, prefetch_factor=PREFETCH if workers else None)


def _epoch_batches(run: _Run, sampler) -> list:
    """The rest of the current epoch's batches (from the resume point), in the seeded global order."""
    spe = run.steps_per_epoch
    epoch = run.step // spe
    sampler.set_epoch(epoch)
    run.ds.set_epoch(epoch)
    order = list(sampler)
    first = run.step - epoch * spe
    n_batches = min(spe, first + run.total - run.step)
    return [[(epoch, i) for i in order[j * run.local_bs:(j + 1) * run.local_bs]] for j in range(first, n_batches)]


def _run_steps(run: _Run, logger: Logger) -> List[float]:
    from tqdm.auto import tqdm

    cfg = run.cfg
    sampler = torch.utils.data.distributed.DistributedSampler(
        run.ds, num_replicas=run.d.world, rank=run.d.rank, shuffle=True, seed=cfg.seed, drop_last=False)
    losses: List[float] = []
    bar = tqdm(total=run.total, initial=run.step, desc="train", unit="step",
               disable=not (run.d.main and cfg.progress), dynamic_ncols=True)
    t_last = time.time()
    batches = EpochBatches()
    loader = make_loader(run.ds, batches, cfg.workers, run.d.device.type == "cuda")
    while run.step < run.total:
        batches.batches = _epoch_batches(run, sampler)
        for x, y, blended in loader:
            rec = _step(run, x, y, blended)
            n = rec.pop("n")
            losses.append(rec["loss"])
            now = time.time()
            if run.step % cfg.log_every == 0 or run.step == run.total:
                logger.log({**rec, "samples_per_s": n / max(now - t_last, 1e-9), "time": now})
            t_last = now
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec['accuracy']:.3f}", lr=f"{rec['lr']:.2e}")
            if run.val is not None and (run.step % run.steps_per_epoch == 0 or run.step == run.total):
                run.stopped = check_validation(run, bar.write)
            if run.step % cfg.save_every == 0 or run.step == run.total or run.stopped:
                _save(run)
                run.d.barrier()
            if run.step >= run.total or run.stopped:
                break
        if run.stopped:
            break
    bar.close()
    return losses


def _export(run: _Run) -> Optional[Path]:
    """RUN/encoder.onnx + RUN/encoder.toml of the trained backbone (named ``<arch spec>.<run folder>``); an export
    that fails (an operator the ONNX exporter lacks) is one warning: the run's checkpoints stay valid."""
    import dataclasses
    import sys

    from idbench.errors import IdbenchError

    spec = dataclasses.replace(run.arch.spec, embedding_size=run.meta["embedding_size"])
    about = (f"{run.arch.spec.name} trained by bench train (--blend-prob {run.cfg.blend_prob}, step {run.step} of "
             f"{run.total}, {len(run.ds.classes)} identities)")
    try:
        return export_encoder(run.out, run.arch.module, spec, f"{run.arch.spec.name}.{run.out.resolve().name}", about)
    except IdbenchError as e:
        run.meta["export_error"] = str(e)
        print(f"warning: {e}", file=sys.stderr)
        return None


def _train(cfg: TrainConfig, d: Dist, swapper: Optional[Callable]) -> dict:
    out = Path(cfg.out)
    if d.main:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    d.barrier()
    ckpt = _resume_checkpoint(cfg, out)
    run = _setup(cfg, d, out, ckpt, swapper)
    if ckpt is not None:
        _restore(run, ckpt)
    logger = Logger(out, d.main, resume_step=run.step)
    start_validation(run, ckpt is None)
    if d.main:
        (out / "train.json").write_text(json.dumps({"config": config_dict(cfg), **run.meta, "world_size": d.world},
                                                   indent=2, default=str))
    losses = _run_steps(run, logger)
    if run.stopped:
        restore_best(run)
    encoder = _export(run) if d.main else None
    d.barrier()
    return {"step": run.step, "losses": losses, "out": str(out), "backbone": str(out / "backbone.pth"),
            "last": str(out / "last.pt"), "encoder": str(encoder) if encoder else None, "net": run.net.eval(),
            "rank": d.rank, "stopped": run.stopped,
            "validation": run.guard.state() if run.guard is not None else None, **run.meta}


def train(cfg: TrainConfig, swapper: Optional[Callable] = None) -> dict:
    """Train; returns a summary (final step, losses, paths). See :mod:`idbench.bench.train`."""
    for mod in cfg.plugins:
        importlib.import_module(mod)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    if cfg.head_init not in ("random", "centroids"):
        raise InputError(f"head_init must be 'random' or 'centroids', got {cfg.head_init!r}")
    cfg = resolve_defaults(cfg)
    d = setup_distributed(cfg.device)
    try:
        return _train(cfg, d, swapper)
    finally:
        if d.initialised_here:
            torch.distributed.destroy_process_group()

