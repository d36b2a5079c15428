"""Argument validation for every ``bench`` command, done before any work starts.

A typo must not cost the run: every name (encoder, detector, swapper, the names in ``--weights``,
dataset), every folder and every output location is checked first, and the first problem is one
:class:`~idbench.errors.IdbenchError` line with close-match suggestions. The cheap checks
(detector, dataset, folders, swappers, outputs) run before the encoder names, whose registry
imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

from idbench.errors import IdbenchError, InputError, UnknownNameError, storage_error


def split_names(value: str, option: str) -> List[str]:
    """Comma-separated names; an empty list is an error (``--encoders ""`` would give an empty report)."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise InputError(f"{option} is empty: give at least one name (see `bench list`)")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"{option} lists {', '.join(twice)} more than once")
    return names


def check_detector(name: str) -> None:
    from idbench.detectors import DETECTORS

    DETECTORS.spec(name)  # UnknownNameError: "unknown detector 'hog'. Did you mean: dlib-hog?"


def check_encoders(names: Sequence[str]) -> None:
    from idbench.encoders import get_spec
    from idbench.encoders.contract import is_contract_path, read_contract

    for n in names:
        read_contract(n) if is_contract_path(n) else get_spec(n)  # a contract file is checked whole


def check_encoder_weights(names: Sequence[str], weights: Optional[Mapping[str, os.PathLike]] = None) -> None:
    """Every weight file the command's encoders need, found or given: one message listing all missing ones."""
    from idbench.encoders.registry import missing_weight_files
    from idbench.errors import WeightsNotFoundError

    missing = missing_weight_files(names, {k: str(v) for k, v in (weights or {}).items()})
    if missing:
        head = "missing weight file" if len(missing) == 1 else f"{len(missing)} missing weight files"
        raise WeightsNotFoundError(f"{head}: " + "; ".join(missing))


def check_weights(weights: Mapping[str, os.PathLike], used: Sequence[str]) -> None:
    """Each ``--weights NAME=PATH`` names an encoder of this run and an existing file."""
    from idbench.encoders import list_encoders

    for name, path in weights.items():
        if name not in used:
            known = list_encoders()
            if name not in known:
                raise UnknownNameError("encoder in --weights", name, used or known)
            raise InputError(f"--weights names {name}, which this command does not use (it uses "
                             f"{', '.join(used)})")
        if not Path(path).is_file():
            raise InputError(f"--weights {name}={path}: no such file")


def check_swappers(specs: Sequence[str], dataset: str, weights: Optional[Mapping[str, str]] = None) -> None:
    """Names, ``results:DIR`` folders, and a learned swapper's weight files (found and large enough, not yet
    loaded: a missing file is one line saying where it goes, before any work)."""
    from idbench.swapper import parse_swapper
    from idbench.swapper.learned import LEARNED_SPECS, factory_weights

    for s in specs:
        if s.startswith("results:"):
            from idbench.swapper.results import parse_target

            d = Path(parse_target(s.split(":", 1)[1])[1])  # results:NAME=DIR names the swapper NAME
            if not d.is_dir():
                raise InputError(f"--swappers {s}: results folder {d} does not exist")
            continue
        parse_swapper(s)  # an unknown name raises with close-match suggestions
        if s.startswith("ffpp:") and dataset != "ffpp":
            raise InputError(f"--swappers {s} reads FaceForensics++'s own videos: it needs --dataset ffpp")
        if s in LEARNED_SPECS:
            LEARNED_SPECS[s].resolve(factory_weights(s, weights or {})["weights"])


def check_dataset(name: str, root: Optional[os.PathLike], splits: Optional[os.PathLike] = None) -> None:
    from idbench.bench.datasets import DATASETS

    if name.startswith("bin:"):  # an insightface .bin verification set
        if not Path(name[4:]).is_file():
            raise InputError(f"--dataset {name}: no such file")
        return
    DATASETS.spec(name)
    if root is None and name != "sample":
        raise InputError(f"--dataset {name} needs --root DIR")
    if root is not None and not Path(root).is_dir() and name != "sample":
        raise InputError(f"--root {root}: no such folder")
    if splits is not None and not Path(splits).is_dir():
        raise InputError(f"--splits {splits}: no such folder")


def check_inputs(inputs: Iterable[os.PathLike]) -> None:
    for p in inputs:
        if not os.path.lexists(p):
            raise InputError(f"input {p}: no such file or folder")


def check_writable_dir(d: os.PathLike, what: str = "output folder") -> None:
    """Create ``d`` if needed and write a probe file there: read-only, full or forbidden is one line now,
    not a traceback after the work is done."""
    d = Path(d)
    if d.exists() and not d.is_dir():
        raise InputError(f"{what} {d} is a file, not a folder")
    probe = d / f".idbench-write-test-{os.getpid()}"
    try:
        d.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"x")
        probe.unlink()
    except OSError as e:
        raise storage_error(d if not probe.exists() else probe, e) from None


def check_output_file(f: os.PathLike) -> None:
    f = Path(f)
    if f.is_dir():
        raise InputError(f"--out {f} is a folder; give a file name")
    check_writable_dir(f.parent if str(f.parent) else Path("."), "folder of --out")


