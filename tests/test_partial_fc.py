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


def test_torchrun_with_sharded_head_matches_one_process_full_head(tmp_path):
    """2 ranks under torchrun with --sharded-head and 1 process with the full head: the same loss curve (gradient
    clipping off: the sharded run clips by each rank's own norm)."""
    import json
    import os
    import subprocess
    import sys

    import test_train as tt

    from idbench.bench.train import train

    data = tt._write_prepared(tmp_path / "data", n_ids=5)
    plug = tmp_path / "plugin"
    plug.mkdir()
    (plug / f"{tt.PLUGIN}.py").write_text(tt.PLUGIN_SRC)
    sys.path.insert(0, str(plug))
    try:
        single = train(tt._cfg(data, tmp_path / "one", steps=3, save_every=100, grad_clip=0.0, head_init="centroids",
                               val="none"))
    finally:
        sys.path.remove(str(plug))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plug), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           "-m", "idbench.bench.train", "--data", str(data), "--out", str(tmp_path / "two"), "--arch", "test.tiny",
           "--plugin", tt.PLUGIN, "--batch-size", "8", "--steps", "3", "--lr", "0.1", "--blend-prob", "0.5",
           "--k-partners", "5", "--workers", "0", "--save-every", "100", "--seed", "1", "--device", "cpu",
           "--threads", "1", "--no-progress", "--grad-clip", "0", "--head-init", "centroids", "--val", "none",
           "--sharded-head"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    two = [json.loads(x) for x in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    np.testing.assert_allclose([x["loss"] for x in two], single["losses"], rtol=1e-4)
    ck = torch.load(tmp_path / "two" / "last.pt", map_location="cpu", weights_only=False)  # RNG states: see #24
    assert ck["head"]["weight"].shape == (5, 16) and ck["head_momentum"].shape == (5, 16)
