"""Pseudo-swaps split across ``torchrun`` ranks: each rank builds, detects and embeds its share.

Under ``torchrun`` every rank detects and embeds its shard of the dataset and rank 0 gathers the
table and runs the analyses. The pseudo-swaps of a swap plan (the bias analysis, the decomposition
variants) need that whole table, so rank 0 sends it with the plan's items: rank ``r`` of ``w`` takes the
contiguous block ``[r*n/w, (r+1)*n/w)`` of the ``n`` items, and the embeddings (and failures) come back to
rank 0 only, concatenated in rank order, which is plan order: the same rows and failures, in the same
order, as one process. The other ranks wait in :func:`serve_swap_shares` until rank 0 closes the service
(:func:`swap_shares_closed`, also when it fails), so they never wait for a message that will not come.

Each rank prints one line per share to stderr (``idbench rank R/W: DESC items [LO, HI) ...``).
One process (or a swapper that cannot be pickled): everything runs here, as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

_DONE = None  # the message that ends serve_swap_shares


def _world() -> Tuple[int, int]:
    """(rank, world size) of an initialised process group; (0, 1) otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def share_bounds(n: int, world: int) -> List[Tuple[int, int]]:
    """Each rank's contiguous block of ``n`` items: sizes differ by at most one, in rank order."""
    return [(r * n // world, (r + 1) * n // world) for r in range(world)]


def _picklable(obj) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:  # noqa: BLE001 - any reason: the work then stays on rank 0
        return False
    return True


def _embed_share(sw, items, ctx, encoders, cfg, cache, desc: str, lo: int, hi: int) -> dict:
    """This rank's block of the items embedded: per embedded face its plan index and embeddings."""
    from .swap_eval import embed_swaps

    S = embed_swaps(sw, items[lo:hi], ctx, encoders, cfg, cache, desc=desc, total=hi - lo)
    rank, world = _world()
    print(f"idbench rank {rank}/{world}: {desc} items [{lo}, {hi}) of {len(items)}: {len(S.paths)} embedded, "
          f"{len(S.skipped)} failed", file=sys.stderr, flush=True)
    return {"index": [lo + S.item(r).meta["index"] for r in range(len(S.paths))], "paths": list(S.paths),
            "face_index": S.face_index, "faces": list(S.faces), "skipped": list(S.skipped),
            "embeddings": S.embeddings}


def _merged(parts: Sequence[dict], encoders) -> object:
    """The gathered shares as one EmbeddingTable whose ``item(r).meta["index"]`` is the plan index."""
    from idbench.pipeline import DetectedImage, EmbeddingTable

    index = [i for p in parts for i in p["index"]]
    images = [DetectedImage(Path(p), "", [], meta={"index": i}) for p, i in
              zip([x for part in parts for x in part["paths"]], index)]
    emb = {n: np.concatenate([p["embeddings"][n] for p in parts]).astype(np.float32, copy=False) for n in encoders}
    return EmbeddingTable([x for p in parts for x in p["paths"]],
                          np.concatenate([np.asarray(p["face_index"], np.int64) for p in parts]),
                          [f for p in parts for f in p["faces"]], emb, [s for p in parts for s in p["skipped"]],
                          images, np.arange(len(index), dtype=np.int64))


def split_embed_swaps(sw, items, ctx, encoders, cfg, cache, desc: str = "swaps"):
    """``embed_swaps(sw, items, ...)`` with the items split across the ``torchrun`` ranks (rank 0 calls it;
    the others serve in :func:`serve_swap_shares`). Returns an EmbeddingTable (on rank 0) whose rows are
    in plan order and whose ``item(r).meta["index"]`` is the row's index in ``items``."""
    from idbench.errors import IdbenchError

    rank, world = _world()
    items = list(items)
    if world <= 1 or rank != 0 or not _picklable(sw):
        from .swap_eval import embed_swaps

        return embed_swaps(sw, items, ctx, encoders, cfg, cache, desc=desc, total=len(items))
    import torch.distributed as dist

    names = list(encoders)
    dist.broadcast_object_list([{"sw": sw, "items": items, "ctx": ctx, "encoders": names, "desc": desc}], src=0)
    lo, hi = share_bounds(len(items), world)[0]
    mine = _embed_share(sw, items, ctx, encoders, cfg, cache, desc, lo, hi)
    parts: Optional[List[dict]] = [None] * world
    dist.gather_object(mine, parts, dst=0)
    broken = [p for p in parts if isinstance(p, str)]
    if broken:  # a rank could not do its share: the run stops with its one-line reason
        raise IdbenchError(broken[0])
    return _merged(parts, names)


def serve_swap_shares(cfg, encoders: Dict[str, object], cache) -> dict:
    """On ranks other than 0: embed this rank's share of every swap plan rank 0 sends, until it closes.
    Returns ``{"swap_shares": number of plans served}``."""
    import torch.distributed as dist

    rank, world = _world()
    if world <= 1 or rank == 0:
        return {"swap_shares": 0}
    cfg = dataclasses.replace(cfg, progress=False)  # rank 0 shows the progress
    served = 0
    while True:
        box = [None]
        dist.broadcast_object_list(box, src=0)
        msg = box[0]
        if msg is _DONE:
            return {"swap_shares": served}
        lo, hi = share_bounds(len(msg["items"]), world)[rank]
        try:
            mine = _embed_share(msg["sw"], msg["items"], msg["ctx"], {n: encoders[n] for n in msg["encoders"]},
                                cfg, cache, msg["desc"], lo, hi)
        except Exception as e:  # noqa: BLE001 - reported to rank 0, which stops the run with it
            mine = f"rank {rank}: {msg['desc']} failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        dist.gather_object(mine, None, dst=0)
        served += 1


@contextlib.contextmanager
def swap_shares_closed() -> Iterator[None]:
    """Around rank 0's run: when it ends (or fails), the ranks waiting in :func:`serve_swap_shares` return."""
    try:
        yield
    finally:
        rank, world = _world()
        if world > 1 and rank == 0:
            import torch.distributed as dist

            dist.broadcast_object_list([_DONE], src=0)
