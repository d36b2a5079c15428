"""Video files among a command's inputs: ``--frames`` evenly spaced frames each, one row per frame.

``bench embed``, ``bench estimate``, ``bench saliency`` and the ``folder`` dataset read a video file
(:data:`idbench.imageio.VIDEO_EXTS`) as N evenly spaced frames (``iter_video_frames``: streamed, one
decoded frame in memory at a time). The frames are written once as PNG under
``$IDBENCH_HOME/frames/videos/<sha256 of the video's bytes>/`` (cached by content: a renamed or copied
video reuses them, an edited one gets new ones), then go through the pipeline like photos; each keeps
its video and frame index. A video that cannot be decoded is a listed failure with the decoder's
reason, never "not a readable image".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from idbench.imageio import VIDEO_EXTS


def is_video(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def extract_frames(video: Path, n: int, out_dir: Path) -> List[Tuple[int, Path]]:
    """Decode N evenly spaced frames of a video to PNG, once (streamed: one frame in memory at a time)."""
    import cv2

    from idbench.swapper.ffpp import iter_video_frames

    out_dir.mkdir(parents=True, exist_ok=True)
    done = out_dir / f"frames-{n}.json"
    if done.is_file():
        return [(int(i), out_dir / p) for i, p in json.loads(done.read_text())]
    got = []
    for idx, frame in iter_video_frames(video, n):
        p = out_dir / f"{idx:05d}.png"
        cv2.imwrite(str(p), np.ascontiguousarray(frame[:, :, ::-1]))
        got.append((idx, p.name))
    done.write_text(json.dumps(got))
    return [(i, out_dir / p) for i, p in got]


def frames_dir(video: Path) -> Path:
    """Where a video's frames are cached: keyed by the sha256 of its bytes."""
    from idbench.weights import cached_sha256, idbench_home

    return idbench_home() / "frames" / "videos" / cached_sha256(video)[:32]


@dataclass
class Expanded:
    """Inputs with every video replaced by its frames: ``files`` to read, ``origin[frame file] = (video,
    frame index)``, ``failed`` = ``(video, reason)`` for videos that could not be decoded."""

    files: List[Path] = field(default_factory=list)
    origin: Dict[str, Tuple[str, int]] = field(default_factory=dict)
    failed: List[Tuple[str, str]] = field(default_factory=list)

    def source(self, path) -> Tuple[str, int]:
        """(the file a row came from, its frame index or -1 for a photo)."""
        return self.origin.get(str(path), (str(path), -1))

    def label(self, path) -> str:
        """``video.mp4#12`` for a frame, the path for a photo (skipped lists, CSV rows)."""
        src, fr = self.source(path)
        return f"{src}#{fr}" if fr >= 0 else src


def expand_videos(files: Sequence, n: int) -> Expanded:
    """Replace each video among ``files`` by its ``n`` evenly spaced frames (see the module docstring)."""
    from idbench.errors import IdbenchError

    out = Expanded()
    for f in files:
        f = Path(f)
        if not is_video(f):
            out.files.append(f)
            continue
        try:
            frames = extract_frames(f, n, frames_dir(f))
        except (IdbenchError, OSError) as e:
            out.failed.append((str(f), f"unreadable video: {str(e).replace(f'{f}: ', '')}"))
            continue
        for idx, p in frames:
            out.files.append(p)
            out.origin[str(p)] = (str(f), int(idx))
    return out
