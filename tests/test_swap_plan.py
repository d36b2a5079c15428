"""``bench swap`` and ``bench run`` plan a pair swapper's pairs with one function: the same photos, faces,
seed and parameters give the same (source, target) pairs, edge cases included (a face whose landmarks run
off its image, a face too small, ``align_partners``, the ``random`` rule, a swapper other than ``blend``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np
import pytest

from idbench.faces import Face
from idbench.pipeline import file_item
from idbench.swapper import BlendSwapper, PairSwapper, SwapContext, SwapResult
from test_swapper import synth_face, synth_image


@dataclass
class _Table:  # the part of idbench.pipeline.EmbeddingTable a swapper's plan reads
    paths: List[str]
    faces: List[Face]
    images: list = field(default_factory=list)

    def item(self, r):
        return self.images[r]


class _Copy(PairSwapper):
    """A trivial pair swapper (the target frame as is): the default planning of every PairSwapper."""

    name = "copy-test"

    def swap(self, source_image, source_face, target_image, target_face):
        return SwapResult(target_image, np.zeros(target_image.shape[:2], np.float32), {}, target_face)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    import cv2

    root = tmp_path_factory.mktemp("plan")
    rng = np.random.default_rng(3)
    ids, paths, faces = [], [], []
    for i in range(16):
        ident = f"p{i % 5}"
        face = synth_face(rng.uniform(90, 110), rng.uniform(85, 105), rng.uniform(80, 115), rng.uniform(0.85, 1.15),
                          rng.uniform(0.85, 1.15), rng.uniform(-0.2, 0.2), 0.02, rng)
        if i == 4:
            face = synth_face(cx=40, scale=110)  # inner landmarks off the left edge: neither source nor partner
        if i == 9:
            face = synth_face(scale=20)  # landmark extent below 32 px
        p = root / ident / f"{i:02d}.png"
        p.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(p), synth_image(50 + i)[:, :, ::-1])
        ids.append(ident), paths.append(str(p)), faces.append(face)
    return ids, paths, faces


def _run_pairs(sw, ids, paths, faces):
    """``bench run``'s plan: the swapper's :meth:`plan` over the run's table."""
    table = _Table(paths, faces, [file_item(p) for p in paths])
    items, fails = sw.plan(SwapContext(table, np.asarray(ids)))
    return {it.source: it.target for it in items}


def _swap_pairs(sw, ids, paths, faces):
    """``bench swap``'s plan: :meth:`swap_batch` on the image files (the function ``bench swap`` calls)."""
    out = sw.swap_batch(paths, faces, ids, paths=paths)
    return {i: r.provenance["target_index"] for i, r in enumerate(out) if "target_index" in r.provenance}


@pytest.mark.parametrize("make", [
    lambda s: BlendSwapper(k=4, seed=s),
    lambda s: BlendSwapper(k=4, seed=s, align_partners=True),
    lambda s: BlendSwapper(k=4, seed=s, partner="random"),
    lambda s: _Copy(k=4, seed=s),
], ids=["blend", "blend-aligned", "blend-random", "pair-swapper"])
def test_bench_swap_and_bench_run_plan_the_same_pairs(photos, make):
    ids, paths, faces = photos
    for seed in (0, 1):
        sw = make(seed)
        run, swap = _run_pairs(sw, ids, paths, faces), _swap_pairs(sw, ids, paths, faces)
        assert run == swap
        assert 4 not in run and 9 not in run and 4 not in run.values() and 9 not in run.values()
        assert len(run) == 14 and all(ids[s] != ids[t] for s, t in run.items())
    assert _run_pairs(make(0), ids, paths, faces) != _run_pairs(make(1), ids, paths, faces)  # the seed matters
