"""CPU milliseconds per face of cold ``bench embed --encoder dlib``, per stage and end to end.

``python -m idbench.bench.speed_cpu --root ../shared/data/lfw/lfw-deepfunneled --images 200 --e2e 700,2000``

On a shared machine wall time says little; CPU time per face (all processes together) is what bounds
the throughput of an idle one: ``2000 / (CPU ms per face)`` faces/s on 2 cores when both stay busy.

* ``stages`` (one process, ``time.process_time``, one torch thread as during detection): read, decode,
  HOG (upsample 1), the 68- and 5-point landmark fits (the detection workers' share), then the parent's
  re-read + decode, alignment and embedding in batches of the encoder's size, and the one-off costs
  (imports, model loads) that a run pays once.
* ``--e2e N,...``: ``bench embed --encoder dlib --no-cache`` on the first N images (sorted), run in a
  child that reports its own CPU (getrusage) and its workers' (reaped by it, or by the forkserver:
  read from /proc), with wall time and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw" / "lfw-deepfunneled"


def image_files(root: Path, n: int) -> List[Path]:
    """The first ``n`` images under ``root`` (sorted): an LFW prefix is a set of whole identities."""
    from idbench.imageio import list_image_files

    return list_image_files([root])[:n]


class _Clock:
    def __init__(self):
        self.ms: Dict[str, float] = {}

    def add(self, stage: str, t0: float) -> None:
        self.ms[stage] = self.ms.get(stage, 0.0) + (time.process_time() - t0) * 1000


def stage_table(files: Sequence[Path]) -> Dict[str, object]:
    """CPU ms per face of each stage on ``files`` (faces: the detected ones that get embedded)."""
    from idbench.imageio import decode_image, read_regular_file

    c, once = _Clock(), _Clock()
    t = time.process_time()
    from idbench.detectors import create_detector
    from idbench.landmarks import dlib5, landmarks68, preload_predictors
    from idbench.pipeline import select_faces

    hog = create_detector("dlib-hog")
    preload_predictors()
    once.add("load HOG detector + landmark models (per worker before; per run now)", t)
    found = []
    for f in files:
        t = time.process_time(); data = read_regular_file(f); c.add("worker: read file", t)
        t = time.process_time(); img = decode_image(data, str(f)); c.add("worker: decode", t)
        t = time.process_time(); small, s = hog._downscaled(img); boxes = hog._boxes(small)
        c.add("worker: HOG (upsample 1)", t)
        for box, _, _ in boxes:
            b = np.asarray(box, np.float32) / s
            t = time.process_time(); landmarks68(img, b); c.add("worker: 68-point fit", t)
            t = time.process_time(); dlib5(img, b); c.add("worker: 5-point fit", t)
        faces = hog.detect(img)  # the same faces as the timed calls, as Face records
        if faces:
            found.append((f, select_faces(faces, center=(img.shape[1] / 2, img.shape[0] / 2))[0]))
    t = time.process_time()
    import torch

    once.add("parent: import torch", t)
    torch.set_num_threads(1)  # what the parent gets while 2 workers detect on 2 CPUs (idbench.parallel)
    from idbench.encoders import create_encoder
    from idbench.recipe_face import encoder_crop

    t = time.process_time(); enc = create_encoder("dlib"); enc._torch_port(enc.batch_size)
    once.add("parent: load dlib encoder (torch port)", t)
    crops = []
    for f, face in found:
        t = time.process_time(); img = decode_image(read_regular_file(f), str(f))
        c.add("(parent: re-read + decode: only images > PIXELS_BACK now)", t)
        t = time.process_time(); img = pickle.loads(pickle.dumps(img, protocol=pickle.HIGHEST_PROTOCOL))
        c.add("worker -> parent: pixels pickled and unpickled", t)
        t = time.process_time(); crops.append(encoder_crop(img, face, enc.spec)); c.add("parent: align", t)
    crops_arr = np.stack(crops)
    enc.embed(crops_arr[:enc.batch_size])  # warm-up (oneDNN primitives for this batch shape)
    t = time.process_time()
    for i in range(0, len(crops_arr), enc.batch_size):
        enc.embed(crops_arr[i:i + enc.batch_size], normalise=False)
    c.add(f"parent: embed (batches of {enc.batch_size}, 1 torch thread)", t)
    n = len(found)
    per_face = {k: v / n for k, v in c.ms.items()}
    total = sum(v for k, v in per_face.items() if not k.startswith("("))  # (...): a stage no longer run
    return {"images": len(files), "faces": n, "per_face_ms": per_face, "total_ms": total,
            "once_s": {k: v / 1000 for k, v in once.ms.items()}, "load": os.getloadavg()[0]}


def _forkserver_cpu() -> float:
    """CPU s of this process's forkserver and of the workers it reaped (none: 0)."""
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if not pid:
        return 0.0
    time.sleep(0.5)  # let it reap the last workers
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def _child(argv: List[str]) -> None:  # noqa: D401
    """Run ``bench ARGV`` in this process; print its CPU split and wall time as one JSON line on stderr."""
    from idbench.bench._entry import main

    t = time.perf_counter()
    sys.argv = ["bench"] + argv
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code or 0
    wall = time.perf_counter() - t
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    workers = kids.ru_utime + kids.ru_stime + _forkserver_cpu()
    print("SPEED_CPU " + json.dumps({"rc": code, "wall_s": wall, "parent_cpu_s": me.ru_utime + me.ru_stime,
                                     "workers_cpu_s": workers}), file=sys.stderr)


