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
    from idbench.bench.report._chromium import dump_dom, find_chromium, js_errors, with_probe

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    from idbench.bench.report import write_outputs

    res = _hostile_results(tmp_path)
    write_outputs(res, tmp_path / "out")
    probe = tmp_path / "probe.html"
    probe.write_text(with_probe((tmp_path / "out" / "report.html").read_text(encoding="utf-8")), encoding="utf-8")
    dom, _ = dump_dom(chromium, probe, tmp_path / "profile")
    assert "<title>idbench report</title>" in dom and "PWNED</title>" not in dom  # the injected script never ran
    assert '<img src="x"' not in dom and "&lt;script&gt;document.title" in dom  # shown as text
    assert js_errors(dom) == [] and dom.count("main-svg") >= dom.count("Plotly.newPlot(")  # every chart drew


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
    assert r["schema"]["name"] == "idbench.results" and r["schema"]["version"] == 3  # 3: + steps' versions
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
    for k, run in enumerate(runs[1:], start=1):  # other numbers (another seed): a row per run, not one
        r = json.loads((run / "results.json").read_text())
        for e in r["encoders"].values():
            e["bias"]["relative_gap"] += 0.01 * k
        (run / "results.json").write_text(json.dumps(r))
    p = _bench("report", *runs, "--out", tmp_path / "merged")
    assert p.returncode == 0, p.stderr[-1500:]
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    n_enc = len(json.loads((small_run / "results.json").read_text())["encoders"])
    assert len(merged["encoders"]) == 3 * n_enc
    # the merged folder is self-contained: its maps were copied in, relative paths
    maps = [p for e in merged["encoders"].values() for p in e["saliency"]["maps"]]
    assert all(not os.path.isabs(m) and (tmp_path / "merged" / m).is_file() for m in maps)


# --- 4. outputs are atomic and owned -------------------------------------------------------------------------

def test_full_disk_mid_write_keeps_the_old_results(small_run, tmp_path, monkeypatch):
    """The disk fills while results.json is written: one line naming the file, the old file intact, no temp."""
    import errno
    import json

    from test_report import make_results

    from idbench.bench.report import write_outputs
    from idbench.errors import StorageError

    run = _copy_run(small_run, tmp_path / "x")
    before = (run / "results.json").read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)  # the data went into the page cache, the disk refuses it
    with pytest.raises(StorageError) as e:
        write_outputs(make_results(tmp_path / "new"), run)
    msg = str(e.value)  # samples.npz is written first, results.json (which names it) last
    assert "\n" not in msg and "disk full" in msg
    assert str(run / "samples.npz") in msg or str(run / "results.json") in msg
    assert (run / "results.json").read_bytes() == before and json.loads(before)
    assert not [p for p in run.iterdir() if p.name.startswith(".tmp-")]


def test_every_output_writer_is_atomic(tmp_path, monkeypatch):
    """leaderboard.csv/.md/.tex and report.html too: a failing rename leaves each old file as it was."""
    import errno

    from test_report import make_results

    from idbench.bench.report import write_outputs
    from idbench.errors import StorageError

    res = make_results(tmp_path)
    write_outputs(res, tmp_path)
    names = ["results.json", "leaderboard.csv", "leaderboard.md", "leaderboard.tex", "report.html"]
    before = {n: (tmp_path / n).read_bytes() for n in names}
    real = os.replace
    for name in names:
        def refuse(src, dst, name=name):
            if str(dst).endswith(name):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(src, dst)

        monkeypatch.setattr(os, "replace", refuse)
        res["dataset"]["description"] = f"changed for {name}"
        with pytest.raises(StorageError, match=name.replace(".", r"\.")):
            write_outputs(res, tmp_path)
        assert (tmp_path / name).read_bytes() == before[name]
        monkeypatch.setattr(os, "replace", real)
        write_outputs(res, tmp_path)
        before = {n: (tmp_path / n).read_bytes() for n in names}