def check_cache(cache_dir: Optional[os.PathLike], no_cache: bool) -> None:
    if no_cache or cache_read_only(cache_dir):
        return
    from idbench.weights import idbench_home

    check_writable_dir(Path(cache_dir) if cache_dir else idbench_home() / "cache", "cache folder")


def cache_read_only(cache_dir: Optional[os.PathLike]) -> bool:
    """True for a warm cache that cannot be written (a lab's shared cache on a read-only mount): it is used
    read-only. A cold (empty) unwritable cache is refused by :func:`check_cache`."""
    from idbench.weights import idbench_home

    d = Path(cache_dir) if cache_dir else idbench_home() / "cache"
    if not d.is_dir() or not any(d.iterdir()):
        return False
    try:
        check_writable_dir(d, "cache folder")
        return False
    except IdbenchError:
        return True


# numeric options: (lowest allowed, highest allowed or None, what it is); one line, exit 2, before any work
NUMBERS = {"seed": (0, 2**63 - 1, "a random seed"), "n_boot": (1, 10**6, "bootstrap resamples"),
           "k_partners": (1, 10**6, "partner candidates"), "min_face": (1, 4096, "pixels (the face box's shorter "
                                                                               "side)"),
           "frames": (1, 10**5, "frames per video"), "saliency_faces": (0, 10**4, "faces"),
           "n_perm": (1, 10**7, "permutations"), "detect_batch": (1, 4096, "images per detector call")}


def check_numbers(**values) -> None:
    """Each numeric option in its range (:data:`NUMBERS`); ``None`` means the option was not given."""
    for key, v in values.items():
        lo, hi, what = NUMBERS[key]
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
            rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise InputError(f"--{key.replace('_', '-')} {v!r}: must be an integer in {rng} ({what})")


def check_outside_root(root: Optional[os.PathLike], **folders) -> None:
    """``--out`` or the cache inside the dataset root would be read back as an identity: refused."""
    if root is None:
        return
    r = Path(root).resolve()
    for option, d in folders.items():
        if d is not None and (Path(d).resolve() == r or Path(d).resolve().is_relative_to(r)):
            raise InputError(f"--{option.replace('_', '-')} {d} is inside the dataset root {root}: its files would "
                             f"be read as data by the next run; choose a folder outside the root")


def face_policy(multi_face: str, min_face: int, all_faces: bool = False):
    """The :class:`~idbench.face_policy.FacePolicy` of ``--multi-face``/``--min-face`` (``--all-faces`` = all)."""
    from idbench.face_policy import FacePolicy

    if all_faces and multi_face not in ("largest", "all"):
        raise InputError(f"--all-faces contradicts --multi-face {multi_face}")
    return FacePolicy("all" if all_faces else multi_face, min_face)


def validate_run(*, encoders: Sequence[str], id_encoders: Sequence[str], detector: str, swappers: Sequence[str],
                 weights: Dict[str, str], dataset: str, root, splits, out, cache_dir, no_cache: bool) -> None:
    """Everything ``bench run`` is given, cheap checks first."""
    check_detector(detector)
    check_dataset(dataset, root, splits)
    check_swappers(swappers, dataset, weights)
    check_outside_root(root if dataset == "folder" else None, out=out, cache_dir=cache_dir)  # it lists all
    check_writable_dir(out)
    check_cache(cache_dir, no_cache)
    check_encoders([*encoders, *[e for e in id_encoders if e not in encoders]])
    check_weights(weights, [*encoders, *[e for e in id_encoders if e not in encoders], *swapper_weight_keys(swappers)])
    check_encoder_weights([*encoders, *[e for e in id_encoders if e not in encoders]], weights)


def swapper_weight_keys(swappers: Sequence[str]) -> List[str]:
    """The ``--weights`` keys the learned swappers among ``swappers`` take (file names, inswapper's encoder)."""
    from idbench.swapper.learned import weight_names

    return sorted({key for s in swappers for key in weight_names(s).values()})


def validate_embed(*, encoder: str, detector: str, inputs: Sequence[os.PathLike], out, weights,
                   cache_dir, no_cache: bool) -> None:
    """Everything ``bench embed`` is given, cheap checks first."""
    check_detector(detector)
    check_inputs(inputs)
    check_output_file(out)
    check_cache(cache_dir, no_cache)
    if not encoder.strip():
        raise InputError("--encoder is empty: give an encoder name (bench list encoders)")
    check_encoders([encoder])
    if weights is not None and not Path(weights).is_file():
        raise InputError(f"--weights {weights}: no such file")
    check_encoder_weights([encoder], {encoder: weights} if weights is not None else None)


def validate_command(*, detector: Optional[str] = None, inputs: Sequence[os.PathLike] = (), out_dir=None,
                     out_file=None, cache_dir=None, no_cache: bool = True, encoders: Sequence[str] = ()) -> None:
    """The common checks of the other commands (swap, estimate, saliency, prepare), cheap ones first."""
    if detector is not None:
        check_detector(detector)
    check_inputs(inputs)
    if out_dir is not None:
        check_writable_dir(out_dir)
    if out_file is not None:
        check_output_file(out_file)
    check_cache(cache_dir, no_cache)
    if encoders:
        check_encoders(encoders)
