"""The one face pipeline: every image, video frame and swap result goes through it.

Stages, each cached by content in :class:`~idbench.cache.Cache`:

1. *read*: :func:`file_item` (a file: its bytes are read once, the key is their sha256),
   :func:`array_item` (an in-memory image: a video frame, a swap result read from disk) or
   :func:`lazy_item` (an image built only when a later stage misses its cache: a pseudo-swap);
2. *detect* (:func:`detect_stream`, one item at a time through :func:`detect_item`): faces, 5 and 68
   landmarks once per image, then :func:`select_faces` keeps the face(s) used;
3. *align + embed* (:func:`embed_detected`): each encoder's own alignment of the same face record,
   crops embedded in batches per encoder.

An item whose image is never needed (every stage hit its cache) is never decoded or built, so a
warm rerun makes no detector or encoder call. ``bench run``, ``bench embed``, the swap evaluation,
the saliency maps, ``bench prepare`` and the experiments all call this module; a swap result is
just another item.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from idbench.cache import Cache, bytes_key, content_key
from idbench.detectors import DETECTORS, Cascade, create_detector, preload_detector
from idbench.devices import is_cuda
from idbench.errors import IdbenchError, ImageReadError
from idbench.faces import Face
from idbench.face_policy import FacePolicy, apply_face_policy, resolve_policy
from idbench.imageio import decode_image, image_key, iter_image_files, read_regular_file
from idbench.parallel import default_workers, ordered_map
from idbench.recipe_face import encoder_crop
from idbench.weights import cached_sha256

DETECTION_VERSION = 2  # bump when detection/landmark post-processing changes (2: dlib-style box for MTCNN)
DEFAULT_DETECT_BATCH = 32  # images per detector call on CUDA (MTCNN: one P/R/O-Net pass per batch)
Failure = Dict[str, str]  # {"stage": ..., "item": ..., "reason": ...}: one dropped item (results["failures"])


def failure(stage: str, item: object, reason: object) -> Failure:
    """One entry of ``results["failures"]``: which stage dropped which item, and why (one line)."""
    return {"stage": stage, "item": str(item), "reason": str(reason).splitlines()[0] if str(reason) else ""}


@dataclass
class DetectedImage:
    """One image (a file, a frame or a swap) on its way through the pipeline.

    ``faces`` is empty and ``error`` set when it failed; ``meta`` carries what other stages attach
    (provenance of a swap, attribute estimates). The pixels are decoded (or built) only when asked for.
    """

    path: Path
    key: str
    faces: List[Face]
    error: Optional[str] = None
    _data: Optional[bytes] = field(default=None, repr=False)
    _image: Optional[np.ndarray] = field(default=None, repr=False)
    _load: Optional[Callable[[], np.ndarray]] = field(default=None, repr=False)
    center: Optional[Tuple[float, float]] = None  # keep the face nearest this point (LFW), else the largest
    meta: dict = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)  # face-policy choices, EXIF orientation

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            if self._data is not None:
                self._image = decode_image(self._data, str(self.path))
            elif self._load is not None:
                self._image = self._load()
            else:  # after the streaming pass: decode again, hold nothing (bounded memory)
                return decode_image(read_regular_file(self.path), str(self.path))
        return self._image

    def __getstate__(self) -> dict:  # crosses processes without bytes or pixels: the receiver re-reads the file
        return {**self.__dict__, "_data": None, "_image": None, "_load": None}

    def release(self) -> None:
        """Drop the decoded pixels (they are read or built again if needed): one image held at a time."""
        self._image = None
        if self._load is None:
            self._data = None


def file_item(path, center: Optional[Tuple[float, float]] = None) -> DetectedImage:
    """Read a file once; its key is the sha256 of its bytes. Never raises for bad input."""
    path = Path(path)
    try:
        data = read_regular_file(path)  # a FIFO, device or socket is never opened for reading
    except ImageReadError as e:
        return DetectedImage(path, "", [], str(e).split(": ", 1)[-1], center=center)
    return DetectedImage(path, image_key(data), [], None, data, center=center)  # EXIF turn is in the key


def array_item(name, image: np.ndarray, key: Optional[str] = None, meta: Optional[dict] = None) -> DetectedImage:
    """An in-memory RGB image (key: sha256 of its pixels and shape unless given)."""
    img = np.ascontiguousarray(image)
    key = key or content_key("pixels", list(img.shape), bytes_key(img.tobytes()))
    return DetectedImage(Path(str(name)), key, [], None, None, img, meta=dict(meta or {}))


def lazy_item(name, key: str, load: Callable[[], np.ndarray], meta: Optional[dict] = None) -> DetectedImage:
    """An image identified by ``key`` (e.g. a hash of how it is made) and built by ``load`` only if needed."""
    return DetectedImage(Path(str(name)), key, [], None, None, None, load, meta=dict(meta or {}))


def select_faces(faces: Sequence[Face], all_faces: bool = False,
                 center: Optional[Tuple[float, float]] = None) -> List[Face]:
    """The face(s) of an image that are used: every face, or the largest, or the one nearest ``center``.

    Detectors return faces largest first; with ``center`` (x, y) the face whose box centre is nearest
    to it comes first (LFW's convention: the labelled person is the face in the middle of the image).
    """
    faces = list(faces)
    if center is not None and len(faces) > 1:
        c = np.asarray(center, np.float32)
        faces = sorted(faces, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - c)))
    return faces if all_faces else faces[:1]


class _Deferred(Exception):
    """A cascade's first stage found no face in a worker: the calling process runs the other stages."""


def _faces_key(item: DetectedImage, detector: str) -> str:
    return content_key("faces", DETECTION_VERSION, item.key, detector)


def _cached_faces(item: DetectedImage, detector: str, cache: Cache) -> Optional[List[Face]]:
    """The faces cached for the item, None on a miss; raises IdbenchError for a cached failure."""
    cached = cache.get_json("faces", _faces_key(item, detector))
    if cached is None:
        return None
    if isinstance(cached, dict) and "error" in cached:
        raise IdbenchError(cached["error"])
    return [Face.from_dict(d) for d in cached]


def _item_image(item: DetectedImage, detector: str, cache: Cache) -> np.ndarray:
    try:
        return item.image
    except IdbenchError as e:  # a swap that cannot be built fails the same way next time: remember it
        if item._load is not None and item.meta.get("cacheable", True):
            cache.put_json("faces", _faces_key(item, detector), {"error": str(e)})
        raise


def _store_faces(item: DetectedImage, detector: str, cache: Cache, faces: List[Face]) -> List[Face]:
    """Cache what the detector found; raises IdbenchError when it is nothing."""
    cache.put_json("faces", _faces_key(item, detector),
                   [f.to_dict() for f in faces] if faces else {"error": "no face detected"})
    if not faces:
        raise IdbenchError("no face detected")
    return faces


def _detect_cached(item: DetectedImage, detector: str, cache: Cache, device: str,
                   stages: slice = slice(None)) -> List[Face]:
    """Every face of the item's image (cached by content; raises IdbenchError for an unreadable image).

    ``stages`` limits a cascade (``auto``) to some of its stages: ``slice(1)`` in the workers (HOG only,
    so no worker ever loads MTCNN and torch), ``slice(1, None)`` for the few images it found no face in.
    Either way the result cached under ``detector`` is the cascade's.
    """
    faces = _cached_faces(item, detector, cache)
    if faces is not None:
        return faces
    image = _item_image(item, detector, cache)
    det = create_detector(detector, device)
    cascade = isinstance(det, Cascade)
    faces = det.detect(image, stages) if cascade else det.detect(image)
    if not faces and cascade and stages.stop is not None and stages.stop < len(det.stage_names):
        raise _Deferred()
    return _store_faces(item, detector, cache, faces)


def _failed(item: DetectedImage, e: IdbenchError) -> DetectedImage:
    msg = str(e)
    item.error = msg.split(": ", 1)[-1] if msg.startswith(str(item.path)) else msg
    return item


def detect_item(item: DetectedImage, detector: str = "auto", cache: Optional[Cache] = None, device: str = "cpu",
                all_faces: bool = False, policy: Optional[FacePolicy] = None,
                stages: slice = slice(None)) -> DetectedImage:
    """Detect (or read back) the faces of one item, then :func:`select_faces`; never raises for bad input."""
    if item.error:
        return item
    cache = cache if cache is not None else Cache(enabled=False)
    try:
        faces = _detect_cached(item, detector, cache, device, stages)
    except IdbenchError as e:
        return _failed(item, e)
    return apply_face_policy(item, faces, resolve_policy(policy, all_faces), item.center)  # min size, multi-face


def detect_batch_size(detector: str, device: str, batch: Optional[int] = None) -> int:
    """Images per ``detect_batch`` call: ``batch`` when given (``--detect-batch``), else
    :data:`DEFAULT_DETECT_BATCH` on CUDA for a detector with a batched network (MTCNN, ``auto``'s
    fallback), else 1 (one image at a time)."""
    if batch is not None:
        return max(1, int(batch))
    return DEFAULT_DETECT_BATCH if is_cuda(device) and create_detector(detector, device).batched else 1


def _chunks(items: Iterable[DetectedImage], n: int) -> Iterator[List[DetectedImage]]:
    chunk: List[DetectedImage] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def detect_batched(items: Iterable[DetectedImage], detector: str = "auto", cache: Optional[Cache] = None,
                   device: str = "cpu", all_faces: bool = False, policy: Optional[FacePolicy] = None,
                   batch: int = DEFAULT_DETECT_BATCH, stages: slice = slice(None)) -> Iterator[DetectedImage]:
    """:func:`detect_stream`, ``batch`` items at a time: the cache misses of each run of ``batch`` items
    go through one ``detect_batch`` (same faces as one at a time; at most ``batch`` images decoded).

    Items that already have faces or an error pass through untouched (the pool's results).
    """
    cache = cache if cache is not None else Cache(enabled=False)
    policy = resolve_policy(policy, all_faces)
    det = create_detector(detector, device)  # built before any item: a bad device is one error, not N skips
    for chunk in _chunks(items, batch):
        _detect_chunk(chunk, det, detector, cache, policy, stages)
        yield from chunk


def _detect_chunk(chunk: List[DetectedImage], det, detector: str, cache: Cache, policy: FacePolicy,
                  stages: slice) -> None:
    """Faces for the items of ``chunk`` that have none yet: cached ones read back, the rest in one call."""
    todo, images = [], []
    for item in chunk:
        if item.error or item.faces:
            continue
        try:
            faces = _cached_faces(item, detector, cache)
            if faces is None:
                images.append(_item_image(item, detector, cache))
                todo.append(item)
                continue
        except IdbenchError as e:
            _failed(item, e)
            continue
        apply_face_policy(item, faces, policy, item.center)
    try:
        found = det.detect_batch(images, stages) if isinstance(det, Cascade) else det.detect_batch(images)
    except IdbenchError:  # one bad image: each one alone, so only it fails (with its reason)
        found = [_one(det, im, stages) for im in images]
    for item, faces in zip(todo, found):
        try:
            if isinstance(faces, IdbenchError):
                raise faces
            apply_face_policy(item, _store_faces(item, detector, cache, faces), policy, item.center)
        except IdbenchError as e:
            _failed(item, e)


def _one(det, image: np.ndarray, stages: slice):
    """One image's faces, or the IdbenchError it raised."""
    try:
        return det.detect(image, stages) if isinstance(det, Cascade) else det.detect(image)
    except IdbenchError as e:
        return e


def detect_stream(items: Iterable[DetectedImage], detector: str = "auto", cache: Optional[Cache] = None,
                  device: str = "cpu", all_faces: bool = False, policy: Optional[FacePolicy] = None,
                  batch: Optional[int] = None) -> Iterator[DetectedImage]:
    """The detect stage: items in, the same items with faces (or an error) out, in order, lazily.

    ``batch`` (default: :func:`detect_batch_size`) > 1 detects that many images per network call."""
    n = detect_batch_size(detector, device, batch)
    if n > 1:
        yield from detect_batched(items, detector, cache, device, all_faces, policy, n)
        return
    for item in items:
        yield detect_item(item, detector, cache, device, all_faces, policy)


def _detect_path(path_center, detector: str, cache: Optional[Cache], device: str, all_faces: bool,
                 policy: Optional[FacePolicy] = None, stages: slice = slice(None)) -> DetectedImage:
    path, center = path_center
    item = file_item(path, center)
    try:
        detect_item(item, detector, cache, device, all_faces, policy, stages)
    except _Deferred:
        item.meta["deferred"] = True
        return item
    if item.faces and item._image is not None and item._image[..., 0].size <= PIXELS_BACK:
        item.meta[_PIXELS] = item._image  # the embed stage needs them: sent back, not decoded a second time
    return item


def _layout_hint(cache: Optional[Cache], n_images: int) -> None:
    from idbench.packed_cache import layout_hint

    hint = None if cache is None else layout_hint(cache, n_images)
    if hint:
        print(hint, file=sys.stderr)


PIXELS_BACK = 250_000  # a worker sends back the pixels of an image up to this size (LFW: 62,500; 750 KB in flight)
_PIXELS = "_pixels"


def _with_pixels(item: DetectedImage) -> DetectedImage:
    """The item a worker returned, holding the pixels it sent (released after the embed stage, as a decoded file)."""
    pixels = item.meta.pop(_PIXELS, None)
    if pixels is not None:
        item._image = pixels
    return item


def _workers_detect(detector: str, device: str, batch: int) -> bool:
    """Whether worker processes run the detector (a cascade: its first stage) on CPU.

    They do when that detector runs on the CPU in this run (dlib's always do; MTCNN and SCRFD
    unless the device is CUDA), except for a batched detector asked to batch, which runs here.
    Decided from the registry, without building the detector (that would load MTCNN here).
    """
    spec = DETECTORS.spec(detector)
    first = DETECTORS.spec(spec.stages[0]) if spec.stages else spec
    on_cpu = not (is_cuda(device) and first.cuda)
    return on_cpu and (bool(spec.stages) or batch <= 1 or not spec.batch)


def detect_paths(paths: Sequence, detector: str = "auto", cache: Optional[Cache] = None, device: str = "cpu",
                 all_faces: bool = False, centers: Optional[Sequence] = None,
                 policy: Optional[FacePolicy] = None, batch: Optional[int] = None) -> Iterator[DetectedImage]:
    """The detect stage for files: read and detect in worker processes where detection runs on CPU
    (:mod:`idbench.parallel`), in this process (batched, ``batch``: :func:`detect_batch_size`) on GPU.

    Same items, in the same order, as ``detect_stream(file_item(p) ...)``; a bounded number in flight.
    ``auto``: the workers run HOG; the images it finds no face in get MTCNN here (on the device,
    batched when ``batch`` > 1). Pooled items come back without their bytes (the embed stage re-reads
    a file it must crop).
    """
    centers = list(centers) if centers is not None else [None] * len(paths)
    _layout_hint(cache, len(paths))
    n = detect_batch_size(detector, device, batch)
    if not _workers_detect(detector, device, n):
        items = (file_item(p, c) for p, c in zip(paths, centers))
        yield from detect_stream(items, detector, cache, device, all_faces, policy, n)
        return
    fn = partial(_detect_path, detector=detector, cache=cache, device=device, all_faces=all_faces, policy=policy,
                 stages=slice(1))
    pooled = ordered_map(fn, list(zip(paths, centers)), preload=partial(preload_detector, detector, device))
    # the cascade's fallback runs here, loaded once: items the workers deferred are read again
    stream = (file_item(it.path, it.center) if it.meta.pop("deferred", False) else _with_pixels(it) for it in pooled)
    if n > 1:
        yield from detect_batched(stream, detector, cache, device, all_faces, policy, n, slice(1, None))
        return
    for item in stream:
        yield item if item.error or item.faces else detect_item(item, detector, cache, device, all_faces, policy,
                                                                slice(1, None))


PREBUILD_WINDOW = 4  # built images in flight per worker (a swap of a video frame is a few MB)


def _build_or_none(load: Callable[[], np.ndarray]) -> Optional[np.ndarray]:
    """A lazy item's image built in a worker; None when building fails (the caller builds it again and
    gets the error where it is listed)."""
    try:
        return load()
    except Exception:  # noqa: BLE001 - re-raised by the caller's own build of the same item
        return None


def _picklable(obj) -> bool:
    import pickle

    try:
        pickle.dumps(obj)
    except Exception:  # noqa: BLE001 - closures, locks, models that do not cross processes
        return False
    return True


def prebuild(items: Iterable[DetectedImage], detector: str, cache: Optional[Cache] = None) -> Iterator[DetectedImage]:
    """Lazy items (swaps) whose faces are not cached yet, built in worker processes (:mod:`idbench.parallel`)
    ahead of the detect stage; the same items, in order. Items whose faces are cached stay lazy (a warm
    run builds nothing), and so does everything when the builders do not pickle (e.g. a learned swapper
    holding a network): then the detect stage builds them here, one at a time, as before."""
    items = list(items)
    cache = cache if cache is not None else Cache(enabled=False)
    counts = (cache.hits, cache.misses, cache.corrupt)  # a look ahead, not a use: the counters stay
    todo = [i for i, it in enumerate(items) if it._load is not None and it._image is None and not it.error
            and cache.get_json("faces", _faces_key(it, detector)) is None]
    cache.hits, cache.misses, cache.corrupt = counts
    if len(todo) < 2 or not _picklable(items[todo[0]]._load):
        yield from items
        return
    built = ordered_map(_build_or_none, [items[i]._load for i in todo], window=PREBUILD_WINDOW * default_workers())
    nxt = 0
    for i, item in enumerate(items):
        if nxt < len(todo) and todo[nxt] == i:
            nxt += 1
            image = next(built)
            if image is not None:
                item._image = image
        yield item
        items[i] = None  # hold each built image only until its turn


def detect_file(path, detector: str = "auto", all_faces: bool = False, cache: Optional[Cache] = None,
                device: str = "cpu", center: Optional[Tuple[float, float]] = None,
                policy: Optional[FacePolicy] = None) -> DetectedImage:
    """Read and detect one file (``policy``: :mod:`idbench.face_policy`; ``center``: LFW's labelled face)."""
    return detect_item(file_item(path, center), detector, cache, device, all_faces, policy)


def encoder_fingerprint(encoder) -> dict:
    """Everything about an encoder that changes its embeddings (for cache keys and provenance)."""
    spec = dataclasses.asdict(encoder.spec)
    for k in ("description", "licence", "paper", "recipe"):
        spec.pop(k, None)
    defaults = {f.name: f.default for f in dataclasses.fields(encoder.spec)}
    for k in ("fit", "box_detector", "flip_test"):  # recipe fields at their defaults: keys of older caches hold
        if spec.get(k) == defaults.get(k):
            spec.pop(k, None)
    w = encoder.weights_path
    return {"spec": spec, "weights_sha256": cached_sha256(w) if w is not None else None}


@dataclass
class EmbeddingTable:
    """One row per embedded face; ``images`` holds every input item, ``item_index[r]`` the item of row r."""

    paths: List[str]
    face_index: np.ndarray
    faces: List[Face]
    embeddings: Dict[str, np.ndarray]
    skipped: List[Tuple[str, str]]
    images: List[DetectedImage] = field(default_factory=list)
    item_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def bboxes(self) -> np.ndarray:
        return np.array([f.box for f in self.faces], np.float32).reshape(-1, 4)

    @property
    def landmarks(self) -> np.ndarray:
        return np.array([f.landmarks5 for f in self.faces], np.float32).reshape(-1, 5, 2)

    def item(self, row: int) -> DetectedImage:
        """The pipeline item (image, key, meta) a row's face came from."""
        return self.images[int(self.item_index[row])]

    @property
    def failures(self) -> List[Failure]:
        return [failure("detect" if "align" not in r else "align", p, r) for p, r in self.skipped]


def embed_key(fingerprint: str, detector: str, item_key: str, face: Face) -> str:
    return content_key("emb", fingerprint, detector, item_key, np.round(face.box, 1).tolist())


class _Batcher:
    """Crops waiting to be embedded by one encoder; flushed every ``encoder.batch_size`` crops."""

    def __init__(self, encoder, cache: Cache):
        self.encoder, self.cache, self.pending = encoder, cache, []

    def add(self, row: int, key: str, crop: np.ndarray, rows: List) -> None:
        self.pending.append((row, key, crop))
        if len(self.pending) >= self.encoder.batch_size:
            self.flush(rows)

    def flush(self, rows: List) -> None:
        if not self.pending:
            return
        emb = self.encoder.embed(np.stack([c for _, _, c in self.pending]), normalise=False)
        for (row, key, _), e in zip(self.pending, emb):
            rows[row] = e
            self.cache.put_array("emb", key, e)
        self.pending = []


def embed_detected(items: Iterable[DetectedImage], encoders: Mapping[str, object], detector: str = "auto",
                   cache: Optional[Cache] = None, progress: bool = True, total: Optional[int] = None,
                   desc: str = "embed") -> EmbeddingTable:
    """Align each detected face for each encoder and embed in batches (embeddings cached by content)."""
    from tqdm.auto import tqdm

    from idbench.vectors import l2_normalise

    cache = cache if cache is not None else Cache(enabled=False)
    fps = {name: content_key(encoder_fingerprint(enc)) for name, enc in encoders.items()}
    rows: Dict[str, List[Optional[np.ndarray]]] = {n: [] for n in encoders}
    batchers = {n: _Batcher(enc, cache) for n, enc in encoders.items()}
    paths, face_idx, faces, item_idx, skipped, seen = [], [], [], [], [], []
    for item in tqdm(items, desc=desc, unit="img", disable=not progress, total=total):
        seen.append(item)
        if item.error:
            skipped.append((str(item.path), item.error))
            continue
        for i, face in enumerate(item.faces):
            row = len(paths)
            paths.append(str(item.path))
            face_idx.append(i)
            faces.append(face)
            item_idx.append(len(seen) - 1)
            for name, enc in encoders.items():
                rows[name].append(None)
                key = embed_key(fps[name], detector, item.key, face)
                e = cache.get_array("emb", key)
                if e is not None:
                    rows[name][row] = e
                    continue
                try:
                    crop = encoder_crop(item.image, face, enc.spec, str(getattr(enc, "device", "cpu")))
                except (ValueError, RuntimeError, IdbenchError) as err:
                    skipped.append((str(item.path), f"alignment for {name} failed: {err}"))
                    continue
                batchers[name].add(row, key, crop, rows[name])
        item.release()
    for name in encoders:
        batchers[name].flush(rows[name])
    keep = [r for r in range(len(paths)) if all(rows[n][r] is not None for n in encoders)]
    emb = {}
    for name, enc in encoders.items():
        arr = np.array([rows[name][r] for r in keep], np.float32).reshape(len(keep), enc.spec.embedding_size)
        emb[name] = l2_normalise(arr) if len(arr) else arr
    return EmbeddingTable([paths[r] for r in keep], np.array([face_idx[r] for r in keep], np.int64),
                          [faces[r] for r in keep], emb, skipped, seen, np.array([item_idx[r] for r in keep], np.int64))


def detect_files(inputs: Iterable, detector: str = "auto", all_faces: bool = False, cache: Optional[Cache] = None,
                 progress: bool = True, device: str = "cpu") -> List[DetectedImage]:
    """Detect faces in every image under ``inputs`` once (cached by content)."""
    from tqdm.auto import tqdm

    files = list(iter_image_files(inputs))
    stream = detect_paths(files, detector, cache, device, all_faces)
    items = []
    for item in tqdm(stream, desc="detect", unit="img", disable=not progress, total=len(files)):
        item.release()  # a list of every item holds no pixels (read again when asked for)
        items.append(item)
    return items


def embed_files(inputs: Iterable, encoders: Mapping[str, object], detector: str = "auto",
                all_faces: bool = False, cache: Optional[Cache] = None, progress: bool = True,
                device: str = "cpu") -> EmbeddingTable:
    """Embed every face of every image under ``inputs`` (files or folders) with every encoder."""
    files = list(iter_image_files(inputs))
    stream = detect_paths(files, detector, cache, device, all_faces)
    return embed_detected(stream, encoders, detector, cache, progress, total=len(files))


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
    index_of = {str(d.path): i for i, d in enumerate(images)}
    paths = [x[2]["paths"][x[3]] for x in rows]
    return EmbeddingTable(paths, np.array([x[1] for x in rows], np.int64),
                          [Face.from_dict(x[2]["faces"][x[3]]) for x in rows], emb,
                          [s for part in parts for s in part["skipped"]], images,
                          np.array([index_of[p] for p in paths], np.int64))
