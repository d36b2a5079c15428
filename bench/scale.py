"""Scale benchmark of the analysis phases: ``python -m idbench.bench.scale``.

Synthetic embeddings (128-D float32, dlib's size: a unit centre per identity plus noise) and 68-point
landmarks, with two identity structures:

* ``lfw``: LFW's heavy tail: image counts per identity from a power law on 1..530 (70% single-image
  identities, mean 2.3 images, as LFW's 13,233 images of 5,749 people), identities scaled with N;
* ``vggface2``: about 360 images per identity (uniform on 80..640, as VGGFace2's 80-843, mean 362).

Each size runs in its own subprocess (``--sizes``, default 10k, 100k, 1M faces), through the functions
``bench run`` calls, in its order: partner search (:func:`idbench.swapper.plan_partners`), the bias plan,
the bias scores and bootstrap, verification pairs, their scores and metrics, the gallery split, face ID
retrieval, the swaps' source means and the swaps' ID retrieval against every face. Per phase: wall time
and the peak resident memory above the phase's start (``/proc/self/statm`` polled every 5 ms); per size
the process's peak RSS. The exponent k of time ~ N^k is the least-squares slope of log time on log N.
CPU seconds (``time.process_time``, all threads) are the measure on a shared machine, where wall time
depends on the other processes; the exponents are fitted to them. Output: a markdown table (``--json
FILE`` for the numbers, ``--add FILE`` to put earlier runs in the table).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Dict, List

import numpy as np

DIM = 128
LIMIT_GB = 8.0
LIMIT_S = 30 * 60


def identity_counts(structure: str, n: int, seed: int = 0) -> np.ndarray:
    """Images per identity summing to ``n`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    if structure == "lfw":
        c = np.arange(1, 531)
        p = c ** -2.2  # LFW: 4,069 of 5,749 identities with one image; mean 2.3
        draws = rng.choice(c, size=n, p=p / p.sum())
    elif structure == "vggface2":
        draws = rng.integers(80, 641, size=max(1, n // 80))
    else:
        raise ValueError(f"unknown structure {structure!r}: lfw or vggface2")
    cum = np.cumsum(draws)
    k = int(np.searchsorted(cum, n)) + 1
    counts = draws[:k].copy()
    counts[-1] -= int(cum[k - 1] - n)
    return counts[counts > 0]


def synthetic(structure: str, n: int, seed: int = 0):
    """(labels, embeddings N x 128 float32 unit rows, landmarks N x 68 x 2 float32)."""
    rng = np.random.default_rng(seed)
    counts = identity_counts(structure, n, seed)
    ident = np.repeat(np.arange(len(counts)), counts)
    ident = ident[rng.permutation(n)]  # rows of an identity scattered, as in a folder walk of many sources
    centres = rng.standard_normal((len(counts), DIM), dtype=np.float32)
    emb = centres[ident]
    emb += 0.9 * rng.standard_normal((n, DIM), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    template = rng.uniform(0, 100, (68, 2)).astype(np.float32)
    lm = template + rng.standard_normal((n, 68, 2), dtype=np.float32) * 3
    labels = np.char.add("id", ident.astype(str))
    return labels, emb, lm


class _Face:
    __slots__ = ("landmarks68",)

    def __init__(self, lm):
        self.landmarks68 = lm


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Meter:
    """Wall time and peak RSS above the start of each phase."""

    def __init__(self):
        self.phases: Dict[str, dict] = {}
        self._peak = 0
        self._stop = threading.Event()
        threading.Thread(target=self._poll, daemon=True).start()

    def _poll(self):
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, _rss())

    @contextmanager
    def phase(self, name: str):
        base = _rss()
        self._peak = base
        t, c = time.perf_counter(), time.process_time()
        yield
        dt, dc = time.perf_counter() - t, time.process_time() - c
        self._peak = max(self._peak, _rss())
        self.phases[name] = {"seconds": dt, "cpu_seconds": dc, "peak_mb": max(0, self._peak - base) / 2 ** 20}
        print(f"  {name}: {dt:.1f} s ({dc:.1f} CPU-s), +{self.phases[name]['peak_mb']:.0f} MB, "
              f"RSS {_rss() / 2 ** 20:.0f} MB", file=sys.stderr, flush=True)  # progress of a long size


def run_size(structure: str, n: int, seed: int = 0) -> dict:
    """Every analysis phase once on ``n`` synthetic faces (in this process)."""
    from idbench import analysis as M
    from idbench.analysis.sampling import capped_indices
    from idbench.bench import encoder_analysis as EA
    from idbench.bench.swap_eval import label_means
    from idbench.swapper import plan_partners

    t0 = time.perf_counter()
    labels, emb, lm = synthetic(structure, n, seed)
    faces = [_Face(x) for x in lm]
    m = _Meter()
    with m.phase("plan_partners"):
        partner, _ = plan_partners(faces, labels, "nearest-landmark", 100, seed)
    del faces, lm
    with m.phase("plan_bias"):
        plan = EA.plan_bias(labels, partner, seed)
    rng = np.random.default_rng(seed + 1)
    src = np.array([s[1] for s in plan.swaps], np.int64)  # a swap keeps its source's identity, roughly
    swap_emb = emb[src] + 0.3 * rng.standard_normal((len(src), DIM), dtype=np.float32)
    swap_emb /= np.linalg.norm(swap_emb, axis=1, keepdims=True)
    with m.phase("bias_scores"):
        pos = EA.pair_scores(emb, plan.positive)
        neg = EA.pair_scores(emb, plan.negative)
        swp = np.einsum("ij,ij->i", emb[[s[0] for s in plan.swaps]], swap_emb).astype(np.float64)
    with m.phase("bias_gap"):
        M.bias_gap(pos, swp, neg, n_boot=1000, seed=seed)
    info: dict = {}
    with m.phase("verification_pairs"):
        pairs = EA.verification_pairs(labels, seed=seed, info=info)
    with m.phase("pair_scores"):
        s = EA.pair_scores(emb, pairs[:, :2])
    with m.phase("verification_metrics"):
        y = pairs[:, 2]
        M.eer(s, y), M.roc_auc(s, y), M.tar_at_far(s, y, 1e-3), M.verification_accuracy(s, y, 10, seed)
    with m.phase("gallery_split"):
        gal, probe = EA.gallery_split(labels)
    with m.phase("id_retrieval"):
        probe = probe[capped_indices(len(probe), EA.MAX_PROBES, seed)]
        M.id_retrieval(emb[probe], labels[probe], emb[gal], labels[gal], k=5)  # top-1 = its first column
    src_labels = labels[src]
    with m.phase("swap_source_means"):
        label_means(emb, labels, src_labels)
    with m.phase("swap_id_retrieval"):
        sel = capped_indices(len(src), EA.MAX_SWAP_PROBES, 0)
        M.id_retrieval(swap_emb[sel], src_labels[sel], emb, labels, k=1)
    return {"structure": structure, "n": n, "n_identities": int(len(np.unique(labels))),
            "n_pairs": int(len(pairs)), "pair_sampling": info, "phases": m.phases,
            "total_seconds": time.perf_counter() - t0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def exponent(ns: List[int], secs: List[float]) -> float:
    """Least-squares slope of log(seconds) on log(N)."""
    return float(np.polyfit(np.log(ns), np.log(np.maximum(secs, 1e-6)), 1)[0])


def table(runs: List[dict]) -> str:
    """The markdown: per structure, a row per phase (CPU s, wall s and peak MB per size; exponent of CPU time)."""
    out = []
    for structure in sorted({r["structure"] for r in runs}):
        rs = sorted((r for r in runs if r["structure"] == structure), key=lambda r: r["n"])
        ns = [r["n"] for r in rs]
        head = " | ".join(f"{n:,} faces: CPU s / wall s / MB" for n in ns)
        ids = ", ".join(f"{r['n_identities']:,} ids at {r['n']:,}" for r in rs)
        out += [f"**{structure}-like** ({ids}):", "",
                f"| phase | {head} | exponent (CPU) |", "|---|" + "---|" * len(ns) + "---|"]
        for ph in rs[0]["phases"]:
            cells = " | ".join(f"{r['phases'][ph].get('cpu_seconds', float('nan')):.2f} / "
                               f"{r['phases'][ph]['seconds']:.1f} / {r['phases'][ph]['peak_mb']:.0f}" for r in rs)
            k = exponent(ns, [r["phases"][ph].get("cpu_seconds", np.nan) for r in rs]) if len(rs) > 1 else np.nan
            out.append(f"| {ph} | {cells} | {k:.2f} |")
        tot = " | ".join(f"{sum(p.get('cpu_seconds', np.nan) for p in r['phases'].values()):.0f} / "
                         f"{r['total_seconds']:.0f} / {r['peak_rss_mb']:.0f} RSS" for r in rs)
        k = exponent(ns, [sum(p.get("cpu_seconds", np.nan) for p in r["phases"].values()) for r in rs]) \
            if len(rs) > 1 else np.nan
        out += [f"| all phases (wall: with data generation) | {tot} | {k:.2f} |", ""]
        big = rs[-1]
        fits = big["peak_rss_mb"] / 1024 <= LIMIT_GB and big["total_seconds"] <= LIMIT_S
        out.append(f"{big['n']:,} faces: peak RSS {big['peak_rss_mb'] / 1024:.2f} GB, {big['total_seconds'] / 60:.1f} min "
                   f"wall: {'within' if fits else 'NOT within'} {LIMIT_GB:.0f} GB and {LIMIT_S // 60} min.")
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m idbench.bench.scale", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma list of face counts")
    ap.add_argument("--structures", default="lfw,vggface2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the numbers here")
    ap.add_argument("--add", action="append", default=[], help="runs of an earlier --json to put in the table too")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # STRUCTURE:N, in a child process
    a = ap.parse_args(argv)
    if a.one:
        structure, n = a.one.split(":")
        print(json.dumps(run_size(structure, int(n), a.seed)))
        return 0
    runs = [r for f in a.add for r in json.loads(open(f).read())]
    for structure in a.structures.split(","):
        for n in (int(x) for x in a.sizes.split(",") if x):
            print(f"{structure} {n:,}:", file=sys.stderr, flush=True)
            p = subprocess.run([sys.executable, "-m", "idbench.bench.scale", "--one", f"{structure}:{n}",
                                "--seed", str(a.seed)], stdout=subprocess.PIPE, text=True)  # stderr: progress
            if p.returncode:
                print(f"error: {structure} at {n:,} faces failed (exit {p.returncode})", file=sys.stderr)
                continue
            runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(f"{structure} {n:,}: {runs[-1]['total_seconds']:.0f} s, peak {runs[-1]['peak_rss_mb']:.0f} MB",
                  file=sys.stderr, flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(runs, f, indent=1)
    print(table(runs))
    return 0 if runs else 1


if __name__ == "__main__":
    sys.exit(main())
