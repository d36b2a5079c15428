"""Security (issue 24): untrusted checkpoints are data, names are escaped per output format, run folders are
self-contained, outputs are atomic and owned, hostile files are bounded, one bad encoder never sinks a run,
protocol files and numeric options are validated before work."""

from __future__ import annotations

import copy
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


# --- 2. names are data in every output format ---------------------------------------------------------------

HOSTILE = ['<script>document.title="PWNED"</script>', 'a|b\nc', '=HYPERLINK("http://evil","x")', r"\textbf{x}}",
           "nul\x00tab\tname", "<img src=x onerror=alert(1)>", "+cmd", "bytes\udcff"]


def _hostile_results(tmp_path):
    """A real run's results shape (tests/test_report.py's synthetic clusters) with every name hostile."""
    from test_report import make_results

    res = make_results(tmp_path)
    encs = list(res["encoders"].values())
    res["encoders"] = {HOSTILE[i]: copy.deepcopy(encs[i % len(encs)]) for i in range(len(HOSTILE))}
    res["encoders"][HOSTILE[0]]["bias_error"] = HOSTILE[5]  # sections that once printed names raw
    res["encoders"][HOSTILE[5]]["verification"].pop("pair_scores", None)
    sw = list(res["swappers"].values())
    res["swappers"] = {f"sw{HOSTILE[i]}": sw[i % len(sw)] for i in range(2)}
    res["dataset"]["skipped"] = [[f"/data/{h}/x.jpg", f"reason {h}"] for h in HOSTILE]
    res["dataset"]["description"] = HOSTILE[0]
    res["dataset"]["notes"] = list(HOSTILE)
    res["failures"] = [{"stage": h, "item": h, "reason": h} for h in HOSTILE]
    for e in res["encoders"].values():
        for f in e["saliency"]["faces"]:
            f["identity"] = HOSTILE[0]
    return res


def _cells(line: str):
    import re

    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def test_hostile_names_add_no_rows_columns_or_formulas(tmp_path):
    import csv

    from idbench.bench.report import write_outputs

    res = _hostile_results(tmp_path)
    write_outputs(res, tmp_path / "out")
    out = tmp_path / "out"
    # CSV: one row per encoder/swapper (+ the direction row), no text cell that a spreadsheet evaluates
    rows = list(csv.reader(open(out / "leaderboard.csv", newline="", encoding="utf-8")))
    assert len(rows) == 1 + 1 + len(HOSTILE) + 2
    width = len(rows[0])
    assert all(len(r) == width for r in rows)
    assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for c in r
               if c and not c.lstrip("-").replace(".", "", 1).replace("e-", "", 1).isdigit())
    assert "'=HYPERLINK(\"http://evil\",\"x\")" in [r[0] for r in rows]
    # Markdown: every table row has as many cells as its header; no raw HTML
    md = (out / "leaderboard.md").read_text()
    assert "<script" not in md and "<img" not in md
    for block in md.split("\n## ")[1:]:
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        n = len(_cells(lines[0]))
        assert all(len(_cells(ln)) == n for ln in lines), block
        assert len(lines) == 2 + len([r for r in rows[1:] if r[1] == lines[0].split("|")[1].strip()])
    # LaTeX: the hostile \textbf is text, braces balance
    tex = (out / "leaderboard.tex").read_text()
    assert r"\textbackslash{}textbf\{x\}\}" in tex and "\x00" not in tex and r"nul\textbackslash{}x00" in tex
    assert tex.count("{") - tex.count(r"\{") == tex.count("}") - tex.count(r"\}")


def _scripts_and_handlers(page: str):
    from html.parser import HTMLParser

    found = {"scripts": [], "handlers": [], "tags": []}

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found["tags"].append(tag)
            found["handlers"] += [a for a, _ in attrs if a.startswith("on")]
            self._in = tag == "script"

        def handle_data(self, data):
            if getattr(self, "_in", False):
                found["scripts"].append(data)

        def handle_endtag(self, tag):
            self._in = False

    P().feed(page)
    return found


def test_hostile_names_in_report_html_run_no_script(tmp_path):
    """Every section of report.html (and `bench report` on a received results.json) shows hostile names as text:
    the only scripts are plotly.js and the plots; no element gets an event handler or an <img>."""
    from idbench.bench.report import write_outputs

    res = _hostile_results(tmp_path)
    out = tmp_path  # the saliency maps live inside the run folder, as in a real run
    write_outputs(res, out)
    page = (out / "report.html").read_text(encoding="utf-8")
    f = _scripts_and_handlers(page)
    assert not f["handlers"] and "img" not in f["tags"]
    assert all("PWNED" not in s or "Plotly.newPlot" in s for s in f["scripts"])
    assert len(f["scripts"]) == 1 + page.count("Plotly.newPlot(")
    assert "&lt;script&gt;document.title" in page and "nul\\x00tab" in page
    p = _bench("report", out, "--out", tmp_path / "rebuilt")
    assert p.returncode == 0, p.stderr[-2000:]
    page2 = (tmp_path / "rebuilt" / "report.html").read_text(encoding="utf-8")
    assert not _scripts_and_handlers(page2)["handlers"] and "&lt;script&gt;document.title" in page2


def test_hostile_report_in_headless_chromium(tmp_path):
    from idbench.bench.report._chromium import dump_dom, find_chromium, with_probe

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    from idbench.bench.report import write_outputs

    res = _hostile_results(tmp_path)
    write_outputs(res, tmp_path / "out")
    probe = tmp_path / "probe.html"
    probe.write_text(with_probe((tmp_path / "out" / "report.html").read_text(encoding="utf-8")), encoding="utf-8")
    dom, _ = dump_dom(chromium, probe, tmp_path / "profile")
    assert "<title>idbench report</title>" in dom and "PWNED</title>" not in dom


