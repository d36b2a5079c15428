"""Datasets behind a registry: ``sample`` (embedded default), ``folder``, ``lfw`` and ``ffpp``.

A dataset is a list of :class:`Item` (an image file with an identity label, and for videos the
video id and frame index) plus, for protocols that fix them, verification pairs and folds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from idbench.cache import bytes_key, content_key
from idbench.errors import IdbenchError, InputError, dropped
from idbench.imageio import IMAGE_EXTS, scan_identity_folders
from idbench.registry import Registry
from idbench.weights import idbench_home

from .video_inputs import expand_videos, extract_frames  # noqa: F401  (extract_frames: FF++ frames)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str


@dataclass
class Item:
    path: Path
    identity: str
    video: Optional[str] = None
    frame: Optional[int] = None
    center: Optional[Tuple[float, float]] = None  # keep the face nearest this point (LFW), else the largest


@dataclass
class Dataset:
    name: str
    root: str
    items: List[Item]
    description: str
    split: str = ""
    pairs: Optional[np.ndarray] = None  # P x 3 (item i, item j, same=1/0), protocol pairs
    folds: Optional[np.ndarray] = None  # P fold ids for the pairs
    notes: List[str] = field(default_factory=list)
    video_pairs: Optional[List] = None  # FF++: the split's [target, source] video pairs
    ignored: List[dict] = field(default_factory=list)  # {stage: "list", item, reason}: files under root not used

    @property
    def identities(self) -> List[str]:
        return sorted({it.identity for it in self.items})


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(name: str, description: str):
    return DATASETS.register(name, DatasetSpec(name, description))


def load_dataset(name: str, root: Optional[os.PathLike] = None, **options) -> Dataset:
    if name.startswith("bin:"):  # an insightface verification set: --dataset bin:PATH
        return bin_dataset(name[4:])
    return DATASETS.factory(name)(root=root, **options)


def bin_dataset(path: os.PathLike) -> Dataset:
    """insightface's ``.bin`` verification set (read safely by :mod:`idbench.bench.binset`), its images written
    once under the idbench cache; identities = the connected components of the same-identity pairs."""
    from .binset import bin_folds, load_bin

    b = load_bin(path)
    folder = idbench_home() / "bin" / bytes_key(Path(path).read_bytes())[:16]
    folder.mkdir(parents=True, exist_ok=True)
    parent = list(range(len(b.images)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for (i, j), same in zip(b.pairs, b.issame):
        if same:
            parent[find(int(i))] = find(int(j))
    items = []
    for i, data in enumerate(b.images):
        p = folder / (f"{i:06d}" + (".png" if data[:4] == b"\x89PNG" else ".jpg"))
        if not p.is_file():
            p.write_bytes(data)
        items.append(Item(p, f"pairgroup_{find(i):06d}"))
    pairs = np.concatenate([b.pairs, b.issame[:, None].astype(np.int64)], 1)
    return Dataset("bin", str(path), items, f"{Path(path).name}: {len(b.issame)} pairs over {len(items)} aligned "
                   f"crops, insightface's 10 consecutive folds", split="bin", pairs=pairs,
                   folds=bin_folds(len(b.issame)),
                   notes=["identities of a .bin set are unknown: images joined by a same-identity pair share one"])


# --- folder ---------------------------------------------------------------------------------------

@register_dataset("folder", "one sub-folder per identity, images inside (any depth)")
def folder_dataset(root=None, min_images: int = 1, frames: int = 10, **_) -> Dataset:
    if root is None:
        raise InputError("dataset 'folder' needs --root DIR (one sub-folder per identity)")
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset root {root} is not a folder")
    by_id, ignored = scan_identity_folders(root)
    by_id, notes = _one_spelling(_without_run_folders(root, by_id, ignored))
    items = []
    for ident, files in by_id.items():
        vids = expand_videos(files, frames)  # a video: --frames evenly spaced frames, one item each
        ignored += vids.failed
        files = vids.files
        if len(files) >= min_images:
            items += [Item(f, ident, video=vids.source(f)[0] if str(f) in vids.origin else None,
                           frame=vids.origin[str(f)][1] if str(f) in vids.origin else None) for f in files]
        else:
            ignored += [(str(f), f"identity {ident} has {len(files)} < {min_images} images") for f in files]
    if not items:
        raise InputError(f"no images found in identity sub-folders of {root}")
    n_id = len({i.identity for i in items})
    note = f"; {len(ignored)} other entries under the root not used (listed with reasons)" if ignored else ""
    return Dataset("folder", str(root), items, f"{len(items)} images of {n_id} identities from {root}{note}",
                   ignored=[dropped("list", p, r) for p, r in ignored], notes=notes)


def _without_run_folders(root: Path, by_id: dict, ignored: list) -> dict:
    """An idbench output folder under the root (it holds the run lock) is not an identity: listed, not used."""
    from idbench.atomic import LOCK_NAME

    out = {}
    for ident, files in by_id.items():
        if (root / ident / LOCK_NAME).exists():
            ignored += [(str(f), "inside an idbench output folder (--out), not a dataset image") for f in files]
        else:
            out[ident] = files
    return out


def _one_spelling(by_id: dict) -> Tuple[dict, List[str]]:
    """Identity folder names in their NFC spelling: the NFC and NFD spellings of one name (macOS writes NFD)
    are one person, and each merge is a note."""
    from idbench.escape import nfc, shown

    out: dict = {}
    spellings: dict = {}
    for ident, files in by_id.items():
        key = nfc(ident)
        out.setdefault(key, []).extend(files)
        spellings.setdefault(key, []).append(ident)
    notes = [f"identity folders {', '.join(repr(shown(s)) for s in v)} are one name in different Unicode "
             f"spellings: merged as {shown(k)!r} (NFC)" for k, v in spellings.items() if len(v) > 1]
    return {k: sorted(v) for k, v in out.items()}, notes


# --- LFW ------------------------------------------------------------------------------------------

LFW_CENTER = (125.0, 125.0)  # LFW images are 250 x 250, centred on the labelled face


@register_dataset("lfw", "LFW with pairs.txt View 2 (10 folds x 600 pairs)")
def lfw_dataset(root=None, **_) -> Dataset:
    if root is None:
        raise InputError("dataset 'lfw' needs --root (the folder holding pairs.txt and the image folder)")
    root = Path(root)
    pairs_file = root / "pairs.txt"
    if not pairs_file.is_file():
        raise InputError(f"{pairs_file} not found (LFW View 2 protocol file)")
    img_dir = next((root / d for d in ("lfw-deepfunneled", "lfw", "lfw_funneled") if (root / d).is_dir()), None)
    if img_dir is None:
        raise InputError(f"no LFW image folder (lfw-deepfunneled/, lfw/) under {root}")
    lines = pairs_file.read_text(encoding="utf-8", errors="replace").split("\n")
    n_folds, n_per = _lfw_header(pairs_file, lines[0])
    index = {}
    items: List[Item] = []

    def item(name: str, num: str) -> int:
        p = img_dir / name / f"{name}_{int(num):04d}.jpg"
        if p not in index:
            index[p] = len(items)
            items.append(Item(p, name, center=LFW_CENTER))
        return index[p]

    pairs, folds = [], []
    body = [l.split() for l in lines[1:] if l.strip()]
    if len(body) != n_folds * n_per * 2:
        raise InputError(f"{pairs_file}: expected {n_folds * n_per * 2} pairs, found {len(body)}")
    numbered = [(n + 1, ln.split()) for n, ln in enumerate(lines) if n and ln.strip()]
    for k, (line_no, parts) in enumerate(numbered):
        _lfw_line(pairs_file, line_no, parts, same=(k // n_per) % 2 == 0)
        if len(parts) == 3:
            pairs.append((item(parts[0], parts[1]), item(parts[0], parts[2]), 1))
        else:
            pairs.append((item(parts[0], parts[1]), item(parts[2], parts[3]), 0))
        folds.append(k // (2 * n_per))
    used = {str(it.path) for it in items}
    unused = sum(1 for f in img_dir.rglob("*") if f.suffix.lower() in IMAGE_EXTS and str(f) not in used)
    notes = [f"{unused} images under {img_dir} are not in pairs.txt (not used by View 2)"] if unused else []
    return Dataset("lfw", str(root), items, f"LFW View 2: {len(pairs)} pairs over {len(items)} images, "
                   f"{n_folds} folds", split="view2", pairs=np.array(pairs, np.int64), folds=np.array(folds),
                   notes=notes)


def _lfw_header(f: Path, line: str) -> Tuple[int, int]:
    """``N_FOLDS PAIRS_PER_HALF`` (View 2: ``10 300``), both positive integers."""
    parts = line.split()
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        from idbench.escape import shown

        raise InputError(f"{f}: line 1 must be 'N_FOLDS PAIRS_PER_FOLD_HALF' (two positive integers, View 2: "
                         f"'10 300'), got {shown(line.strip()[:60])!r}")
    return int(parts[0]), int(parts[1])


def _lfw_line(f: Path, line_no: int, parts: List[str], same: bool) -> None:
    """A pair line: ``name n1 n2`` (same person) or ``name1 n1 name2 n2`` (different), image numbers >= 1."""
    from idbench.escape import shown

    want = 3 if same else 4
    nums = [parts[1], parts[2]] if len(parts) == 3 else [parts[1], parts[3]] if len(parts) == 4 else []
    if len(parts) != want or not all(n.isdigit() and 1 <= int(n) <= 9999 for n in nums):
        form = "'name n1 n2' (a same-person pair)" if same else "'name1 n1 name2 n2' (a different-person pair)"
        raise InputError(f"{f}: line {line_no} must be {form} with image numbers 1..9999, got "
                         f"{shown(' '.join(parts)[:80])!r}")
    names = [parts[0]] if len(parts) == 3 else [parts[0], parts[2]]
    if any(n in (".", "..") or "/" in n or "\\" in n for n in names):
        raise InputError(f"{f}: line {line_no}: a name with a path separator or '..' ({shown(names[0])!r})")


# --- FF++ -----------------------------------------------------------------------------------------

FFPP_SPLIT_SOURCES = ("splits", "dataset/splits", ".")


def ffpp_split_ids(root: Path, split: str, splits_dir: Optional[os.PathLike] = None) -> List[Tuple[str, str]]:
    """The (a, b) id pairs of an official FF++ split file (``train``/``val``/``test`` .json)."""
    cands = [Path(splits_dir)] if splits_dir else [root / s for s in FFPP_SPLIT_SOURCES]
    for d in cands:
        f = d / f"{split}.json"
        if f.is_file():
            try:
                pairs = json.loads(f.read_text())
            except json.JSONDecodeError as e:
                raise InputError(f"{f}: not a valid FF++ split file ({e.msg}, line {e.lineno})") from None
            except UnicodeDecodeError:
                raise InputError(f"{f}: not a valid FF++ split file (not UTF-8 text)") from None
            return _ffpp_pairs(f, pairs)
    raise InputError(f"FF++ split file {split}.json not found in {', '.join(str(c) for c in cands)} "
                     f"(give --splits DIR holding train/val/test.json)")


def _ffpp_pairs(f: Path, pairs) -> List[Tuple[str, str]]:
    """The split's ``[["000", "003"], ...]``: a non-empty list of pairs of video ids (digits)."""
    if not isinstance(pairs, list) or not pairs:
        raise InputError(f"{f}: an FF++ split file is a non-empty JSON list of [id, id] pairs, got "
                         f"{type(pairs).__name__ if pairs else 'an empty list'}")
    for k, p in enumerate(pairs):
        if (not isinstance(p, list) or len(p) != 2
                or not all(isinstance(x, (str, int)) and not isinstance(x, bool) and str(x).isdigit() for x in p)):
            raise InputError(f"{f}: entry {k} is {json.dumps(p)[:60]}, expected a pair of video ids like "
                             f"[\"000\", \"003\"]")
    return [(str(a), str(b)) for a, b in pairs]


