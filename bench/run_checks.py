"""Checks of a run between its stages: one bad encoder never sinks the run, an empty run is an error.

:func:`drop_non_finite_encoders` lists an encoder whose embeddings hold NaN or infinite values as failed
(its name and the reason, in ``results.json`` -> ``failures`` and on the console) and removes it, so the other
encoders' results, leaderboard and report are still written. :func:`check_usable` makes a run that kept no
face, or no usable protocol pair, an error instead of an empty success.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Dict, List, Optional

import numpy as np

from idbench.errors import InputError
from idbench.pipeline import failure


def drop_non_finite_encoders(encoders: Dict[str, object], embeddings: Dict[str, np.ndarray],
                             failures: List) -> List[str]:
    """Remove (in place) every encoder with a non-finite embedding; returns their names."""
    bad = []
    for name in list(encoders):
        e = np.asarray(embeddings[name])
        n_bad = int(np.count_nonzero(~np.isfinite(e).all(axis=1))) if e.size else 0
        if n_bad:
            reason = (f"encoder failed: {n_bad} of {len(e)} embeddings hold NaN or infinite values; its results "
                      f"are left out, the other encoders' are kept")
            failures.append(failure("encoder", name, reason))
            print(f"warning: encoder {name}: {reason}", file=sys.stderr)
            del encoders[name], embeddings[name]
            bad.append(name)
    if encoders == {} and bad:
        raise InputError(f"every encoder failed ({', '.join(bad)}: non-finite embeddings); nothing to report")
    return bad


def check_usable(n_faces: int, skipped: List, pairs: Optional[np.ndarray], n_protocol_pairs: int = 0) -> None:
    """One-line :class:`InputError` for a run that kept no face, or none of its protocol pairs."""
    if n_faces == 0:
        reasons = Counter(str(r) for _, r in skipped).most_common(1)
        why = f"; most common reason: {reasons[0][0]} ({reasons[0][1]} images)" if reasons else ""
        raise InputError(f"no face kept in {len(skipped)} images{why}")
    if pairs is not None and len(pairs) == 0:
        raise InputError(f"none of the {n_protocol_pairs} protocol pairs is usable (no face in one of their images)")