def test_field_escaping_is_lossless():
    from idbench.escape import field, unfield

    for s in HOSTILE + ["back\\slash\\t", "\\x41", "é\u2028"]:
        assert "\t" not in field(s) and "\n" not in field(s) and "\x00" not in field(s)
        assert unfield(field(s)) == s


def test_identity_names_with_tab_newline_survive_identities_txt(tmp_path):
    """identities.txt (training's label list): a TAB/newline in a name no longer splits or drops the identity."""
    from idbench.bench.prepare import read_names, write_names

    names = ["plain", "tab\there", "new\nline", "back\\slash", "jose\u0301"]
    write_names(tmp_path / "identities.txt", names)
    got = read_names(tmp_path / "identities.txt")
    assert got == names[:4] + ["jos\u00e9"]  # NFC: one spelling of one name


def test_nfc_and_nfd_spellings_are_one_identity(tmp_path):
    from PIL import Image

    from idbench.bench.datasets import load_dataset

    for name in ("Jos\u00e9", "Jose\u0301"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (64, 64), (120, 90, 60)).save(tmp_path / name / f"{len(name)}.jpg")
    ds = load_dataset("folder", tmp_path)
    assert {it.identity for it in ds.items} == {"Jos\u00e9"}
    assert any("Unicode" in n and "NFC" in n for n in ds.notes)


# --- 3. a run folder is self-contained and safe to receive ----------------------------------------------------

@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A synthetic run folder (tests/test_report.py's clusters), saliency maps inside it."""
    from test_report import make_results

    from idbench.bench.report import write_outputs

    d = tmp_path_factory.mktemp("run") / "x"
    d.mkdir()
    write_outputs(make_results(d), d)
    return d


def _copy_run(src: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(src, dest)
    return dest


def test_results_json_stores_paths_relative_and_a_moved_run_keeps_its_maps(small_run, tmp_path):
    import json

    r = json.loads((small_run / "results.json").read_text())
    assert r["schema"] == {"name": "idbench.results", "version": 2}
    maps = [p for e in r["encoders"].values() for p in e["saliency"]["maps"]]
    assert maps and all(not os.path.isabs(p) for p in maps)
    moved = _copy_run(small_run, tmp_path / "elsewhere" / "x")
    (moved / "report.html").unlink()
    p = _bench("report", moved)
    assert p.returncode == 0, p.stderr[-1500:]
    assert (moved / "report.html").read_text().count("data:image\\u002fpng;base64,") == len(maps)


@pytest.mark.parametrize("planted", ["/etc/passwd", "../secret.npz", "sub/../../secret.npz", "link.npz"])
def test_bench_report_refuses_files_outside_the_run(small_run, tmp_path, planted):
    import json

    run = _copy_run(small_run, tmp_path / "recv" / "x")
    (tmp_path / "recv" / "secret.npz").write_bytes(b"SECRET-CONTENT")
    if planted == "link.npz":
        (run / "link.npz").symlink_to(tmp_path / "recv" / "secret.npz")
    r = json.loads((run / "results.json").read_text())
    next(iter(r["encoders"].values()))["saliency"]["maps"][0] = planted
    (run / "results.json").write_text(json.dumps(r))
    before = (run / "report.html").read_bytes()
    p = _bench("report", run)
    assert p.returncode == 2 and "outside its run folder" in _one_line_error(p)
    assert (run / "report.html").read_bytes() == before


@pytest.mark.parametrize("content,words", [
    (b'{"encoders": {"a": {"bias"', "truncated or not JSON"),
    (b"[1, 2, 3]", "holds a JSON list"),
    (b'{"schema": {"name": "other.tool", "version": 1}, "encoders": {}}', "foreign file"),
    (b'{"schema": {"name": "idbench.results", "version": 99}, "encoders": {}}', "schema version 99"),
    (b'{"encoders": [1, 2], "dataset": {}}', "'encoders' is a list"),
    (b'{"encoders": {"a": 3}, "dataset": {}}', "entry 'a' is a int"),
    (b"\xff\xfe garbage", "not UTF-8"),
])
def test_bad_results_json_is_one_line(tmp_path, content, words):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_bytes(content)
    p = _bench("report", tmp_path / "run")
    assert p.returncode == 2 and words in _one_line_error(p)


def test_merging_runs_of_different_datasets_is_refused(small_run, tmp_path):
    import json

    other = _copy_run(small_run, tmp_path / "lfw_run")
    r = json.loads((other / "results.json").read_text())
    r["dataset"]["name"] = "lfw"
    (other / "results.json").write_text(json.dumps(r))
    p = _bench("report", small_run, other, "--out", tmp_path / "merged")
    assert p.returncode == 2 and "differ in dataset" in _one_line_error(p)
    assert not (tmp_path / "merged" / "results.json").exists()


def test_runs_with_the_same_folder_name_stay_distinct(small_run, tmp_path):
    import json

    runs = [_copy_run(small_run, tmp_path / k / "x") for k in ("a", "b", "c")]
    p = _bench("report", *runs, "--out", tmp_path / "merged")
    assert p.returncode == 0, p.stderr[-1500:]
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    n_enc = len(json.loads((small_run / "results.json").read_text())["encoders"])
    assert len(merged["encoders"]) == 3 * n_enc
    # the merged folder is self-contained: its maps were copied in, relative paths
    maps = [p for e in merged["encoders"].values() for p in e["saliency"]["maps"]]
    assert all(not os.path.isabs(m) and (tmp_path / "merged" / m).is_file() for m in maps)
