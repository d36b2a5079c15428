"""Training logs: ``log.jsonl`` and ``log.csv`` (step, epoch, loss, accuracy, lr, blend rate), rank 0 only."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import List

LOG_FIELDS = ("step", "epoch", "loss", "accuracy", "lr", "blend_rate", "grad_norm", "samples_per_s", "time")


def _read_log(path: Path) -> List[dict]:
    if not path.is_file():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


class Logger:
    """Appends step records to ``log.jsonl`` and ``log.csv`` (rank 0 only)."""

    def __init__(self, out: Path, enabled: bool, resume_step: int = 0):
        self.enabled = enabled
        self.jsonl, self.csv = out / "log.jsonl", out / "log.csv"
        if not enabled:
            return
        rows = [r for r in _read_log(self.jsonl) if r.get("step", 0) <= resume_step] if resume_step else []
        self.jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
        with open(self.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)

    def log(self, rec: dict) -> None:
        if not self.enabled:
            return
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(rec) + "\n")
        with open(self.csv, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore").writerow(rec)
