"""What an analysis step is: a spec (name, what it needs, the columns it writes, its report section), a typed
result that round-trips through ``results.json``, and one registry of steps (:class:`idbench.registry.Registry`).

A step is a function ``run(ctx) -> StepResult`` registered with :func:`register_step`. ``scope="encoder"`` steps
run once per encoder (``ctx.encoder`` / ``ctx.embeddings`` name the current one) and their result's
:meth:`StepResult.to_json` is merged into ``results["encoders"][name]``; ``scope="run"`` steps run once and their
fragment is merged into ``results`` itself. ``bench run --analyses`` is checked against this registry, and the
CLI help, the default set and ``results.json``'s ``schema.steps`` versions are derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple

from idbench.errors import InputError
from idbench.registry import Registry

NEEDS = ("bias_swaps", "pairs", "swappers")  # resources a RunContext builds on first use (see .context)


class StepResult:
    """Base of a step's result dataclass. Each field is one key of the fragment the step writes (the key is the
    field name, or ``metadata={"key": ...}``); a None field is left out unless ``metadata={"keep_none": True}``.
    ``VERSION`` is the layout version of the fragment (``results.json`` -> ``schema.steps``). With ``KEY`` set the
    fields are nested under that one key (``{"verification": {...}}``) and ``from_json`` of an entry without it is
    None."""

    VERSION: ClassVar[int] = 1
    KEY: ClassVar[Optional[str]] = None

    def to_json(self) -> Dict[str, Any]:
        """The fragment of results.json this result is."""
        out: Dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if v is not None or f.metadata.get("keep_none"):
                out[f.metadata.get("key", f.name)] = v
        return {self.KEY: out} if self.KEY else out

    @classmethod
    def from_json(cls: type, d: Dict[str, Any]) -> Any:
        """The result back from a results.json fragment (keys of other steps in ``d`` are ignored)."""
        if cls.KEY:
            if not d.get(cls.KEY):
                return None
            d = d[cls.KEY]
        return cls(**{f.name: d[f.metadata.get("key", f.name)] for f in fields(cls)
                      if f.metadata.get("key", f.name) in d})

    def columns(self) -> Dict[str, Any]:
        """Leaderboard columns this result adds beyond those the report reads from its fixed layout
        (``bench.report.tables.ENCODER_COLUMNS``): ``{column: value}`` for an encoder step,
        ``{encoder: {column: value}}`` for a run step. Names are catalogue names (+ suffix)."""
        return {}


def json_key(key: str, keep_none: bool = False) -> Dict[str, Any]:
    """Field metadata: the fragment's key for a field whose name cannot be it (``tar_at_far_1e-2``)."""
    return {"key": key, "keep_none": keep_none}


@dataclass(frozen=True)
class StepSpec:
    """What a step declares."""

    name: str
    description: str
    result: type  # its StepResult dataclass (from_json of a results.json fragment)
    scope: str = "encoder"  # 'encoder': run per encoder into results["encoders"][name]; 'run': once into results
    needs: Tuple[str, ...] = ()  # of NEEDS: built once, on first use, shared by every step
    columns: Tuple[str, ...] = ()  # catalogue names (idbench.analysis.catalogue) of the columns it writes
    section: str = ""  # the report section that shows it: a bench.report.layout.SECTIONS id, or with ``report``
    # the heading of the step's own section
    report: Optional[Callable[[dict, Any], Optional[str]]] = None  # (results, run folder) -> HTML, or None
    default: bool = False  # in the default --analyses
    always: Optional[str] = None  # runs whether named or not; says what turns it on/off (e.g. "--swappers")
    order: int = 100  # run (and results) order: built-ins 10..60, new steps after them

    @property
    def version(self) -> int:
        return self.result.VERSION


STEPS: Registry[StepSpec] = Registry("analysis", group="idbench.analyses")  # plugins: that entry-point group