@register_dataset("ffpp", "FaceForensics++ originals: N evenly spaced frames per video of the official split")
def ffpp_dataset(root=None, split: str = "test", compression: str = "c23", frames: int = 10,
                 splits: Optional[os.PathLike] = None, frames_dir: Optional[os.PathLike] = None,
                 progress: bool = True, **_) -> Dataset:
    from tqdm.auto import tqdm

    if root is None:
        raise InputError("dataset 'ffpp' needs --root (the FaceForensics++ root)")
    root = Path(root)
    vdir = root / "original_sequences" / "youtube" / compression / "videos"
    if not vdir.is_dir():
        raise InputError(f"FF++ originals not found: {vdir} is missing (compression '{compression}')")
    pairs = ffpp_split_ids(root, split, splits)
    ids = sorted({x for p in pairs for x in p})
    frames_root = Path(frames_dir) if frames_dir else idbench_home() / "frames" / "ffpp" / compression
    items: List[Item] = []
    notes = []
    for vid in tqdm(ids, desc=f"ffpp {split} frames", disable=not progress):
        video = vdir / f"{vid}.mp4"
        if not video.is_file():
            notes.append(f"{video}: missing video")
            continue
        try:
            st = video.stat()
            vkey = content_key(str(video.resolve()), st.st_size, st.st_mtime_ns)[:16]
            for idx, p in extract_frames(video, frames, frames_root / f"{vid}-{vkey}"):
                items.append(Item(p, vid, video=vid, frame=idx))
        except IdbenchError as e:
            notes.append(str(e))
    if not items:
        raise InputError(f"no frames could be read from {vdir} for split {split}")
    found = len({it.video for it in items})  # what was found, not what the split expects
    d = Dataset("ffpp", str(root), items, f"FF++ {split} split ({compression}): {found} of {len(ids)} {split} "
                f"videos found ({len(ids) - found} missing or unreadable, listed), {frames} frames each, "
                f"{len(items)} frames", split=split, notes=notes, video_pairs=pairs)
    return d


