"""What a step reads: the run's embeddings, labels and settings, and the shared resources (``needs``) that are
built once, on first use, by whichever step asks first: the bias pseudo-swaps, the protocol/verification pairs,
the swappers. A resource no requested step needs is never built."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np


@dataclass
class RunContext:
    """One run, for its steps. ``encoder`` is set (by :meth:`for_encoder`) while an encoder step runs."""

    cfg: Any  # bench.run.RunConfig
    swap_ctx: Any  # idbench.swapper.SwapContext: the table (paths, faces, embeddings), labels, frames, root
    encoders: Dict[str, Any]  # leaderboard name -> encoder
    cache: Any
    failures: List[dict]
    out_dir: Path
    pairs: Optional[np.ndarray] = None  # the dataset's protocol pairs mapped to rows (LFW), else None
    folds: Optional[np.ndarray] = None
    swappers: Dict[str, Any] = field(default_factory=dict)  # --swappers, built before any work
    results: Dict[str, Any] = field(default_factory=dict)  # the results being built (run-level entries)
    encoder: Optional[str] = None
    _memo: Dict[Any, Any] = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:
        return self.swap_ctx.labels

    @property
    def table(self):
        return self.swap_ctx.table

    @property
    def seed(self) -> int:
        return self.cfg.seed

    @property
    def embeddings(self) -> np.ndarray:
        """The current encoder's dataset embeddings (rows = ``table.paths``)."""
        return self.table.embeddings[self.encoder]

    def for_encoder(self, name: str) -> "RunContext":
        """This context with ``encoder`` set (shares every resource and memo)."""
        return replace(self, encoder=name)

    def _once(self, key, build):
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    # --- resources (StepSpec.needs) ---------------------------------------------------------------

    def bias_swaps(self) -> Optional[Tuple[Any, Dict[str, np.ndarray]]]:
        """(bias plan, pseudo-swap embeddings per encoder), built once; None when the run has no bias protocol
        (a dataset with protocol pairs such as LFW, or ``RunConfig.bias`` off). Sets ``bias_swap_params``."""
        def build():
            if not self.cfg.bias or self.pairs is not None:  # LFW-style protocol pairs: no bias plan
                return None
            from idbench.bench.plan_swaps import bias_swaps

            plan, emb, params = bias_swaps(self.cfg, self.swap_ctx, self.encoders, self.cache, self.failures)
            self.results["bias_swap_params"] = params
            return plan, emb

        return self._once("bias_swaps", build)

    def verification_pairs(self) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[dict]]:
        """(pairs P x 3 (i, j, same), their folds or None, how they were sampled or None): the dataset's
        protocol pairs when it has them, else :func:`idbench.analysis.protocol.verification_pairs`."""
        def build():
            if self.pairs is not None:
                return self.pairs, self.folds, None
            from idbench.analysis.protocol import verification_pairs

            info: dict = {}
            return verification_pairs(self.labels, seed=self.seed, info=info), None, info

        return self._once("pairs", build)

    def pair_scores(self, name: Optional[str] = None) -> np.ndarray:
        """Cosine of every verification pair for encoder ``name`` (the current one by default), once."""
        from idbench.analysis.protocol import pair_scores

        name = name or self.encoder
        return self._once(("pair_scores", name), lambda: pair_scores(self.table.embeddings[name],
                                                                     self.verification_pairs()[0][:, :2]))

    def degenerate(self, name: Optional[str] = None) -> Optional[str]:
        """Why encoder ``name``'s verification is near chance (:func:`idbench.analysis.protocol.degenerate_reason`),
        None when it is not or when the pairs have one class only. Every run checks it (a sanity check, not an
        analysis): the flag travels with the encoder's numbers."""
        from idbench import analysis as M
        from idbench.analysis.protocol import degenerate_reason

        name = name or self.encoder

        def build():
            pairs = self.verification_pairs()[0]
            if not (len(pairs) and 0 < pairs[:, 2].sum() < len(pairs)):
                return None
            s, y = self.pair_scores(name), pairs[:, 2]
            return degenerate_reason(s, y, M.roc_auc(s, y))

        return self._once(("degenerate", name), build)
