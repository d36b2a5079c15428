"""End-to-end speed and memory benchmark: ``python -m idbench.bench.speed [IMAGES...] [options]``.

Every contender runs as its own child process on the same image list (whole process: interpreter
start, imports, model loading, reading, detection, landmarks, alignment, embedding), and this
process samples the child's process tree for its peak memory (RSS every 50 ms, PSS every 250 ms):

* ``idbench cold``: ``bench embed --encoder dlib`` with an empty ``--cache-dir``;
* ``idbench warm``: the same command again on the cache the cold run filled;
* ``face_recognition``: ``face_recognition.face_encodings(load_image_file(f))`` per image (same dlib
  HOG detector, same shape predictor and ResNet weights), the loop its README shows;
* ``deepface``: ``DeepFace.represent(f, model_name="Dlib", detector_backend="dlib")`` per image
  (skipped, and said so, when deepface is not installed).

Peak memory is reported as RSS summed over the tree (what ``top`` shows; counts pages that forked
workers share once per process) and as PSS summed over the tree (shared pages split between the
processes that map them: the memory the run really occupies). ``--rounds N`` interleaves the
contenders N times and keeps each one's best round (the machine may be shared). ``--sizes 200,700``
also runs ``idbench cold`` on the first 200 and 700 images and prints the peaks side by side (memory
must not grow with the number of images). ``--video`` streams a video through detection and prints
the peak RSS.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

FACE_RECOGNITION_LOOP = """
import sys, face_recognition
n = 0
for f in open(sys.argv[1]).read().split("\\n"):
    if f:
        n += len(face_recognition.face_encodings(face_recognition.load_image_file(f))[:1])
print("FACES", n)
"""

DEEPFACE_LOOP = """
import sys
from deepface import DeepFace
n = 0
for f in open(sys.argv[1]).read().split("\\n"):
    if f:
        try:
            n += len(DeepFace.represent(f, model_name="Dlib", detector_backend="dlib")[:1])
        except ValueError:  # no face
            pass
print("FACES", n)
"""


@dataclass
class Measured:
    name: str
    faces: int
    seconds: float
    peak_rss_mib: float
    peak_pss_mib: float

    @property
    def fps(self) -> float:
        return self.faces / self.seconds if self.seconds > 0 else float("nan")


def _tree(pid: int) -> List[int]:
    """pid and all its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in open(f"/proc/{p}/task/{t}/children").read().split()]
        except OSError:
            pass
    return out


def _mem_kib(pid: int, with_pss: bool = True) -> tuple:
    """(RSS, PSS) of one process in KiB (PSS = RSS unless ``with_pss``); zeros once it has exited."""
    try:
        rss = int(open(f"/proc/{pid}/statm").read().split()[1]) * PAGE_KIB
        pss = rss
        for line in open(f"/proc/{pid}/smaps_rollup") if with_pss else ():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
                break
        return rss, pss
    except (OSError, ValueError, IndexError):
        return 0, 0


def measure(name: str, cmd: Sequence[str], count_faces) -> Measured:
    """Run ``cmd`` to completion; wall time and the peak of the tree's summed RSS and PSS."""
    t = time.perf_counter()
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_rss = peak_pss = 0
    tick = 0
    # RSS every 50 ms; PSS (smaps_rollup walks every mapping: costly with torch loaded) every 5th
    # sample, so the sampler does not take CPU from the contender it measures
    while proc.poll() is None:
        with_pss = tick % 5 == 0
        mems = [_mem_kib(p, with_pss) for p in _tree(proc.pid)]
        peak_rss = max(peak_rss, sum(m[0] for m in mems))
        if with_pss:
            peak_pss = max(peak_pss, sum(m[1] for m in mems))
        tick += 1
        time.sleep(0.05)
    seconds = time.perf_counter() - t
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed (exit {proc.returncode}): {(err or out).strip().splitlines()[-1:]}")
    return Measured(name, count_faces(out), seconds, peak_rss / 1024, peak_pss / 1024)


def _printed_faces(out: str) -> int:
    return int(next(line.split()[1] for line in out.splitlines() if line.startswith("FACES")))


def _npz_faces(path: Path):
    def count(_out: str) -> int:
        import numpy as np

        with np.load(path) as z:
            return len(z["paths"])
    return count


def idbench_cmd(files: Path, out: Path, cache: Path, device: str) -> List[str]:
    code = ("import sys; from idbench.bench.cli import app; "
            "app(['embed', '--encoder', 'dlib', '--cache-dir', sys.argv[1], '--out', sys.argv[2], '--device', "
            "sys.argv[3]] + [f for f in open(sys.argv[4]).read().split(chr(10)) if f])")
    return [sys.executable, "-c", code, str(cache), str(out), device, str(files)]


