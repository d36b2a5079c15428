"""Imported by the forkserver of :mod:`idbench.parallel` before it forks any worker.

What nearly every pool's workers need (the detection code, dlib's HOG detector and its two landmark
models: ~1 CPU-s and 100 MB) is then loaded once per ``bench`` process and shared copy-on-write by every
worker of every pool, instead of once per spawned worker. Loading is best effort: a missing model file
is reported by the worker that needs it, as without this module.
"""

from __future__ import annotations


def _preload() -> None:
    try:
        from idbench.detectors import preload_detector
        from idbench.pipeline import detect_item  # noqa: F401  (the workers' code, imported once)

        preload_detector("dlib-hog")
    except Exception:  # noqa: BLE001 - no dlib / no model files here: each worker reports it when it needs them
        pass


_preload()
