"""The literature's reported face-swap numbers, with their conventions, and when they may sit beside a run.

``bench/data/published.csv`` holds one row per method x paper x metric: the dataset and protocol, the evaluator
(network and weights) and the metric's convention as the source states them, the value, the source it was read
from (URL with commit, or the paper it is attributed to), whether it was re-checked against that source, and its
mapping onto idbench's swap columns (``idbench_column``, empty where the convention is not the same, with the reason
in ``mapping_note``). Rows are grouped in sets (``ffpp-faceshifter``, ``ffpp-facedancer``, ...).

A row is shown beside a run only when the run's dataset, protocol and evaluators match it
(:func:`why_not_shown`): the same idbench dataset, the split / frames per video where the row states them, and the
row's idbench column present in the run (that column names the evaluator: ``pose_l2[pose.hopenet]``). Published
numbers are reported, never re-run; the report marks them so.
"""

from __future__ import annotations

import csv
import fnmatch
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from idbench.errors import InputError

TABLE = Path(__file__).resolve().parent / "data" / "published.csv"
FIELDS = ("set", "method", "paper", "table", "dataset", "split", "frames", "protocol", "metric", "evaluator",
          "convention", "value", "unit", "source", "source_version", "rechecked", "idbench_column", "idbench_scale",
          "mapping_note")


@dataclass(frozen=True)
class PublishedRow:
    """One reported number and everything needed to judge whether it compares with a run's column."""

    set: str
    method: str
    paper: str
    table: str
    dataset: str  # an idbench dataset name (ffpp) or the paper's dataset where idbench has none
    split: str  # "" where the source does not state it
    frames: Optional[int]  # frames per video; None where not stated
    protocol: str
    metric: str  # the paper's column name
    evaluator: str
    convention: str
    value: float  # as reported, in ``unit``
    unit: str
    source: str
    source_version: str
    rechecked: bool  # read from ``source`` by whoever added the row
    idbench_column: str  # "" = no idbench column has the same convention (``mapping_note`` says why)
    idbench_scale: float  # value * scale = the number in idbench's column units (percent -> share: 0.01)
    mapping_note: str

    @property
    def in_column_units(self) -> float:
        return self.value * self.idbench_scale


def _row(d: Dict[str, str], where: str) -> PublishedRow:
    try:
        frames = int(d["frames"]) if d["frames"].strip() else None
        value, scale = float(d["value"]), float(d["idbench_scale"])
    except ValueError as e:
        raise InputError(f"{where}: {e}") from None
    if d["rechecked"] not in ("yes", "no"):
        raise InputError(f"{where}: rechecked must be yes or no, got {d['rechecked']!r}")
    if not d["source"].strip() or not d["mapping_note"].strip():
        raise InputError(f"{where}: every row needs a source and a mapping note")
    return PublishedRow(**{**{k: d[k] for k in FIELDS}, "frames": frames, "value": value, "idbench_scale": scale,
                           "rechecked": d["rechecked"] == "yes"})


def load_published(path: Path = TABLE) -> List[PublishedRow]:
    """Every row of the table (a malformed row is an error naming its line)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise InputError(f"{path}: columns must be {', '.join(FIELDS)}")
        return [_row(d, f"{path}:{i + 2}") for i, d in enumerate(reader)]


def published_sets(rows: Sequence[PublishedRow]) -> List[str]:
    return sorted({r.set for r in rows})


def in_sets(rows: Sequence[PublishedRow], pattern: Optional[str]) -> List[PublishedRow]:
    """The rows whose set matches an fnmatch ``pattern`` (None: all), e.g. ``ffpp-*``."""
    return [r for r in rows if pattern is None or fnmatch.fnmatch(r.set, pattern)]


def select(rows: Sequence[PublishedRow], names: str) -> List[PublishedRow]:
    """The rows of the comma-separated set ``names`` (``all``: every set); an unknown set is an error."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = published_sets(rows)
    bad = [n for n in wanted if n != "all" and n not in known]
    if bad or not wanted:
        raise InputError(f"unknown published set {', '.join(bad) or repr(names)}: choose all or {', '.join(known)}")
    return [r for r in rows if "all" in wanted or r.set in wanted]


