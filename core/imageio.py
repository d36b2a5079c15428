"""Reading images into one canonical form: uint8 RGB, H x W x 3, upright.

Handles grayscale, gray+alpha, RGBA (alpha dropped, composited on black), 16-bit and float
images; the EXIF orientation tag is applied (a phone photo stored sideways is turned upright, as
every viewer shows it); corrupt files and non-images raise :class:`ImageReadError` with a one-line
message. :func:`scan_inputs` lists the image files under folders and every other file with the
reason it is not used; symlinks are followed once (loops and duplicates are listed, not walked).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Set, Tuple

import numpy as np

from .errors import ImageReadError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")  # read as frames (idbench.bench.video_inputs)
# pixel budget, checked on the header before decoding: 50 Mpx (a 16-bit RGBA image of this size decodes to
# 400 MB; converted in row blocks, its peak is about 0.85 GB RSS); a decompression bomb never gets decoded
MAX_PIXELS = 50_000_000
MIN_SIDE = 8  # an image narrower than this holds no face (1x1, 20000x1 crash detectors' resizes)
MAX_FILE_BYTES = 1 << 30  # 1 GiB: /dev/zero-like or huge inputs are refused before reading


CONVERT_ROWS = 512  # rows converted at a time: a deep image's float temporaries stay small (memory budget)


def to_rgb_uint8(img: np.ndarray, *, bgr: bool = True) -> np.ndarray:
    """Convert any decoded array (gray, gray+alpha, 3/4 channels, 8/16-bit, float) to uint8 RGB."""
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[0] > CONVERT_ROWS and a.dtype.kind in "ui" and (a.dtype != np.uint8 or a.shape[2] != 3):
        out = np.empty((a.shape[0], a.shape[1], 3), np.uint8)  # integer data: each block converts alone
        for i in range(0, a.shape[0], CONVERT_ROWS):
            out[i:i + CONVERT_ROWS] = to_rgb_uint8(a[i:i + CONVERT_ROWS], bgr=bgr)
        return out
    if a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif a.dtype.kind == "f":
        scale = 255.0 if float(np.nanmax(a)) <= 1.0 else 1.0
        a = np.clip(np.nan_to_num(a) * scale, 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3:
        raise ImageReadError(f"unsupported image array of shape {a.shape}")
    c = a.shape[2]
    if c == 1:
        return np.repeat(a, 3, axis=2)
    if c == 2:  # gray + alpha
        g = (a[:, :, :1].astype(np.float32) * (a[:, :, 1:2] / 255.0)).astype(np.uint8)
        return np.repeat(g, 3, axis=2)
    if c == 4:
        alpha = a[:, :, 3:4].astype(np.float32) / 255.0
        a = (a[:, :, :3].astype(np.float32) * alpha + 0.5).astype(np.uint8)
    elif c != 3:
        raise ImageReadError(f"unsupported image with {c} channels")
    if bgr and a.dtype == np.uint8:
        import cv2

        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_BGR2RGB)  # the same swap, 10x faster than numpy's
    return np.ascontiguousarray(a[:, :, ::-1] if bgr else a)


PIL_FILTERS = ("nearest", "bilinear", "bicubic")


def pil_resize(img: np.ndarray, size: Tuple[int, int], filter: str = "bilinear") -> np.ndarray:
    """``PIL.Image.resize`` of a uint8 H x W x 3 array to (W, H): the resize of the official scripts that
    hand torchvision a PIL image (PIL's filters are antialiased when shrinking, unlike OpenCV's)."""
    from PIL import Image

    if filter not in PIL_FILTERS:
        raise ValueError(f"PIL filter must be one of {PIL_FILTERS}, got {filter!r}")
    method = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[filter]
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((int(size[0]), int(size[1])), method))


def read_regular_file(path: os.PathLike, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file; a FIFO, device or socket is never read (opened non-blocking, checked with
    ``fstat``, so it cannot hang) and a file above ``limit`` bytes is refused. Raises :class:`ImageReadError`."""
    import stat

    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise ImageReadError(f"{p}: {'no such file' if e.errno == 2 else f'cannot read: {e.strerror or e}'}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO, device or socket"
            raise ImageReadError(f"{p}: not a regular file ({what}); not read")
        if st.st_size > limit:
            raise ImageReadError(f"{p}: file of {st.st_size} bytes is above the {limit}-byte limit")
        try:
            return f.read(limit + 1)
        except OSError as e:
            raise ImageReadError(f"{p}: cannot read: {e.strerror or e}") from None


def read_image(path: os.PathLike) -> np.ndarray:
    """Read an image file as uint8 RGB (H x W x 3)."""
    return decode_image(read_regular_file(path), str(path))


def check_image_size(width: int, height: int, name: str = "<bytes>") -> None:
    """One-line :class:`ImageReadError` for a size outside the budget (:data:`MAX_PIXELS`, :data:`MIN_SIDE`)."""
    if width * height > MAX_PIXELS:
        raise ImageReadError(f"{name}: image of {width}x{height} pixels is above the {MAX_PIXELS // 10**6} Mpx "
                             f"budget; not decoded")
    if min(width, height) < MIN_SIDE:
        raise ImageReadError(f"{name}: image of {width}x{height} pixels is degenerate (a side below "
                             f"{MIN_SIDE} px)")


def _declared_size(data: bytes, name: str) -> Optional[Tuple[int, int]]:
    """(width, height) from the file's header (Pillow reads no pixels); None if Pillow does not know it."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the budget below decides
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Image.DecompressionBombError as e:  # Pillow's own limit (179 Mpx) is above the budget too
        raise ImageReadError(f"{name}: {str(e).split(' could be')[0]}: above the {MAX_PIXELS // 10**6} Mpx "
                             f"budget; not decoded") from None
    except Exception:  # noqa: BLE001 - not a format Pillow reads: OpenCV decides, checked after decoding
        return None


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) as uint8 RGB."""
    import cv2

    p = name
    if len(data) == 0:
        raise ImageReadError(f"{p}: empty file")
    size = _declared_size(data, p)
    if size is not None:  # a decompression bomb is refused from its header, before any pixel is decoded
        check_image_size(*size, p)
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)  # UNCHANGED ignores EXIF
    except cv2.error:  # e.g. a header OpenCV finds too large itself
        img = None
    if img is None:
        raise ImageReadError(f"{p}: not a readable image (corrupt or unsupported format)")
    check_image_size(img.shape[1], img.shape[0], p)
    return apply_orientation(to_rgb_uint8(img, bgr=True), exif_orientation(data))


