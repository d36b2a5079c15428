"""Security (issue 24): untrusted checkpoints are data, names are escaped per output format, run folders are
self-contained, outputs are atomic and owned, hostile files are bounded, one bad encoder never sinks a run,
protocol files and numeric options are validated before work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = [sys.executable, "-m", "idbench.bench.cli"]


def _bench(*args, cwd=None, timeout=300):
    return subprocess.run([*BENCH, *map(str, args)], capture_output=True, text=True, cwd=cwd or REPO,
                          timeout=timeout)


def _one_line_error(p) -> str:
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error:") and "Traceback" not in p.stderr, p.stderr[-2000:]
    return lines[-1]


# --- 1. untrusted checkpoints are data, never code ---------------------------------------------------------

class _Payload:
    """Unpickling this runs ``exec``: what a hostile checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def _hostile_checkpoint(path: Path, marker: Path) -> None:
    import torch

    torch.save({"format": "idbench.train", "version": 2, "rng": _Payload(marker)}, path)


def test_hostile_resume_checkpoint_is_refused_without_running_code(tmp_path, monkeypatch):
    """`bench train --resume PATH` / `--resume auto` with a planted last.pt: one-line refusal, the code never ran."""
    from idbench.bench.training import load_checkpoint
    from idbench.errors import WeightsFormatError

    monkeypatch.delenv("IDBENCH_ALLOW_PICKLE", raising=False)
    marker = tmp_path / "marker"
    ck = tmp_path / "run" / "last.pt"
    ck.parent.mkdir()
    _hostile_checkpoint(ck, marker)
    with pytest.raises(WeightsFormatError) as e:
        load_checkpoint(ck)
    assert "\n" not in str(e.value) and "IDBENCH_ALLOW_PICKLE" in str(e.value)
    assert not marker.exists()


def test_hostile_resume_through_the_cli(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    ck = tmp_path / "evil.pt"
    _hostile_checkpoint(ck, marker)
    env = {k: v for k, v in os.environ.items() if k != "IDBENCH_ALLOW_PICKLE"}
    (tmp_path / "data").mkdir()
    p = subprocess.run([*BENCH, "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
                        "--resume", str(ck), "--device", "cpu"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode != 0 and "pickles Python objects" in _one_line_error(p)
    assert not marker.exists()


def test_trust_switch_still_reads_a_trusted_pickle(tmp_path, monkeypatch):
    """The one switch: IDBENCH_ALLOW_PICKLE=1 (the user says the file is trusted) loads the same file."""
    from idbench.checkpoints import read_checkpoint

    marker = tmp_path / "marker"
    ck = tmp_path / "trusted.pt"
    _hostile_checkpoint(ck, marker)
    monkeypatch.setenv("IDBENCH_ALLOW_PICKLE", "1")
    read_checkpoint(ck)
    assert marker.read_text() == "pwned"  # the switch really is the only thing between the file and its code


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    """rng_state() is plain data: torch.load(weights_only=True) reads it and set_rng_state() replays every RNG."""
    import random

    import torch

    from idbench.bench.training.export import rng_state, set_rng_state

    torch.manual_seed(3), np.random.seed(4), random.seed(5)
    np.random.standard_normal()  # a cached Gaussian in numpy's legacy state
    st = rng_state()
    want = (torch.rand(3).tolist(), np.random.standard_normal(3).tolist(), [random.random() for _ in range(3)])
    torch.save({"rng": st}, tmp_path / "rng.pt")
    loaded = torch.load(tmp_path / "rng.pt", weights_only=True)["rng"]
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    set_rng_state(loaded)
    got = (torch.rand(3).tolist(), np.random.standard_normal(3).tolist(), [random.random() for _ in range(3)])
    assert got == want


def test_special_file_as_checkpoint_is_never_opened(tmp_path):
    from idbench.checkpoints import read_state_dict
    from idbench.errors import WeightsFormatError

    fifo = tmp_path / "weights.pth"
    os.mkfifo(fifo)
    with pytest.raises(WeightsFormatError, match="not a regular file"):
        read_state_dict(fifo)  # a FIFO with no writer would block open() forever