def test_training_writers_go_through_the_one_atomic_writer(tmp_path, monkeypatch):
    """Checkpoints, last.pt, backbone exports and the landmark caches are written by ``atomic_file``: a failing
    rename or a writer that raises leaves the previous file as it was and no temporary file behind."""
    import errno

    torch = pytest.importorskip("torch")
    from idbench.atomic import atomic_file
    from idbench.bench.training.export import save_run
    from idbench.errors import StorageError

    state = {"model": {"w": torch.zeros(2)}, "step": 1}
    save_run(tmp_path, state, 1, keep=2)
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert {"last.pt", "backbone.pth", "step_0000001.pt", "step_0000001.backbone.pth"} <= set(before)
    real = os.replace

    def refuse(src, dst):
        if str(dst).endswith("last.pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(StorageError, match=r"last\.pt"):
        save_run(tmp_path, {"model": {"w": torch.ones(2)}, "step": 2}, 2, keep=2)
    monkeypatch.setattr(os, "replace", real)
    assert (tmp_path / "last.pt").read_bytes() == before["last.pt"]
    assert not [p for p in tmp_path.rglob(".tmp-*")]
    with pytest.raises(RuntimeError), atomic_file(tmp_path / "backbone.pth") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("the writer failed")
    assert (tmp_path / "backbone.pth").read_bytes() == before["backbone.pth"]
    assert not [p for p in tmp_path.rglob(".tmp-*")]
    assert oct((tmp_path / "last.pt").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def test_second_run_into_one_out_is_refused(tmp_path):
    """A run holds --out: a second `bench run` into it fails with one line at once, and writes nothing there."""
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from idbench.atomic import out_lock\n"
                               f"with out_lock({str(out)!r}):\n print('locked', flush=True); sys.stdin.readline()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        p = _bench("run", "--dataset", "sample", "--root", tmp_path / "sample", "--encoders", "dlib", "--out", out,
                   "--cache-dir", tmp_path / "cache", "--saliency-faces", "0")
        assert p.returncode == 2 and "in use by another run" in _one_line_error(p)
        assert sorted(f.name for f in out.iterdir()) == [".idbench.lock"]
    finally:
        holder.communicate("\n", timeout=60)
    from idbench.atomic import out_lock

    with out_lock(out):  # released when its holder ended
        pass


def test_out_or_cache_inside_the_dataset_root_is_refused(tmp_path):
    root = tmp_path / "faces"
    (root / "alice").mkdir(parents=True)
    for opt in (["--out", root / "runs"], ["--out", tmp_path / "o", "--cache-dir", root / "cache"]):
        p = _bench("run", "--dataset", "folder", "--root", root, *opt)
        assert p.returncode == 2 and "inside the dataset root" in _one_line_error(p)


def test_an_old_run_folder_inside_the_root_is_not_an_identity(tmp_path):
    from PIL import Image

    from idbench.atomic import LOCK_NAME
    from idbench.bench.datasets import load_dataset

    for d in ("alice", "bob", "runs"):
        (tmp_path / d).mkdir()
        Image.new("RGB", (64, 64), (10, 20, 30)).save(tmp_path / d / "1.png")
    (tmp_path / "runs" / LOCK_NAME).write_text("123")
    ds = load_dataset("folder", tmp_path)
    assert {it.identity for it in ds.items} == {"alice", "bob"}
    assert any("output folder" in r["reason"] for r in ds.ignored)


def test_read_only_warm_cache_is_used_read_only(tmp_path, monkeypatch):
    from idbench.bench import validate as V
    from idbench.cache import Cache
    from idbench.errors import StorageError

    warm, cold = tmp_path / "warm", tmp_path / "cold"
    Cache(warm).put_json("faces", "ab" * 32, [1, 2])
    cold.mkdir()
    real = V.check_writable_dir

    def read_only_mount(d, what="output folder"):
        if Path(d) in (warm, cold):
            raise StorageError(f"cannot write {d}: read-only file system (errno 30)")
        return real(d, what)

    monkeypatch.setattr(V, "check_writable_dir", read_only_mount)
    V.check_cache(warm, no_cache=False)  # accepted: used read-only
    assert V.cache_read_only(warm)
    with pytest.raises(StorageError):
        V.check_cache(cold, no_cache=False)  # an empty unwritable cache is of no use: refused
    c = Cache(warm, read_only=True)
    assert c.get_json("faces", "ab" * 32) == [1, 2]
    c.put_json("faces", "cd" * 32, [3])  # a miss is computed, never written
    assert not (warm / "faces" / "cd").exists()


# --- 5. hostile images and files are bounded -----------------------------------------------------------------

def _png(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG whose header declares width x height (8-bit RGB), with whatever pixel data is given."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(idat or b"\0" * 64)) + \
        chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_its_header(tmp_path):
    from idbench.errors import ImageReadError
    from idbench.imageio import read_image

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png(60000, 60000))
    assert bomb.stat().st_size < 1000
    with pytest.raises(ImageReadError, match="above the 50 Mpx budget; not decoded"):
        read_image(bomb)


@pytest.mark.parametrize("w,h", [(1, 1), (20000, 1), (1, 5000)])
def test_degenerate_sizes_are_one_line(tmp_path, w, h):
    import cv2

    from idbench.errors import ImageReadError
    from idbench.imageio import read_image
    from idbench.pipeline import detect_item, file_item

    f = tmp_path / "thin.png"
    cv2.imwrite(str(f), np.full((h, w, 3), 128, np.uint8))
    with pytest.raises(ImageReadError, match="degenerate"):
        read_image(f)
    item = detect_item(file_item(f), "mtcnn")  # once crashed the MTCNN fallback's resize
    assert "degenerate" in item.error and "\n" not in item.error


def test_16bit_rgba_is_converted_within_budget(tmp_path):
    """A 16-bit RGBA PNG: 8-bit RGB, alpha composited on black (computed here with numpy from the source)."""
    import cv2

    from idbench.imageio import read_image

    rng = np.random.default_rng(0)
    bgra = rng.integers(0, 65536, (1100, 30, 4), dtype=np.uint16)  # > 512 rows: converted in row blocks
    cv2.imwrite(str(tmp_path / "deep.png"), bgra)
    rgb8 = np.floor(bgra[:, :, [2, 1, 0]] / 257.0 + 0.5)
    alpha = np.floor(bgra[:, :, 3:4] / 257.0 + 0.5) / 255.0
    want = np.floor(rgb8 * alpha + 0.5).astype(np.uint8)
    got = read_image(tmp_path / "deep.png")
    assert got.dtype == np.uint8 and got.shape == (1100, 30, 3)
    assert np.abs(got.astype(int) - want).max() <= 1


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "/dev/null"])
def test_special_files_are_never_read(tmp_path, special):
    """A FIFO (would block forever), /dev/zero (would read until memory runs out): refused from fstat."""
    from idbench.errors import ImageReadError
    from idbench.imageio import read_image
    from idbench.pipeline import file_item

    path = tmp_path / "face.jpg"
    if special == "fifo":
        os.mkfifo(path)
    else:
        path = Path(special)
    with pytest.raises(ImageReadError, match="not a regular file"):
        read_image(path)
    assert "not a regular file" in file_item(path).error


