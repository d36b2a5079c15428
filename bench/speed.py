"""Speed benchmark (prints ratios; not a test): ``python -m idbench.bench.speed [IMAGES...]``.

From one run on the same images it prints faces/s end to end (read, detect, align, embed) for
idbench's ``dlib`` encoder with a cold cache, the same with a warm cache, ``face_recognition.face_encodings``
called per image, and ``deepface.DeepFace.represent(model_name="Dlib")`` per image (skipped, and
said so, when a peer is not installed), then the peak memory of streaming a long video.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


def _images(args) -> list:
    from idbench.imageio import list_image_files

    files = list_image_files(args.images or [DEFAULT])
    if not files:
        sys.exit("no images: give image files or folders")
    return files[: args.limit]


def _frame_mib(video: Path) -> float:
    import cv2

    cap = cv2.VideoCapture(str(video))
    w, h = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    cap.release()
    return w * h * 3 / 2**20


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("images", nargs="*")
    p.add_argument("--limit", type=int, default=64)
    p.add_argument("--video", type=Path, default=None, help="long video for the memory check")
    args = p.parse_args(argv)
    files = _images(args)

    from idbench.cache import Cache
    from idbench.encoders import create_encoder
    from idbench.encoders.pipeline import embed_files

    enc = {"dlib": create_encoder("dlib")}
    embed_files(files[:2], enc, cache=Cache(enabled=False), progress=False)  # load models once
    with tempfile.TemporaryDirectory() as d:
        cache = Cache(d)
        t = time.perf_counter()
        table = embed_files(files, enc, cache=cache, progress=False)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        embed_files(files, enc, cache=Cache(d), progress=False)
        warm = time.perf_counter() - t
    n = len(table.paths)
    rows = [("idbench dlib (cold cache)", n / cold), ("idbench dlib (warm cache)", n / warm)]
    try:
        import face_recognition

        t = time.perf_counter()
        m = 0
        for f in files:
            m += len(face_recognition.face_encodings(face_recognition.load_image_file(str(f)))[:1])
        rows.append(("face_recognition.face_encodings", m / (time.perf_counter() - t)))
    except ImportError:
        print("face_recognition not installed: skipped")
    try:
        from deepface import DeepFace

        t = time.perf_counter()
        m = 0
        for f in files:
            try:
                m += len(DeepFace.represent(str(f), model_name="Dlib", detector_backend="dlib")[:1])
            except ValueError:
                pass
        rows.append(("deepface.represent(Dlib)", m / (time.perf_counter() - t)))
    except ImportError:
        print("deepface not installed (optional extra): skipped")
    base = rows[0][1]
    print(f"{len(files)} images, {n} faces")
    for name, fps in rows:
        print(f"{name:38s} {fps:8.2f} faces/s   ratio to idbench cold: {fps / base:6.2f}")
    print(f"warm-cache speed-up: {rows[1][1] / rows[0][1]:.1f}x")
    if args.video is not None:
        # current RSS read from /proc (ru_maxrss would include the parent's high-water mark after fork)
        code = ("import os,sys;import numpy as np;from idbench.swapper.ffpp import iter_video_frames;"
                "from idbench.detectors import create_detector;d=create_detector('dlib-hog');n=0\n"
                "rss=lambda: int(open('/proc/self/statm').read().split()[1])*os.sysconf('SC_PAGE_SIZE')//2**20\n"
                "d.detect(np.zeros((64,64,3),np.uint8));base=rss();peak=base\n"
                "for i,f in iter_video_frames(sys.argv[1], 10**9):\n d.detect(f);n+=1;peak=max(peak,rss())\n"
                "print(n, base, peak)")
        r = subprocess.run([sys.executable, "-c", code, str(args.video)], capture_output=True, text=True)
        if r.returncode == 0:
            frames, base, peak = r.stdout.split()[-3:]
            print(f"video {args.video.name}: {frames} frames streamed through detection; peak RSS {peak} MiB "
                  f"(models loaded, before the video: {base} MiB; the decoded video would be "
                  f"{int(frames) * _frame_mib(args.video):.0f} MiB)")
        else:
            print(f"video check failed: {r.stderr.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