# --- sample (embedded default) --------------------------------------------------------------------

SAMPLE_IMAGES = (
    ("insightface", "data/images/t1.jpg"),
    ("insightface", "data/images/Tom_Hanks_54745.png"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ("skimage", "data/astronaut.png"),
)


@register_dataset("sample", "embedded default: the face photos that installed packages ship (tiny; see report)")
def sample_dataset(root=None, views: int = 4, seed: int = 0, **_) -> Dataset:
    """Faces from images shipped inside installed packages, one identity per face.

    There is one photo per person, so each identity's other "images" are augmented views of the
    same photo (flip, scale, rotation, brightness, JPEG re-encoding). Positive pairs are therefore
    much easier than on real data; the sample exists to run the whole pipeline offline, not to rank
    encoders. A HOG face is kept only when MTCNN, an independent CNN detector, confirms it
    (:func:`confirmed_faces`): HOG alone takes the mission patch on scikit-image's astronaut for a face.
    """
    import cv2

    from idbench.imageio import read_image
    from idbench.weights import package_dir

    out = (Path(root) if root else idbench_home() / "sample") / f"v{SAMPLE_VERSION}-views{views}-seed{seed}"
    marker = out.with_name(out.name + ".json")  # beside the folder: the dataset root holds only faces
    if marker.is_file():
        return _sample_from(out)
    rng = np.random.default_rng(seed)
    n = 0
    for pkg, rel in SAMPLE_IMAGES:
        base = package_dir(pkg)
        if base is None or not (base / rel).is_file():
            continue
        img = read_image(base / rel)
        for k, face in confirmed_faces(img):
            ident = f"{Path(rel).stem}_{k}".lower()
            x1, y1, x2, y2 = face.box
            m = 0.8 * face.width
            h, w = img.shape[:2]
            crop = img[int(max(y1 - m, 0)):int(min(y2 + m, h)), int(max(x1 - m, 0)):int(min(x2 + m, w))]
            d = out / ident
            d.mkdir(parents=True, exist_ok=True)
            for v in range(views):
                view = crop if v == 0 else _augment(crop, rng)
                cv2.imwrite(str(d / f"{v:02d}.jpg"), np.ascontiguousarray(view[:, :, ::-1]),
                            [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96)) if v else 95])
            n += 1
    if n < 3:
        raise IdbenchError("the embedded sample needs insightface, matplotlib and scikit-image installed")
    marker.write_text(json.dumps({"identities": n, "views": views, "seed": seed, "version": SAMPLE_VERSION}))
    return _sample_from(out)