def test_fifo_named_in_a_results_folder_or_given_to_embed_does_not_hang(tmp_path):
    from idbench.swapper.base import SwapItem
    from idbench.swapper.results import _file_output

    fifo = tmp_path / "swap.png"
    os.mkfifo(fifo)
    out = _file_output(SwapItem(0, "a", "a"), fifo, "results")
    with pytest.raises(Exception, match="not a regular file"):
        out.load()
    (tmp_path / "folder" / "alice").mkdir(parents=True)
    os.mkfifo(tmp_path / "folder" / "alice" / "pipe.jpg")
    p = _bench("embed", "--encoder", "dlib", "--detector", "dlib-hog", "--out", tmp_path / "e.npz",
               "--no-cache", fifo, tmp_path / "folder", timeout=240)
    assert "not a regular file" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("key,value,words", [
    ("input_size", "[112000, 112000]", "input_size sides must be"),
    ("mean", "[nan, 0, 0]", "mean must be finite"),
    ("std", "inf", "std must be finite"),
    ("std", "[-1, 1, 1]", "std must be finite"),
    ("name", '"evil\\u0000name"', "without control characters"),
    ("name", '"two\\nlines"', "without control characters"),
])
def test_contract_values_are_range_checked(tmp_path, key, value, words):
    from idbench.encoders.contract import read_contract
    from idbench.errors import ContractError

    keys = {"name": '"c"', "weights": '"m.onnx"', "input_size": "[112, 112]", "colour": '"RGB"',
            "mean": "[127.5, 127.5, 127.5]", "std": "[128, 128, 128]", "alignment": '"arcface112"', key: value}
    (tmp_path / "c.toml").write_text("".join(f"{k} = {v}\n" for k, v in keys.items()))
    with pytest.raises(ContractError, match=words) as e:
        read_contract(tmp_path / "c.toml")
    assert "\n" not in str(e.value) and "\x00" not in str(e.value)


