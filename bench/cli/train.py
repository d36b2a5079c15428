"""``bench train`` (and the data it reads: ``bench prepare``, :mod:`.prepare`).

Examples::

    bench prepare --out data/faces_prep --split-identities 0.2 --seed 0 /path/to/identity_folders
    bench train --data data/faces_prep --out runs/arcface_r50 --arch iresnet50 --blend-prob 0
    bench train --data data/faces_prep --out runs/blendface_r50 --arch iresnet50 --blend-prob 0.5
    torchrun --nproc_per_node 4 -m idbench.bench.train --data ... --out ... --arch iresnet100 --blend-prob 0.5
    bench train --data data/faces_prep --out runs/dlib_bf --arch dlib.resnet_v1_torch --lr 0.002 \\
        --head-init centroids --blend-prob 0.5 --epochs 10 --batch-size 32
    bench train --data data/faces_prep --out runs/mf_bf --arch encoders/contracts/mobileface.toml --lr 0.01 \\
        --head-init centroids --blend-prob 0.5 --epochs 6 --batch-size 32 [--freeze-until LAYER]
    bench run --encoders runs/mf_bf/encoder.toml --dataset folder --root DIR   # every run exports encoder.toml
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .options import Device, KPartners, Progress, Seed, out_option

NAME = "train"


def command(
    data: str = typer.Option(..., "--data", help="DATA_DIR written by bench prepare, a folder with insightface's "
                                                 "train.rec/train.idx (rec:DIR), or of aligned crops (aligned:DIR)"),
    out: out_option("run folder (checkpoints, backbone.pth, logs)") = ...,
    arch: str = typer.Option("iresnet50", "--arch",
                             help="iresnet18|34|50|100, dlib.resnet_v1_torch, a registered torch or ONNX encoder, "
                                  "a contract FILE.toml (ONNX/TorchScript) or an insightface-style FILE.onnx"),
    init: Optional[str] = typer.Option(None, "--init", help="initial backbone weights (checkpoint / state dict; "
                                                            "for a contract or ONNX arch: an earlier backbone.pth)"),
    alignment: Optional[str] = typer.Option(None, "--alignment", help="prepared alignment (default: the arch's)"),
    identities: Optional[Path] = typer.Option(None, "--identities",
                                              help="identity list (default DATA/train_identities.txt if present)"),
    loss: str = typer.Option("arcface", "--loss", help="arcface (m=0.5) | cosface (m=0.35)"),
    scale: float = typer.Option(64.0, "--scale"),
    margin: Optional[float] = typer.Option(None, "--margin", help="default 0.5 arcface / 0.35 cosface"),
    blend_prob: float = typer.Option(0.0, "--blend-prob", help="BlendFace blending probability (0.5 BlendFace, 0 ArcFace)"),
    k_partners: KPartners = 100,
    flip: bool = typer.Option(True, "--flip/--no-flip", help="random horizontal flip (after blending)"),
    batch_size: int = typer.Option(128, "--batch-size", help="global batch size (all processes together)"),
    epochs: int = typer.Option(20, "--epochs"),
    steps: Optional[int] = typer.Option(None, "--steps", help="total optimiser steps (overrides --epochs)"),
    lr: Optional[float] = typer.Option(None, "--lr", help="default 0.1 from scratch, 0.01 when fine-tuning "
                                                         "(--init, a contract/ONNX file, dlib's ResNet)"),
    head_lr: Optional[float] = typer.Option(None, "--head-lr", help="classifier learning rate (default --lr)"),
    momentum: float = typer.Option(0.9, "--momentum"),
    weight_decay: float = typer.Option(5e-4, "--weight-decay"),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps",
                                               help="linear warm-up; default one epoch when fine-tuning, else 0"),
    lr_power: float = typer.Option(2.0, "--lr-power", help="polynomial decay power"),
    grad_clip: float = typer.Option(5.0, "--grad-clip", help="gradient-norm clip (0: off)"),
    head_init: str = typer.Option("random", "--head-init", help="random | centroids (class means; for fine-tuning)"),
    freeze_until: Optional[str] = typer.Option(None, "--freeze-until",
                                               help="freeze every layer before LAYER (module or graph-node name)"),
    trainable_fraction: Optional[float] = typer.Option(
        None, "--trainable-fraction", help="train only the last layers holding this share (0-1] of the weights"),
    seed: Seed = 2048,
    device: Device = "auto",
    amp: str = typer.Option("auto", "--amp", help="auto (on for GPU) | on | off"),
    sync_bn: bool = typer.Option(True, "--sync-bn/--no-sync-bn", help="batch-norm statistics over the global batch"),
    workers: int = typer.Option(2, "--workers", help="data-loader workers per process"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads per process"),
    save_every: int = typer.Option(1000, "--save-every", help="checkpoint every N steps (and at the end)"),
    keep: int = typer.Option(3, "--keep", help="numbered checkpoints to keep (0: all)"),
    log_every: int = typer.Option(1, "--log-every"),
    resume: Optional[str] = typer.Option(None, "--resume", help="checkpoint to resume from, or 'auto' (OUT/last.pt)"),
    export_name: Optional[str] = typer.Option(None, "--export-name", help="encoder name backbone.pth loads into"),
    plugin: List[str] = typer.Option([], "--plugin", help="module to import first (registers encoders); repeatable"),
    blend_mask: str = typer.Option("landmarks", "--blend-mask", help="blend mask: landmarks | parsing:<BiSeNet .pth>"),
    progress: Progress = True,
    val: str = typer.Option("auto", "--val", help="validation (start + every epoch): auto (DATA/heldout_identities"
                                                  ".txt if present) | none | heldout[:FILE] | bin:PATH"),
    val_margin: float = typer.Option(0.02, "--val-margin",
                                     help="stop when validation AUC falls more than this below the start (0: never)"),
    val_flip: bool = typer.Option(False, "--val-flip/--no-val-flip", help="flip test in validation"),
    sharded_head: bool = typer.Option(False, "--sharded-head/--full-head",
                                      help="under torchrun: the classifier split by classes over the ranks"),
):
    """Train an identity encoder (ArcFace / CosFace loss, optional BlendFace blending); torchrun-ready."""
    from idbench.bench.train import TrainConfig, train

    cfg = TrainConfig(data=str(data), out=str(out), arch=arch, init=init, alignment=alignment,
                      identities=str(identities) if identities else None, loss=loss, scale=scale, margin=margin,
                      blend_prob=blend_prob, k_partners=k_partners, flip=flip, batch_size=batch_size, epochs=epochs,
                      steps=steps, lr=lr, head_lr=head_lr, momentum=momentum, weight_decay=weight_decay,
                      warmup_steps=warmup_steps, lr_power=lr_power, grad_clip=grad_clip, head_init=head_init,
                      freeze_until=freeze_until, trainable_fraction=trainable_fraction,
                      seed=seed, device=device, amp=amp, sync_bn=sync_bn, workers=workers, threads=threads,
                      save_every=save_every, keep=keep, log_every=log_every, resume=resume,
                      export_name=export_name, plugins=list(plugin), blend_mask=blend_mask, progress=progress,
                      val=val, val_margin=val_margin, val_flip=val_flip,
                      sharded_head=sharded_head)
    res = train(cfg)
    if res["rank"] == 0 and res.get("stopped"):
        typer.echo(f"stopped: {res['stopped']}", err=True)
    if res["rank"] == 0:
        loss = f"loss {res['losses'][-1]:.4f}; " if res["losses"] else ""
        loads = f" (create_encoder({res['export_name']!r}, weights=...))" if res["export_name"] else ""
        typer.echo(f"step {res['step']}: {loss}encoder -> {res['encoder']} (bench run --encoders {res['encoder']}); "
                   f"backbone -> {res['backbone']}{loads}; checkpoint -> {res['last']}")
    if res.get("stopped"):
        raise typer.Exit(1)
