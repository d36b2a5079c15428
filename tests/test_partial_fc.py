"""The sharded (Partial-FC-style) margin head on 2 CPU ranks (gloo, spawned processes) against the full head."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from idbench.bench.training.partial_fc import shard_bounds  # noqa: E402

N, D, C = 8, 16, 11  # global batch, embedding size, classes (shards of 6 and 5)


def _problem():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(N, D, generator=g) * 3
    weight = torch.randn(C, D, generator=g)
    labels = torch.tensor([0, 10, 5, 6, 3, 7, 10, 1])  # targets in both shards, on both ranks
    weight[labels[2]] = emb[2] + 0.05 * weight[labels[2]]  # one sample near its class: large-cosine branch too
    return emb, weight, labels


def _rank(rank: int, world: int, init: str, out: str) -> None:
    import torch.distributed as dist

    from idbench.bench.training.partial_fc import ShardedMarginHead

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    torch.set_num_threads(1)
    emb, weight, labels = _problem()
    n = N // world
    e = emb[rank * n:(rank + 1) * n].clone().requires_grad_(True)
    head = ShardedMarginHead(D, C, "arcface", 64.0, 0.5, ddp_average=False)
    head.load_full(weight)
    per_sample, y, pred = head(e, labels[rank * n:(rank + 1) * n])
    per_sample.mean().backward()
    torch.save({"loss": per_sample.detach(), "y": y, "pred": pred, "emb_grad": e.grad,
                "weight_grad": head.weight.grad, "full": head.full_weight()}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_shard_bounds_cover_every_class_once():
    spans = [shard_bounds(11, 3, r) for r in range(3)]
    assert spans == [(0, 4), (4, 8), (8, 11)]


def test_sharded_head_gives_the_full_heads_loss_and_gradients(tmp_path):
    import torch.multiprocessing as mp

    from idbench.bench.training.loss import MarginHead, margin_loss

    mp.spawn(_rank, args=(2, f"file://{tmp_path / 'store'}", str(tmp_path)), nprocs=2, join=True)
    r = [torch.load(tmp_path / f"rank{k}.pt", weights_only=True) for k in range(2)]
    emb, weight, labels = _problem()
    emb.requires_grad_(True)
    head = MarginHead(D, C)
    with torch.no_grad():
        head.weight.copy_(weight)
    cos = head(emb)
    per_sample = margin_loss(cos, labels, "arcface", 64.0, 0.5, reduction="none")
    per_sample.mean().backward()
    diffs = {
        "loss": max(float((r[k]["loss"] - per_sample.detach()).abs().max()) for k in range(2)),
        "weight_grad": float((torch.cat([r[0]["weight_grad"], r[1]["weight_grad"]]) - head.weight.grad).abs().max()),
        "emb_grad": float((torch.cat([r[0]["emb_grad"], r[1]["emb_grad"]]) - emb.grad).abs().max()),
    }
    print("sharded vs full head, max abs difference:", diffs)
    assert diffs["loss"] < 1e-4 and diffs["weight_grad"] < 1e-5 and diffs["emb_grad"] < 1e-5
    assert float(head.weight.grad.abs().max()) > 1e-3 and float(emb.grad.abs().max()) > 1e-3  # not trivially 0
    assert torch.equal(r[0]["y"], labels) and torch.equal(r[0]["pred"], cos.argmax(1))
    assert torch.equal(r[0]["full"], weight) and torch.equal(r[1]["full"], weight)