def end_to_end(files: Sequence[Path], extra: Sequence[str] = ()) -> Dict[str, object]:
    """``bench embed --encoder dlib --no-cache`` on ``files``: faces, wall, CPU of parent and workers."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out.npz"
        args = Path(d) / "argv.json"  # thousands of paths: too long for one command-line argument
        args.write_text(json.dumps(["embed", *map(str, files), "--encoder", "dlib", "--no-cache", "-o", str(out),
                                    *extra]))
        load0 = os.getloadavg()[0]
        r = subprocess.run([sys.executable, "-m", "idbench.bench.speed_cpu", "--child", str(args)],
                           capture_output=True, text=True)
        line = next((l for l in r.stderr.splitlines() if l.startswith("SPEED_CPU ")), None)
        if line is None:
            raise RuntimeError(f"bench embed failed: {r.stderr[-1500:]}")
        res = json.loads(line.split(" ", 1)[1])
        res["faces"] = int(len(np.load(out)["paths"])) if out.exists() else 0
    res.update(images=len(files), load_before=load0, load_after=os.getloadavg()[0])
    cpu = res["parent_cpu_s"] + res["workers_cpu_s"]
    res["cpu_ms_per_face"] = cpu / max(res["faces"], 1) * 1000
    res["faces_per_s"] = res["faces"] / res["wall_s"]
    res["idle_2cpu_faces_per_s"] = 2000 / res["cpu_ms_per_face"]
    return res


def _print_stages(t: Dict[str, object]) -> None:
    print(f"per stage, {t['faces']} faces of {t['images']} images (CPU ms per face; load {t['load']:.1f}):")
    for k, v in t["per_face_ms"].items():
        print(f"  {k:55s} {v:7.2f}")
    print(f"  {'total per face (without the stage in brackets)':55s} {t['total_ms']:7.2f}")
    for k, v in t["once_s"].items():
        print(f"  once: {k:49s} {v:7.2f} s")


def _print_e2e(r: Dict[str, object]) -> None:
    print(f"bench embed {r['images']} images: {r['faces']} faces, wall {r['wall_s']:.1f} s = "
          f"{r['faces_per_s']:.1f} faces/s (load {r['load_before']:.1f} -> {r['load_after']:.1f}); CPU parent "
          f"{r['parent_cpu_s']:.1f} s + workers {r['workers_cpu_s']:.1f} s = {r['cpu_ms_per_face']:.1f} ms/face "
          f"-> {r['idle_2cpu_faces_per_s']:.1f} faces/s on 2 idle CPUs")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="image folder (default: LFW deep-funneled)")
    ap.add_argument("--images", type=int, default=200, help="images of the per-stage table (0: skip it)")
    ap.add_argument("--e2e", default="", help="comma list of image counts for end-to-end bench embed runs")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        _child(json.loads(Path(a.child).read_text()))
        return
    out: Dict[str, object] = {}
    if a.images:
        out["stages"] = stage_table(image_files(a.root, a.images))
        _print_stages(out["stages"])
    out["e2e"] = []
    for n in [int(x) for x in a.e2e.split(",") if x.strip()]:
        out["e2e"].append(end_to_end(image_files(a.root, n)))
        _print_e2e(out["e2e"][-1])
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