def register_step(spec: StepSpec) -> Callable[[Callable], Callable]:
    """Decorator: register ``run(ctx) -> spec.result`` under ``spec.name``. Every column must be catalogued
    (``idbench.analysis.catalogue.register_metric`` adds one), ``needs`` must be known. Registering the same
    function again (a module imported twice) is a no-op."""
    from idbench.analysis.catalogue import column_metric

    bad = [n for n in spec.needs if n not in NEEDS]
    if bad or spec.scope not in ("encoder", "run"):
        raise ValueError(f"step '{spec.name}': needs {bad} not in {NEEDS}, or scope {spec.scope!r} not encoder|run")
    for c in spec.columns:
        column_metric(c)  # an uncatalogued column: UnknownNameError here, not a silent drop in the tables

    def deco(fn: Callable) -> Callable:
        if spec.name in STEPS and STEPS.factory(spec.name).__qualname__ == fn.__qualname__ \
                and STEPS.factory(spec.name).__module__ == fn.__module__:
            STEPS.remove(spec.name)  # the same step again (a reloaded recipe file): the newer definition
            return STEPS.register(spec.name, spec)(fn)
        return STEPS.register(spec.name, spec)(fn)

    return deco


def unregister_step(name: str) -> None:
    """Remove a step (tests and doc recipes clean up after themselves)."""
    STEPS.remove(name)


def ordered(names: Optional[List[str]] = None) -> List[str]:
    """Step names (all, or ``names``) in run order."""
    names = list(STEPS) if names is None else names
    return sorted(names, key=lambda n: (STEPS.spec(n).order, n))


def default_analyses() -> List[str]:
    """The default ``--analyses`` (``bias,verification,retrieval``)."""
    return [n for n in ordered() if STEPS.spec(n).default]


def step_versions() -> Dict[str, int]:
    """Every step's result layout version (``results.json`` -> ``schema.steps``)."""
    return {n: STEPS.spec(n).version for n in ordered()}


def analyses_help() -> str:
    """The ``--analyses`` help text, from the registry."""
    named = [n for n in ordered() if not STEPS.spec(n).always]
    auto = [f"{n} ({STEPS.spec(n).always})" for n in ordered() if STEPS.spec(n).always]
    return f"comma list of {', '.join(named)}" + (f"; always run: {', '.join(auto)}" if auto else "")


def parse_analyses(text: str) -> List[str]:
    """``"bias,verification"`` -> the step names, each checked against the registry (one-line error with close
    matches); an empty list is an error."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise InputError(f"--analyses: empty list; use a comma list of {', '.join(ordered())}")
    return check_analyses(names)


def check_analyses(names: List[str]) -> List[str]:
    """Each name checked against the registry: ``UnknownNameError`` "unknown analysis 'bais'. Did you mean: bias?"."""
    return [STEPS.resolve(n) for n in names]


def selected(analyses: List[str]) -> List[str]:
    """The steps a run executes, in order: those asked for plus every ``always`` one (which decides from the run's
    options whether it has anything to do)."""
    wanted = set(analyses)
    return [n for n in ordered() if n in wanted or STEPS.spec(n).always]


def steps_markdown(own: bool = False) -> str:
    """A Markdown table of every step (name, what it does, when it runs, its columns), for the docs pages
    (generated from the registry, never written by hand); ``own``: idbench's own steps only (not a plugin's)."""
    rows = ["| analysis | what it computes | runs | leaderboard columns |", "|---|---|---|---|"]
    for n in ordered():
        if own and not STEPS.factory(n).__module__.startswith("idbench."):
            continue
        s = STEPS.spec(n)
        runs = "by default" if s.default else (f"always ({s.always})" if s.always else f"`--analyses ...,{n}`")
        rows.append(f"| `{n}` | {s.description} | {runs} | {', '.join(f'`{c}`' for c in s.columns)} |")
    return "\n".join(rows) + "\n"