SAMPLE_VERSION = 2  # 2: faces confirmed by MTCNN (v1 held the astronaut's mission patch)


def confirmed_faces(img: np.ndarray, min_width: float = 60, min_iou: float = 0.3):
    """(index, face) of dlib-HOG's faces at least ``min_width`` px wide that MTCNN also finds
    (a box overlapping with IoU >= ``min_iou``); the index is HOG's, so identity names are stable."""
    from idbench.detectors import create_detector

    others = [f.box for f in create_detector("mtcnn").detect(img)]
    return [(k, f) for k, f in enumerate(create_detector("dlib-hog").detect(img))
            if f.width >= min_width and any(_iou(f.box, b) >= min_iou for b in others)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(0.0, float(x2 - x1)) * max(0.0, float(y2 - y1))
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def _sample_from(out: Path) -> Dataset:
    d = folder_dataset(out)
    n_id = len(d.identities)
    d.name = "sample"
    d.description = (f"EMBEDDED SAMPLE, VERY SMALL: {n_id} faces found in photos shipped by installed packages "
                     f"(insightface, matplotlib, scikit-image), {len(d.items)} images; each identity's other images "
                     f"are augmented views of ONE photo, so positives are far easier than on real data. "
                     f"Use it to check the pipeline, not to rank encoders.")
    return d


def _augment(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    h, w = crop.shape[:2]
    ang = rng.uniform(-12, 12)
    s = rng.uniform(0.85, 1.15)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, s)
    m[:, 2] += rng.uniform(-0.05, 0.05, 2) * [w, h]
    out = cv2.warpAffine(crop, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    gain = rng.uniform(0.75, 1.25)
    bias = rng.uniform(-20, 20)
    return np.clip(out.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