# --- 6. one bad encoder never sinks a run ------------------------------------------------------------------

def test_non_finite_encoder_is_listed_and_the_others_kept():
    from idbench.bench.run_checks import drop_non_finite_encoders

    rng = np.random.default_rng(0)
    good = rng.normal(size=(6, 4)).astype(np.float32)
    bad = good.copy()
    bad[2, 1] = np.nan
    encoders, emb, failures = {"good": object(), "nan": object()}, {"good": good, "nan": bad}, []
    assert drop_non_finite_encoders(encoders, emb, failures) == ["nan"]
    assert list(encoders) == ["good"] and list(emb) == ["good"]
    assert failures[0]["item"] == "nan" and "1 of 6 embeddings" in failures[0]["reason"]
    from idbench.errors import InputError

    with pytest.raises(InputError, match="every encoder failed"):
        drop_non_finite_encoders({"nan": object()}, {"nan": bad}, [])


# --- 7. protocol files and arguments are validated before work ---------------------------------------------

@pytest.mark.parametrize("args,words", [
    (["--seed", "-1"], "--seed -1: must be an integer in 0.."),
    (["--n-boot", "-5"], "--n-boot -5"),
    (["--n-boot", "0"], "--n-boot 0"),
    (["--k-partners", "0"], "--k-partners 0"),
    (["--min-face", "100000"], "--min-face 100000"),
    (["--min-face", "0"], "--min-face 0"),
    (["--frames", "0"], "--frames 0"),
    (["--n-perm", "0"], "--n-perm 0"),
])
def test_numeric_options_are_range_checked_before_work(tmp_path, args, words):
    p = _bench("run", "--dataset", "sample", "--root", tmp_path / "sample", "--out", tmp_path / "o", *args)
    assert p.returncode == 2 and words in _one_line_error(p)
    assert not (tmp_path / "sample").exists() and not (tmp_path / "o" / "results.json").exists()


def _lfw_root(tmp_path: Path, pairs: str) -> Path:
    root = tmp_path / "lfw"
    (root / "lfw").mkdir(parents=True)
    (root / "pairs.txt").write_text(pairs)
    return root


@pytest.mark.parametrize("pairs,words", [
    ("A\t1\t2\nA\t1\tB\t1\n", "line 1 must be 'N_FOLDS PAIRS_PER_FOLD_HALF'"),  # no header
    ("ten 300\n", "line 1 must be"),
    ("0 0\n", "line 1 must be"),
    ("1 1\nA\t1\tx\nA\t1\tB\t1\n", "line 2 must be 'name n1 n2'"),
    ("1 1\nA\t1\t2\nA\t1\tB\n", "line 3 must be 'name1 n1 name2 n2'"),
    ("1 1\nA\t1\t2\nA\t1\tB\t-3\n", "line 3 must be"),
    ("1 1\nA\t1\tB\t2\nA\t1\t2\n", "line 2 must be 'name n1 n2'"),  # halves swapped
    ("1 1\n..\t1\t2\nA\t1\tB\t1\n", "line 2: a name with a path separator"),
])
def test_malformed_lfw_pairs_file_is_one_line_with_its_line_number(tmp_path, pairs, words):
    from idbench.bench.datasets import load_dataset
    from idbench.errors import InputError

    with pytest.raises(InputError, match=words) as e:
        load_dataset("lfw", _lfw_root(tmp_path, pairs))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("content,words", [
    ('{"000": "003"}', "non-empty JSON list"),
    ("[]", "non-empty JSON list"),
    ('[["000", "003"], ["001"]]', "entry 1 is"),
    ('[["000", "003"], "001_002"]', "entry 1 is"),
    ('[["000", {"x": 1}]]', "entry 0 is"),
    ('[["000", "../../etc"]]', "entry 0 is"),
    ('[["000", "003"],', r"not a valid FF\+\+ split file \(.*line 1\)"),
])
def test_malformed_ffpp_split_is_one_line(tmp_path, content, words):
    from idbench.bench.datasets import ffpp_split_ids
    from idbench.errors import InputError

    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "test.json").write_text(content)
    with pytest.raises(InputError, match=words) as e:
        ffpp_split_ids(tmp_path, "test")
    assert "\n" not in str(e.value)