@dataclass(frozen=True)
class RunProtocol:
    """What a run's results say about its dataset, protocol and evaluator columns."""

    dataset: str
    split: str
    frames: Optional[int]
    columns: frozenset  # swap-metric columns present in any swapper's summary
    merged: bool = False


def run_protocol(results: dict) -> RunProtocol:
    ds = results.get("dataset") or {}
    args = (results.get("provenance") or {}).get("arguments") or {}
    frames = args.get("frames") if ds.get("name") == "ffpp" else None
    cols = frozenset(c for sw in (results.get("swappers") or {}).values() for c in (sw.get("summary") or {}))
    return RunProtocol(ds.get("name", ""), ds.get("split", "") or "", frames, cols,
                       merged="merged_from" in (results.get("provenance") or {}))


def why_not_shown(row: PublishedRow, run: RunProtocol) -> Optional[str]:
    """None when ``row`` may sit beside the run's swappers, else the reason (dataset, protocol, evaluator)."""
    if run.merged:
        return "merged report: the runs' datasets and protocols are not checked together (report one run)"
    if not row.idbench_column:
        return row.mapping_note
    if row.dataset != run.dataset:
        return f"dataset differs: the row is on {row.dataset}, the run on {run.dataset or 'an unnamed dataset'}"
    if row.split and row.split != run.split:
        return f"protocol differs: split {row.split} in the row, {run.split or 'none'} in the run"
    if row.frames is not None and row.frames != run.frames:
        return f"protocol differs: {row.frames} frames per video in the row, {run.frames} in the run"
    if row.idbench_column not in run.columns:
        base = row.idbench_column.split("[", 1)[0]
        same_metric = sorted(c for c in run.columns if c.split("[", 1)[0] == base)
        return (f"evaluator differs: the row compares with {row.idbench_column}, which this run did not compute "
                f"(the run has {', '.join(same_metric) or f'no {base} column'})")
    return None


def unchecked(row: PublishedRow) -> str:
    """What of the protocol could not be compared because the source does not state it ("" when all was)."""
    missing = [w for w, known in (("split / video subset", row.split), ("frames per video", row.frames is not None))
               if not known]
    return f"not stated by the source, not checked: {', '.join(missing)}" if missing else ""


def published_block(results: dict, names: str, rows: Optional[Sequence[PublishedRow]] = None) -> dict:
    """``results["published"]``: the chosen sets' rows split into shown (beside the run) and not shown (why)."""
    chosen = select(list(rows) if rows is not None else load_published(), names)
    run = run_protocol(results)
    shown, hidden = [], []
    for r in chosen:
        reason = why_not_shown(r, run)
        if reason is None:
            shown.append({**asdict(r), "unchecked": unchecked(r)})
        else:
            hidden.append({**asdict(r), "reason": reason})
    return {"sets": names, "note": "reported in the literature, not re-run by idbench", "shown": shown,
            "not_shown": hidden}


def protocol_text(r: PublishedRow) -> str:
    frames = f"{r.frames} frames/video" if r.frames is not None else "frames not stated"
    return f"{r.dataset}{' ' + r.split if r.split else ''}, {frames}; {r.protocol}"


LISTING_HEADER = ("set", "method", "metric", "value", "unit", "re-checked", "idbench column")


def listing_rows(rows: Sequence[PublishedRow]) -> List[tuple]:
    """One line per row for ``bench list published`` (the conventions follow in :func:`listing_conventions`)."""
    return [(r.set, r.method, r.metric, f"{r.value:g}", r.unit, "yes" if r.rechecked else "no",
             r.idbench_column or "-") for r in rows]


def listing_conventions(rows: Sequence[PublishedRow]) -> List[str]:
    """Per set, paper and metric (rows share them): protocol, evaluator, convention, mapping, source."""
    out, seen = [], set()
    for r in rows:
        key = (r.set, r.paper, r.metric)
        if key in seen:
            continue
        seen.add(key)
        out += [f"[{r.set}] {r.paper}: {r.metric} ({r.table})",
                f"  protocol:   {protocol_text(r)}",
                f"  evaluator:  {r.evaluator}",
                f"  convention: {r.convention} [{r.unit}]",
                f"  idbench:    {r.mapping_note}",
                f"  source:     {r.source} ({r.source_version}); re-checked: {'yes' if r.rechecked else 'no'}"]
    return out