def run_round(files: Path, work: Path, device: str, peers: bool) -> List[Measured]:
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    out = work / "out.npz"
    rows = [measure("idbench dlib, cold cache", idbench_cmd(files, out, cache, device), _npz_faces(out)),
            measure("idbench dlib, warm cache", idbench_cmd(files, out, cache, device), _npz_faces(out))]
    if peers:
        for name, module, code in (("face_recognition loop", "face_recognition", FACE_RECOGNITION_LOOP),
                                   ("deepface.represent(Dlib)", "deepface", DEEPFACE_LOOP)):
            if importlib.util.find_spec(module) is None:
                print(f"{module} not installed: skipped", flush=True)
                continue
            rows.append(measure(name, [sys.executable, "-c", code, str(files)], _printed_faces))
    return rows


def _list_file(files: Sequence[Path], work: Path, tag: str) -> Path:
    p = work / f"files-{tag}.txt"
    p.write_text("\n".join(str(f) for f in files))
    return p


def _print(rows: List[Measured], base: Measured) -> None:
    for r in rows:
        print(f"{r.name:28s} {r.faces:5d} faces {r.seconds:8.2f} s {r.fps:8.2f} faces/s   peak RSS "
              f"{r.peak_rss_mib:6.0f} MiB  PSS {r.peak_pss_mib:6.0f} MiB   idbench cold is "
              f"{base.fps / r.fps:5.2f}x as fast", flush=True)


def video_peak(video: Path) -> None:
    """Stream a video through dlib-hog detection in a child; print its peak RSS."""
    code = ("import os,sys;import numpy as np;from idbench.swapper.ffpp import iter_video_frames;"
            "from idbench.detectors import create_detector;d=create_detector('dlib-hog');n=0\n"
            "rss=lambda: int(open('/proc/self/statm').read().split()[1])*os.sysconf('SC_PAGE_SIZE')//2**20\n"
            "d.detect(np.zeros((64,64,3),np.uint8));base=rss();peak=base\n"
            "for i,f in iter_video_frames(sys.argv[1], 10**9):\n d.detect(f);n+=1;peak=max(peak,rss())\n"
            "print(n, base, peak, f.nbytes)")
    r = subprocess.run([sys.executable, "-c", code, str(video)], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"video check failed: {r.stderr.strip().splitlines()[-1:]}")
        return
    frames, base, peak, nbytes = (int(v) for v in r.stdout.split()[-4:])
    print(f"video {video.name}: {frames} frames streamed through detection; peak RSS {peak} MiB (models "
          f"loaded, before the video: {base} MiB; the decoded video would be {frames * nbytes / 2**20:.0f} MiB)")


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("images", nargs="*", help=f"image files or folders (default {DEFAULT})")
    p.add_argument("--limit", type=int, default=200, help="first N images (sorted paths)")
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds; each contender's best is kept")
    p.add_argument("--sizes", default="", help="e.g. 200,700: idbench cold peak memory at each size")
    p.add_argument("--device", default="cpu", help="device for idbench (cpu or cuda)")
    p.add_argument("--video", type=Path, default=None, help="long video for the streaming memory check")
    args = p.parse_args(argv)

    from idbench.imageio import list_image_files

    files = list_image_files(args.images or [DEFAULT])
    if not files:
        sys.exit("no images: give image files or folders")
    cpus = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="idbench-speed-") as d:
        work = Path(d)
        chosen = _list_file(files[: args.limit], work, "main")
        best = {}
        for r in range(args.rounds):
            for m in run_round(chosen, work, args.device, peers=True):
                if m.name not in best or m.seconds < best[m.name].seconds:
                    best[m.name] = m
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        rows = list(best.values())
        print(f"{min(args.limit, len(files))} images, {cpus} CPUs, device {args.device}, best of {args.rounds} "
              f"interleaved round(s), whole process each")
        _print(rows, rows[0])
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        for n in sizes:
            if n == min(args.limit, len(files)):  # the cold run above
                m = Measured(f"idbench cold, {n} images", rows[0].faces, rows[0].seconds, rows[0].peak_rss_mib,
                             rows[0].peak_pss_mib)
            else:
                lst = _list_file(files[:n], work, str(n))
                m = measure(f"idbench cold, {n} images", idbench_cmd(lst, work / "out.npz", Path(
                    tempfile.mkdtemp(dir=work)), args.device), _npz_faces(work / "out.npz"))
            print(f"{m.name:28s} {m.faces:5d} faces {m.seconds:8.2f} s {m.fps:8.2f} faces/s   peak RSS "
                  f"{m.peak_rss_mib:6.0f} MiB  PSS {m.peak_pss_mib:6.0f} MiB", flush=True)
    if args.video is not None:
        video_peak(args.video)


if __name__ == "__main__":
    main()
