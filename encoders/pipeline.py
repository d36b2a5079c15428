"""Detect once, align per encoder, embed in batches, cache everything by content.

``embed_files`` is what ``bench embed`` and ``bench run`` use: each image is read and decoded once,
its faces are detected once (or read back from the cache) and shared by all encoders, each encoder
gets its own alignment of the same face record, and crops are embedded in batches.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from idbench.align import align_face
from idbench.cache import Cache, bytes_key, content_key
from idbench.detectors import create_detector
from idbench.errors import IdbenchError
from idbench.faces import Face
from idbench.face_policy import FacePolicy, apply_face_policy, resolve_policy
from idbench.imageio import decode_image, image_key, iter_image_files
from idbench.weights import cached_sha256

from .base import Encoder, l2_normalise

DETECTION_VERSION = 2  # bump when detection/landmark post-processing changes (2: dlib-style box for MTCNN)


@dataclass
class DetectedImage:
    """One input file after detection. ``faces`` is empty and ``error`` set when it failed."""

    path: Path
    key: str
    faces: List[Face]
    error: Optional[str] = None
    _data: Optional[bytes] = field(default=None, repr=False)
    _image: Optional[np.ndarray] = field(default=None, repr=False)
    warnings: List[str] = field(default_factory=list)  # face-policy choices, EXIF orientation (hostile)

    @property
    def image(self) -> np.ndarray:
        if self._image is not None:
            return self._image
        if self._data is None:  # after the streaming pass: decode again, hold nothing (bounded memory)
            return decode_image(self.path.read_bytes(), str(self.path))
        self._image = decode_image(self._data, str(self.path))
        return self._image


def detect_file(path: Path, detector: str = "auto", all_faces: bool = False, cache: Optional[Cache] = None,
                device: str = "cpu", center: Optional[Tuple[float, float]] = None,
                policy: Optional[FacePolicy] = None) -> DetectedImage:
    """Read and detect one file; never raises for bad input (the reason goes in ``error``).

    Which faces are kept is ``policy``'s choice (:mod:`idbench.face_policy`: minimum size, then the
    largest, or, when ``center`` (x, y) is given, the one whose box centre is nearest to it: LFW's
    convention, the labelled person is the face in the middle of the image); choices go in ``warnings``.
    """
    cache = cache if cache is not None else Cache(enabled=False)
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        return DetectedImage(path, "", [], f"cannot read: {e.strerror or e}")
    key = image_key(data)  # sha256, plus the EXIF orientation when it turns the pixels
    item = DetectedImage(path, key, [], None, data)
    dkey = content_key("faces", DETECTION_VERSION, key, detector)
    cached = cache.get_json("faces", dkey)
    try:
        if cached is not None:
            if isinstance(cached, dict) and "error" in cached:
                item.error = cached["error"]
                return item
            faces = [Face.from_dict(d) for d in cached]
        else:
            faces = create_detector(detector, device).detect(item.image)
            if not faces:
                cache.put_json("faces", dkey, {"error": "no face detected"})
            else:
                cache.put_json("faces", dkey, [f.to_dict() for f in faces])
    except IdbenchError as e:
        item.error = str(e).split(": ", 1)[-1] if str(e).startswith(str(path)) else str(e)
        return item
    return apply_face_policy(item, faces, resolve_policy(policy, all_faces), center)  # min size, multi-face


def encoder_fingerprint(encoder: Encoder) -> dict:
    """Everything about an encoder that changes its embeddings (for cache keys and provenance)."""
    spec = dataclasses.asdict(encoder.spec)
    spec.pop("description", None)
    spec.pop("licence", None)
    spec.pop("paper", None)
    w = encoder.weights_path
    return {"spec": spec, "weights_sha256": cached_sha256(w) if w is not None else None}


@dataclass
class EmbeddingTable:
    """One row per embedded face."""

    paths: List[str]
    face_index: np.ndarray
    faces: List[Face]
    embeddings: Dict[str, np.ndarray]
    skipped: List[Tuple[str, str]]
    images: List[DetectedImage] = field(default_factory=list)  # every input, with its faces or error

    @property
    def bboxes(self) -> np.ndarray:
        return np.array([f.box for f in self.faces], np.float32).reshape(-1, 4)

    @property
    def landmarks(self) -> np.ndarray:
        return np.array([f.landmarks5 for f in self.faces], np.float32).reshape(-1, 5, 2)


def detect_files(inputs: Iterable, detector: str = "auto", all_faces: bool = False, cache: Optional[Cache] = None,
                 progress: bool = True, device: str = "cpu") -> List[DetectedImage]:
    """Detect faces in every image under ``inputs`` once (cached by content)."""
    from tqdm.auto import tqdm

    files = list(iter_image_files(inputs))
    return [detect_file(p, detector, all_faces, cache, device)
            for p in tqdm(files, desc="detect", unit="img", disable=not progress)]


def embed_files(inputs: Iterable, encoders: Mapping[str, Encoder], detector: str = "auto",
                all_faces: bool = False, cache: Optional[Cache] = None, progress: bool = True,
                device: str = "cpu") -> EmbeddingTable:
    """Embed every face of every image under ``inputs`` (files or folders) with every encoder."""
    files = list(iter_image_files(inputs))
    stream = (detect_file(p, detector, all_faces, cache, device) for p in files)  # decode once, detect, embed
    return embed_detected(stream, encoders, detector, cache, progress, total=len(files))


def embed_detected(items: Iterable[DetectedImage], encoders: Mapping[str, Encoder], detector: str = "auto",
                   cache: Optional[Cache] = None, progress: bool = True, total: Optional[int] = None) -> EmbeddingTable:
    """Align each detected face for each encoder and embed in batches (embeddings cached by content)."""
    from tqdm.auto import tqdm

    cache = cache if cache is not None else Cache(enabled=False)
    fps = {name: content_key(encoder_fingerprint(enc)) for name, enc in encoders.items()}
    paths: List[str] = []
    face_idx: List[int] = []
    faces: List[Face] = []
    skipped: List[Tuple[str, str]] = []
    rows: Dict[str, List[Optional[np.ndarray]]] = {n: [] for n in encoders}
    pending: Dict[str, List[Tuple[int, str, np.ndarray]]] = {n: [] for n in encoders}

    def flush(name: str) -> None:
        items_ = pending[name]
        if not items_:
            return
        emb = encoders[name].embed(np.stack([c for _, _, c in items_]), normalise=False)
        for (row, key, _), e in zip(items_, emb):
            rows[name][row] = e
            cache.put_array("emb", key, e)
        items_.clear()

    seen: List[DetectedImage] = []
    for item in tqdm(items, desc="embed", unit="img", disable=not progress, total=total):
        seen.append(item)
        path = item.path
        if item.error:
            skipped.append((str(path), item.error))
            continue
        for i, face in enumerate(item.faces):
            row = len(paths)
            paths.append(str(path))
            face_idx.append(i)
            faces.append(face)
            for name, enc in encoders.items():
                rows[name].append(None)
                key = content_key("emb", fps[name], detector, item.key, np.round(face.box, 1).tolist())
                e = cache.get_array("emb", key)
                if e is not None:
                    rows[name][row] = e
                    continue
                try:
                    crop = align_face(item.image, face, enc.spec.alignment, enc.spec.input_size[0])
                except (ValueError, RuntimeError) as err:
                    crop = None
                    skipped.append((str(path), f"alignment for {name} failed: {err}"))
                if crop is not None:
                    pending[name].append((row, key, crop))
                    if len(pending[name]) >= enc.batch_size:
                        flush(name)
        item._image = item._data = None  # only one decoded image is held at a time
    for name in encoders:
        flush(name)
    keep = [r for r in range(len(paths)) if all(rows[n][r] is not None for n in encoders)]
    emb = {}
    for name, enc in encoders.items():
        arr = np.array([rows[name][r] for r in keep], np.float32).reshape(len(keep), enc.spec.embedding_size)
        emb[name] = l2_normalise(arr) if len(arr) else arr
    return EmbeddingTable([paths[r] for r in keep], np.array([face_idx[r] for r in keep], np.int64),
                          [faces[r] for r in keep], emb, skipped, seen)


def table_to_payload(t: EmbeddingTable) -> dict:
    """A picklable, image-free form of a table (to gather shards from torchrun ranks)."""
    return {"paths": t.paths, "face_index": t.face_index.tolist(), "faces": [f.to_dict() for f in t.faces],
            "embeddings": t.embeddings, "skipped": t.skipped,
            "images": [(str(d.path), d.key, [f.to_dict() for f in d.faces], d.error, d.warnings) for d in t.images]}


def merge_payloads(parts: Sequence[dict], order: Sequence[str]) -> EmbeddingTable:
    """Merge shard payloads back into one table, rows in the order of ``order`` (the dataset's paths)."""
    rank_of = {p: i for i, p in enumerate(order)}
    rows = []
    for part in parts:
        for r, p in enumerate(part["paths"]):
            rows.append((rank_of[p], part["face_index"][r], part, r))
    rows.sort(key=lambda x: (x[0], x[1]))
    names = list(parts[0]["embeddings"]) if parts else []
    emb = {n: np.array([x[2]["embeddings"][n][x[3]] for x in rows], np.float32).reshape(
        len(rows), -1 if rows else 0) for n in names}
    images = sorted((DetectedImage(Path(p), k, [Face.from_dict(f) for f in fs], e, warnings=list(w))
                     for part in parts for p, k, fs, e, w in part["images"]), key=lambda d: rank_of[str(d.path)])
    return EmbeddingTable([x[2]["paths"][x[3]] for x in rows], np.array([x[1] for x in rows], np.int64),
                          [Face.from_dict(x[2]["faces"][x[3]]) for x in rows], emb,
                          [s for part in parts for s in part["skipped"]], images)