def test_run_that_keeps_no_face_is_an_error(tmp_path):
    """Images without faces: the run ends with a one-line error and a non-zero exit, not an empty report."""
    from PIL import Image

    for who in ("a", "b"):
        (tmp_path / "data" / who).mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (80, 80), (40 * k, 90, 160)).save(tmp_path / "data" / who / f"{k}.png")
    p = _bench("run", "--dataset", "folder", "--root", tmp_path / "data", "--encoders", "dlib", "--detector",
               "dlib-hog", "--out", tmp_path / "o", "--cache-dir", tmp_path / "cache", "--saliency-faces", "0")
    assert p.returncode != 0 and "no face kept in 4 images" in _one_line_error(p)
    assert not (tmp_path / "o" / "report.html").exists()


def test_no_usable_protocol_pair_is_an_error():
    from idbench.bench.run_checks import check_usable
    from idbench.errors import InputError

    with pytest.raises(InputError, match="none of the 600 protocol pairs is usable"):
        check_usable(10, [], np.zeros((0, 3), np.int64), 600)
    check_usable(10, [], None)  # a dataset without protocol pairs


@pytest.mark.slow
def test_run_with_a_nan_encoder_keeps_the_others(shared_faces, tmp_path):
    """`bench run --encoders good.toml,nan.toml`: the NaN encoder is listed as failed (name and reason, in
    results.json and on the console); the good encoder's results, leaderboard and report are written."""
    import json
    import shutil

    import torch
    from test_contracts import TinyNet, export, write_contract

    class NaNNet(TinyNet):
        def forward(self, x):
            return super().forward(x) * torch.log(x[:, :1, 0, 0] * 0 - 1)  # log(-1): NaN in every row

    good = write_contract(tmp_path, export(TinyNet(), tmp_path / "good.onnx", (1, 3, 112, 112)), "good.toml",
                          name="good")
    bad = write_contract(tmp_path, export(NaNNet(), tmp_path / "nan.onnx", (1, 3, 112, 112)), "nan.toml", name="nan")
    data = tmp_path / "data"
    for who in sorted(p.name for p in shared_faces.iterdir() if p.is_dir())[:4]:
        shutil.copytree(shared_faces / who, data / who)
    p = _bench("run", "--dataset", "folder", "--root", data, "--encoders", f"{good},{bad}", "--detector", "dlib-hog",
               "--out", tmp_path / "o", "--cache-dir", tmp_path / "cache", "--saliency-faces", "0", "--n-boot", "20",
               "--k-partners", "3", timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "encoder nan" in p.stderr and "NaN or infinite" in p.stderr
    r = json.loads((tmp_path / "o" / "results.json").read_text())
    assert list(r["encoders"]) == ["good"] and r["encoders"]["good"]["bias"]["positive_mean"] is not None
    assert any(f["item"] == "nan" and "NaN or infinite" in f["reason"] for f in r["failures"])
    assert "good" in (tmp_path / "o" / "leaderboard.md").read_text()
    assert "NaN or infinite" in (tmp_path / "o" / "report.html").read_text()


@pytest.mark.slow
def test_hostile_file_and_folder_names_through_bench_run_and_embed(shared_faces, tmp_path):
    """Non-UTF-8 file names, TAB/newline/markup in identity folder names: `bench run` and `bench embed` finish,
    every output parses with the rows and columns it should have, and the npz skipped rows read back exactly."""
    import csv
    import json
    import shutil

    from test_contracts import TinyNet, export, write_contract

    from idbench.escape import unfield

    enc = write_contract(tmp_path, export(TinyNet(), tmp_path / "t.onnx", (1, 3, 112, 112)), "t.toml", name="t")
    data = tmp_path / "data"
    who = sorted(p.name for p in shared_faces.iterdir() if p.is_dir())[:3]
    hostile = {who[0]: "tab\tnew\nline", who[1]: "<b>x</b>|=1+1", who[2]: who[2]}
    for src, dst in hostile.items():
        shutil.copytree(shared_faces / src, data / dst)
    first = sorted((data / who[2]).iterdir())[0]
    os.rename(first, os.fsencode(data / who[2]) + b"/\xff\xfe-latin1-" + first.name.encode())
    (data / who[2] / "broken.jpg").write_bytes(b"not an image")
    os.rename(data / who[2] / "broken.jpg", os.fsencode(data / who[2]) + b"/bad\xffname\tx.jpg")
    p = _bench("run", "--dataset", "folder", "--root", data, "--encoders", enc, "--detector", "dlib-hog",
               "--out", tmp_path / "o", "--cache-dir", tmp_path / "cache", "--saliency-faces", "2", "--n-boot", "20",
               "--k-partners", "3", timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    out = tmp_path / "o"
    r = json.loads((out / "results.json").read_text())
    assert any("bad" in s[0] and "readable" in s[1] for s in r["dataset"]["skipped"])
    rows = list(csv.reader(open(out / "leaderboard.csv", newline="", encoding="utf-8")))
    assert [x[0] for x in rows] == ["name", "direction", "t"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<b>x</b>" not in page and "bad\\xffname" in page
    e = _bench("embed", "--encoder", enc, "--detector", "dlib-hog", "--out", tmp_path / "e.npz", "--no-cache",
               data / who[2], timeout=600)
    assert e.returncode == 0, e.stderr[-2000:]
    with np.load(tmp_path / "e.npz") as z:
        skipped = [tuple(unfield(f) for f in row.split("\t")) for row in z["skipped"]]
    assert any(s[0].endswith("bad\udcffname\tx.jpg") for s in skipped), skipped


def test_the_same_run_given_three_times_is_one_row_per_encoder_with_a_note(small_run, tmp_path):
    import json

    p = _bench("report", small_run, small_run, small_run, "--out", tmp_path / "m")
    assert p.returncode == 0, p.stderr[-1500:]
    merged = json.loads((tmp_path / "m" / "results.json").read_text())
    original = list(json.loads((small_run / "results.json").read_text())["encoders"])
    assert list(merged["encoders"]) == original  # the same numbers: one row each, nothing lost
    notes = merged["dataset"]["notes"]
    assert all(sum(n.startswith(f"{e}: also in run") for n in notes) == 2 for e in original)


def test_non_utf8_file_names_through_bench_estimate_and_swap(shared_faces, tmp_path):
    """Once a crash: a non-UTF-8 file name in `bench estimate` and `bench swap`; their CSVs show it as \\xNN."""
    import csv
    import shutil

    for who in ("ariel_sharon", "ben_affleck"):
        (tmp_path / "in" / who).mkdir(parents=True)
        for f in sorted((shared_faces / who).iterdir())[:2]:
            shutil.copy(f, tmp_path / "in" / who / f.name)
    first = sorted((tmp_path / "in" / "ariel_sharon").iterdir())[0]
    os.rename(first, os.fsencode(first.parent) + b"/bad\xffname.jpg")
    p = _bench("estimate", "--estimator", "pose", "--detector", "dlib-hog", "--out", tmp_path / "pose.csv",
               tmp_path / "in")
    assert p.returncode == 0, p.stderr[-1500:]
    rows = list(csv.DictReader(open(tmp_path / "pose.csv", encoding="utf-8")))
    assert any(r["path"].endswith("bad\\xffname.jpg") and r["status"] == "ok" for r in rows)
    p = _bench("swap", "--swapper", "blend", "--detector", "dlib-hog", "--out", tmp_path / "sw",
               tmp_path / "in" / "ariel_sharon", tmp_path / "in" / "ben_affleck")
    assert p.returncode == 0, p.stderr[-1500:]
    text = (tmp_path / "sw" / "manifest.csv").read_text(encoding="utf-8")  # UTF-8 text, the byte escaped
    assert "bad\\udcffname.jpg" in text
    from idbench.swapper.manifest import read_manifest

    back = {p for r in read_manifest(tmp_path / "sw" / "manifest.csv") for p in (r.source_path, r.target_path)}
    assert os.fsdecode(os.fsencode(first.parent) + b"/bad\xffname.jpg") in back  # read back losslessly
