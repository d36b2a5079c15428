"""The console summary every command ends with: what was dropped or left unmatched, by stage and reason.

The lines count exactly the failures a command records (``bench run``: ``results.json["failures"]``;
``bench embed``: the npz's ``skipped``; ``bench swap``: the manifest's ``error`` rows), grouped by stage,
then by reason with the item-specific parts (quoted names, numbers) blanked, with the first few item
names and, where the reason carries one, the close match (``madona__ben_affleck.png: did you mean
madonna?``)::

    dropped or unmatched: 4 items (results.json "failures")
      [swap-plan] 3
        3 x no dataset identity '…'; did you mean …?
          madona__ben_affleck.png: did you mean madonna?
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from idbench.escape import shown

FIRST = 3  # item names shown per reason
_VARIABLE = re.compile(r"'[^']*'|\"[^\"]*\"|\d+(?:\.\d+)?")
_SUGGEST = re.compile(r"did you mean [^;]*\?", re.I)


def reason_pattern(reason: str) -> str:
    """A reason with its item-specific parts (quoted text, numbers) replaced by ``…``: the group key."""
    return _VARIABLE.sub("…", str(reason))


def short_name(item: str) -> str:
    """The last two parts of a path (``identity/image.jpg``); a manifest row as ``manifest.csv:LINE (...)``."""
    s = str(item)
    if " | " in s or " -> " in s or "/" not in s:
        return s
    head, sep, rest = s.partition(" (")
    p = Path(head)
    short = str(Path(p.parent.name) / p.name) if p.parent.name and ".csv:" not in p.name else p.name
    return short + sep + rest


def by_stage(failures: Sequence[dict]) -> Dict[str, Dict[str, List[dict]]]:
    """``{stage: {reason pattern: [failure, ...]}}`` in first-seen order."""
    out: Dict[str, Dict[str, List[dict]]] = {}
    for f in failures:
        out.setdefault(str(f.get("stage", "")), {}).setdefault(reason_pattern(f.get("reason", "")), []).append(f)
    return out


def summary_lines(failures: Sequence[dict], where: str, first: int = FIRST) -> List[str]:
    """The console summary of ``failures`` (``where``: where the full list is, e.g. ``results.json "failures"``)."""
    if not failures:
        return [f"dropped or unmatched: none ({where} is empty)"]
    lines = [f"dropped or unmatched: {len(failures)} items ({where})"]
    for stage, groups in by_stage(failures).items():
        lines.append(f"  [{shown(stage)}] {sum(len(v) for v in groups.values())}")
        for pattern, items in groups.items():
            lines.append(f"    {len(items)} x {shown(pattern)}")
            for f in items[:first]:  # names are data: undecodable bytes and control characters shown as \xNN
                hint = _SUGGEST.search(str(f.get("reason", "")))
                lines.append(f"      {shown(short_name(f.get('item', '')))}" + (f": {shown(hint.group(0))}" if hint else ""))
            if len(items) > first:
                lines.append(f"      ... and {len(items) - first} more")
    return lines


def parse_counts(lines: Sequence[str]) -> Tuple[int, Dict[str, int]]:
    """(total, {stage: count}) read back from :func:`summary_lines` (tests compare it with the list)."""
    total, stages = 0, {}
    for line in lines:
        m = re.match(r"dropped or unmatched: (\d+) items", line.strip())
        if m:
            total = int(m.group(1))
        m = re.match(r"\s{2}\[(.*)\] (\d+)$", line)
        if m:
            stages[m.group(1)] = int(m.group(2))
    return total, stages