# --- EXIF orientation -----------------------------------------------------------------------------

ORIENTATIONS = {1: "upright", 2: "mirrored left-right", 3: "rotated 180 degrees", 4: "mirrored top-bottom",
                5: "transposed", 6: "rotated 90 degrees clockwise", 7: "transversed",
                8: "rotated 90 degrees counter-clockwise"}  # what is done to the stored pixels for display


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1..8) of encoded image bytes; 1 when absent or unreadable."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:  # reads the header only
            o = int(im.getexif().get(0x0112, 1))
    except Exception:  # not an image PIL knows, or a broken EXIF block: the pixels decide
        return 1
    return o if o in ORIENTATIONS else 1


def apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels (H x W x C) upright per the EXIF tag (the transforms of PIL's exif_transpose)."""
    ops = {2: lambda x: x[:, ::-1], 3: lambda x: x[::-1, ::-1], 4: lambda x: x[::-1],
           5: lambda x: x.transpose(1, 0, 2), 6: lambda x: np.rot90(x, -1),
           7: lambda x: x.transpose(1, 0, 2)[::-1, ::-1], 8: lambda x: np.rot90(x, 1)}
    op = ops.get(orientation)
    return a if op is None else np.ascontiguousarray(op(a))


def orientation_note(data: bytes) -> Optional[str]:
    """A one-line record of the EXIF orientation applied, or None for upright files."""
    o = exif_orientation(data)
    return None if o == 1 else f"EXIF orientation {o}: {ORIENTATIONS[o]} before detection"


def image_key(data: bytes) -> str:
    """Content key of an image: sha256 of its bytes, plus the EXIF orientation when it turns the pixels.

    Upright files keep the plain sha256 (existing caches stay valid); a rotated file gets its own key,
    so detections made before orientation was honoured are never read back for it.
    """
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    o = exif_orientation(data)
    return digest if o == 1 else hashlib.sha256(f"{digest}:exif-orientation={o}".encode()).hexdigest()


# --- listing files -------------------------------------------------------------------------------

@dataclass
class Listing:
    """Image files to use, and every other entry found with the reason it is not used."""

    files: List[Path] = field(default_factory=list)
    ignored: List[Tuple[str, str]] = field(default_factory=list)  # (path, reason)


class _Walker:
    """Recursive listing that follows symlinks once: a folder or file reached twice is listed, not used."""

    def __init__(self, listing: Listing, root: Optional[Path] = None):
        self.listing = listing
        self.root_real = os.path.realpath(root) if root is not None else None
        self.dirs: Dict[str, Path] = {}  # realpath -> first path it was walked from
        self.files: Dict[str, Path] = {}  # realpath -> the path it is used at
        self.stack: List[str] = [self.root_real] if self.root_real else []  # realpaths being walked
        self.found: List[Tuple[Path, str]] = []  # image files of the walk in progress

    def ignore(self, p: Path, reason: str) -> None:
        self.listing.ignored.append((str(p), reason))

    def target(self, p: Path) -> Optional[str]:
        """realpath of an entry; None (and listed) for a broken or self-referencing symlink."""
        try:
            return str(p.resolve(strict=True))
        except (OSError, RuntimeError):  # RuntimeError: symlink loop
            self.ignore(p, "broken or self-referencing symlink")
            return None

    def walk(self, d: Path) -> None:
        real = self.target(d)
        if real is None or not self.claim_dir(d, real):
            return
        try:
            entries = sorted(os.scandir(d), key=lambda e: (e.is_symlink(), e.name))  # real entries first
        except OSError as e:
            self.ignore(d, f"cannot list folder: {e.strerror or e}")
            return
        self.stack.append(real)
        for e in entries:
            p = Path(e.path)
            if p.is_dir():
                self.walk(p)
            else:
                self.file(p)
        self.stack.pop()

    def claim_dir(self, d: Path, real: str) -> bool:
        first = self.dirs.get(real)
        above = any(s == real or s.startswith(real + os.sep) for s in self.stack)
        if first is None and not above:
            self.dirs[real] = d
            return True
        if real == self.root_real:
            self.ignore(d, "symlink to the dataset root (not walked again)")
        elif above:
            self.ignore(d, f"symlink loop: points to {first or real}, a folder above it")
        else:
            how = "symlink; listed once" if d.is_symlink() else "given twice; listed once"
            self.ignore(d, f"same folder as {first} ({how})")
        return False

    def file(self, p: Path) -> None:
        real = self.target(p)
        if real is None:
            return
        if not os.path.isfile(real):
            self.ignore(p, "not a regular file")
        elif p.name.startswith("."):
            self.ignore(p, "hidden file")
        elif p.suffix.lower() not in IMAGE_EXTS + VIDEO_EXTS:
            self.ignore(p, f"not an image file ({p.suffix.lower() or 'no'} extension)")
        else:
            self.found.append((p, real))

    def finish(self) -> List[Path]:
        """The image files found since the last call, sorted; a file reached twice is used once, at a
        real path rather than through a symlink, and each other path is listed as a duplicate."""
        found, self.found = self.found, []
        winner: Dict[str, Path] = {}
        for p, real in found:
            if real in self.files:  # used by an earlier input
                continue
            if real not in winner or (not _direct(winner[real]) and _direct(p)):
                winner[real] = p
        used = []
        for p, real in found:
            first = self.files.get(real, winner.get(real))
            if first == p and real not in self.files:
                used.append(p)
            else:
                self.ignore(p, f"duplicate of {first} (same file through a symlink)")
        self.files.update(winner)
        return sorted(used)


def _direct(p: Path) -> bool:
    """True when no component of ``p`` is a symlink (the file's own path, not a way through a link)."""
    return os.path.realpath(p) == os.path.abspath(p)


def scan_inputs(inputs: Iterable[os.PathLike]) -> Listing:
    """Files given directly (always used: a bad one is reported when read), plus the image files
    found recursively in given folders (sorted); every other entry is in ``ignored`` with a reason."""
    listing = Listing()
    walker = _Walker(listing)
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            walker.walk(p)
            listing.files += walker.finish()
        else:
            listing.files.append(p)
    return listing


def scan_identity_folders(root: os.PathLike) -> Tuple[Dict[str, List[Path]], List[Tuple[str, str]]]:
    """A dataset root with one sub-folder per identity: {identity: sorted image files}, and every
    other entry under the root with the reason it is not used (top-level files, empty folders, ...)."""
    root = Path(root)
    listing = Listing()
    walker = _Walker(listing, root)
    walker.dirs[os.path.realpath(root)] = root
    walked = []
    for e in sorted(os.scandir(root), key=lambda e: (e.is_symlink(), e.name)):  # real folders first
        p = Path(e.path)
        if p.is_dir():
            walker.walk(p)
            walked.append(p)
        elif walker.target(p) is not None:
            walker.ignore(p, "top-level file, not inside an identity folder")
    by_id: Dict[str, List[Path]] = {}
    for f in walker.finish():
        by_id.setdefault(f.relative_to(root).parts[0], []).append(f)
    for p in walked:
        if p.name not in by_id and walker.dirs.get(os.path.realpath(p)) == p:
            walker.ignore(p, "identity folder holds no image")
    return dict(sorted(by_id.items())), listing.ignored


def iter_image_files(inputs: Iterable[os.PathLike]) -> Iterator[Path]:
    """Files given directly, plus every image file found recursively in given folders (sorted)."""
    yield from scan_inputs(inputs).files


def list_image_files(inputs: Iterable[os.PathLike]) -> List[Path]:
    return list(iter_image_files(inputs))
