"""Datasets behind one registry: ``sample`` (embedded default), ``folder``, ``lfw`` and ``ffpp``, one file each.

A dataset is a list of :class:`Item` (an image file with an identity label, and for videos the
video id and frame index) plus, for protocols that fix them, verification pairs and folds.

Adding a dataset is one module in this package: a :class:`DatasetSpec` declaring the dataset's options
(``root`` and e.g. ``split``, ``frames``) and a factory ``factory(spec, weights, device, **options) -> Dataset``
registered with :func:`register_dataset`. The modules register on the first lookup; installed plugins through
the ``idbench.datasets`` entry-point group. ``load_dataset(name, root, **options)`` passes a dataset only the
options it declares (``bench run`` gives every dataset its generic ``split``, ``frames``...);
``DATASETS.create(name, root=..., **options)`` rejects an undeclared one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Tuple, Union

import numpy as np

from idbench.cache import bytes_key
from idbench.registry import Option, Registry, Spec
from idbench.weights import idbench_home


@dataclass(frozen=True)
class DatasetSpec(Spec):
    """The shared :class:`~idbench.registry.Spec` (weights, licence, paper, options keyword-only)."""

    description: str = field()  # positional, second (the shared Spec has it keyword-only)


#: the option every dataset declares: the folder it is read from
ROOT = Option("root", None, "the dataset's folder (--root)")


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


#: the modules of this package register on the first lookup; plugins through ``idbench.datasets``
DATASETS: Registry[DatasetSpec] = Registry("dataset", packages=(__name__,))


def register_dataset(spec: Union[DatasetSpec, str], description: str = "") -> Callable:
    """Decorator: register ``factory(spec, weights, device, **options) -> Dataset`` under ``spec.name``
    (``register_dataset(NAME, DESCRIPTION)``: a spec whose only option is ``root``)."""
    if isinstance(spec, str):
        spec = DatasetSpec(spec, description, options=(ROOT,))
    return DATASETS.register(spec.name, spec)


def load_dataset(name: str, root: Optional[os.PathLike] = None, **options) -> Dataset:
    """The dataset ``name`` read from ``root``, given the options of ``options`` it declares (the others are a
    run's generic options for other datasets: not passed). ``bin:PATH`` is an insightface ``.bin`` set."""
    if name.startswith("bin:"):  # an insightface verification set: --dataset bin:PATH
        return bin_dataset(name[4:])
    declared = DATASETS.spec(name).option_names()
    return DATASETS.create(name, root=root, **{k: v for k, v in options.items() if k in declared})


def bin_dataset(path: os.PathLike) -> Dataset:
    """insightface's ``.bin`` verification set (read safely by :mod:`idbench.bench.binset`), its images written
    once under the idbench cache; identities = the connected components of the same-identity pairs."""
    from ..binset import bin_folds, load_bin

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


# the datasets' own helpers, importable from here as before the package was split
from .ffpp import FFPP_SPLIT_SOURCES, ffpp_split_ids  # noqa: E402,F401
from .folder import folder_dataset  # noqa: E402,F401
from .lfw import LFW_CENTER, lfw_dataset  # noqa: E402,F401
from .sample import SAMPLE_IMAGES, SAMPLE_VERSION, confirmed_faces, sample_dataset  # noqa: E402,F401
from ..video_inputs import expand_videos, extract_frames  # noqa: E402,F401
