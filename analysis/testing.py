"""The metric tester: every catalogued metric against an independent reference, in one call.

The idea is torchmetrics' ``MetricTester``: a metric is checked by computing it on seeded random inputs and
comparing it with a reference implementation written elsewhere (scikit-learn, SciPy, a brute-force loop of its
formula). Here the metric is the :mod:`idbench.analysis` function its catalogue entry names
(:attr:`~idbench.analysis.catalogue.Metric.function`), so the test also checks that the catalogue points at the
right function. :func:`check_metrics` fails for every catalogued metric that has no :class:`MetricCase`: a new
metric must bring its reference (``tests/test_metric_catalogue.py`` holds the cases of the built-in ones).

Pure numpy, like the rest of :mod:`idbench.analysis`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .catalogue import METRICS, Metric, metric_function

__all__ = ["MetricCase", "check_metric", "check_metrics"]

Arguments = Tuple[tuple, Dict[str, Any]]


def _identity(result: Any) -> Any:
    return result


@dataclass(frozen=True)
class MetricCase:
    """How to test one metric.

    ``inputs(rng)`` draws the function's arguments ``(args, kwargs)`` from a seeded generator; ``value(result)``
    takes the metric's number out of the function's result (e.g. ``lambda r: r.mean_gap``); ``reference(*args,
    **kwargs)`` computes the same number independently. A count (direction ``""``, no function) names the
    function whose result it counts in ``function``.
    """

    inputs: Callable[[np.random.Generator], Arguments]
    reference: Callable[..., float]
    value: Callable[[Any], float] = _identity
    function: Optional[Callable[..., Any]] = None  # only for metrics whose catalogue entry names no function
    rtol: float = 1e-9
    atol: float = 1e-12


def _function_of(metric: Metric, case: MetricCase) -> Callable[..., Any]:
    fn = metric_function(metric)
    if fn is None:
        if case.function is None:
            raise AssertionError(f"{metric.name}: the catalogue names no function and the case gives none")
        return case.function
    return fn


def check_metric(metric: Metric, case: MetricCase, seeds: Iterable[int] = range(5)) -> List[str]:
    """Compare ``metric``'s catalogued function with ``case.reference`` on each seed; returns the mismatches
    (one line each, empty when the metric agrees everywhere)."""
    problems: List[str] = []
    if metric.direction not in ("higher", "lower", "") or metric.kind not in ("encoder", "swap"):
        problems.append(f"{metric.name}: direction must be higher, lower or '' and kind encoder or swap, got "
                        f"{metric.direction!r}, {metric.kind!r}")
    if metric.direction == "" and (metric.unit != "count" or metric.precision != 0):
        problems.append(f"{metric.name}: direction '' is for counts (unit 'count', precision 0)")
    try:
        fn = _function_of(metric, case)
    except (AssertionError, ImportError, AttributeError) as e:
        return problems + [f"{metric.name}: {e}"]
    for seed in seeds:
        args, kwargs = case.inputs(np.random.default_rng(seed))
        got = float(case.value(fn(*args, **kwargs)))
        want = float(case.reference(*args, **kwargs))
        if not np.isclose(got, want, rtol=case.rtol, atol=case.atol):
            problems.append(f"{metric.name}: seed {seed}: {metric.function or 'count'} gives {got!r}, "
                            f"the reference {want!r}")
    return problems


def check_metrics(cases: Mapping[str, MetricCase], metrics: Optional[Sequence[Metric]] = None,
                  seeds: Iterable[int] = range(5)) -> int:
    """Check every metric of ``metrics`` (default: the whole catalogue) against its case; raises
    ``AssertionError`` listing each metric without a case and each mismatch, else returns how many metrics
    were checked."""
    metrics = list(METRICS if metrics is None else metrics)
    seeds = list(seeds)
    missing = [m.name for m in metrics if m.name not in cases]
    problems = [f"{name}: no reference case (add a MetricCase for it)" for name in missing]
    for m in metrics:
        if m.name in cases:
            problems += check_metric(m, cases[m.name], seeds)
    if problems:
        raise AssertionError(f"{len(problems)} metric problem(s):\n" + "\n".join(problems))
    return len(metrics)
