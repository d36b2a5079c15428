"""Headless Chromium checks of a report: JavaScript errors, drawn plots, axis titles, one screenshot per section.

``python -m idbench.bench.report._chromium RUN_DIR SHOTS_DIR`` writes ``SHOTS_DIR/<run>-<section>.png``
and prints what it checked; the report test uses the same functions.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

# collects uncaught errors and console.error calls into an attribute of <html>, read back from the DOM dump
ERROR_PROBE = """<script>(function(){var n=[];function keep(m){n.push(String(m));
document.documentElement.setAttribute('data-js-errors', JSON.stringify(n));}
document.documentElement.setAttribute('data-js-errors', '[]');
window.addEventListener('error', function(e){keep(e.message);});
var ce=console.error;
console.error=function(){keep(Array.prototype.join.call(arguments,' '));ce.apply(console,arguments);};
})();</script>"""
# after the plots are drawn: every pair of visible SVG texts of one plot whose boxes overlap (> 1 px each way)
OVERLAP_PROBE = """<script>window.addEventListener('load', function(){setTimeout(function(){
var boxes=[];document.querySelectorAll('.js-plotly-plot').forEach(function(p){
p.querySelectorAll('.main-svg text').forEach(function(t){var s=t.textContent.trim();if(!s)return;
var r=t.getBoundingClientRect();if(r.width<1||r.height<1)return;var st=window.getComputedStyle(t);
if(st.visibility==='hidden'||st.display==='none'||st.opacity==='0')return;
boxes.push([s,r.left,r.top,r.right,r.bottom,p.id]);});});
var bad=[];for(var i=0;i<boxes.length;i++){for(var j=i+1;j<boxes.length;j++){var a=boxes[i],b=boxes[j];
if(a[5]!==b[5])continue;var w=Math.min(a[3],b[3])-Math.max(a[1],b[1]),h=Math.min(a[4],b[4])-Math.max(a[2],b[2]);
if(w>1&&h>1)bad.push([a[5],a[0],b[0]]);}}
document.documentElement.setAttribute('data-text-overlaps', JSON.stringify(bad));},1000);});</script>"""
SECTION_HEIGHT = {"summary": 900, "bias": 1500, "verification": 1100, "retrieval": 500, "swaps": 800,
                  "saliency": 1250, "leaderboard": 900, "failures": 800, "provenance": 500}
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def find_chromium() -> Optional[str]:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def with_probe(page: str) -> str:
    return page.replace("<head>", "<head>" + ERROR_PROBE, 1).replace("</body>", OVERLAP_PROBE + "</body>", 1)


def text_overlaps(dom: str) -> List[list]:
    """[plot id, text, text] for each pair of overlapping texts the probe found; a page where it did not run
    counts as one overlap."""
    m = re.search(r'data-text-overlaps="([^"]*)"', dom)
    if m is None:
        return [["", "overlap probe did not run", ""]]
    import html

    return json.loads(html.unescape(m.group(1)))


def dump_dom(chromium: str, html_file: Path, profile: Path, width: int = 1400) -> Tuple[str, str]:
    """(DOM after the scripts ran in a ``width`` px wide window, Chromium's stderr)."""
    r = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000",
                        f"--window-size={width},1000",
                        "--enable-logging=stderr", "--v=0", "--dump-dom", Path(html_file).resolve().as_uri()],
                       capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        raise RuntimeError(f"chromium failed ({r.returncode}): {r.stderr[-500:]}")
    return r.stdout, r.stderr


def js_errors(dom: str) -> List[str]:
    """The probe's record; a page where the probe never ran counts as one error."""
    m = re.search(r'data-js-errors="([^"]*)"', dom)
    if m is None:
        return ["error probe did not run"]
    import html

    return json.loads(html.unescape(m.group(1)))


def screenshot(chromium: str, html_file: Path, png: Path, profile: Path, height: int, width: int = 1400) -> None:
    subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000",
                    f"--screenshot={png}", f"--window-size={width},{height}", Path(html_file).resolve().as_uri()],
                   capture_output=True, timeout=180)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot {png}")


def figures(page: str) -> List[dict]:
    """The plotly figures of a page as {"id", "data", "layout"}, parsed from its Plotly.newPlot calls."""
    dec = json.JSONDecoder()
    out = []
    for m in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', page):
        data, end = dec.raw_decode(page, m.end())
        end = re.match(r"\s*,\s*", page[end:]).end() + end
        layout, _ = dec.raw_decode(page, end)
        out.append({"id": m.group(1), "data": _typed(data), "layout": _typed(layout)})
    return out


def _typed(o):
    """Plotly's base64 typed arrays ({"dtype", "bdata", "shape"}) back to (nested) lists."""
    if isinstance(o, dict) and "bdata" in o and "dtype" in o:
        import base64

        import numpy as np

        a = np.frombuffer(base64.b64decode(o["bdata"]), dtype=np.dtype(o["dtype"]))
        if "shape" in o:
            a = a.reshape([int(x) for x in str(o["shape"]).split(",")])
        return a.tolist()
    if isinstance(o, dict):
        return {k: _typed(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_typed(v) for v in o]
    return o


def untitled_axes(fig: dict) -> List[str]:
    """Axes of a figure that are shown but have no title (image panels hide their axes)."""
    lay = fig["layout"]
    used = set()
    for t in fig["data"]:
        if t.get("type") in (None, "scatter", "bar", "histogram", "heatmap", "contour", "image", "box", "violin"):
            used.add("xaxis" + str(t.get("xaxis", "x"))[1:])
            used.add("yaxis" + str(t.get("yaxis", "y"))[1:])
    bad = []
    for ax in sorted(used):
        a = lay.get(ax, {})
        if a.get("visible") is False or (a.get("matches") and a.get("showticklabels") is False):
            continue  # hidden (image panels) or shared with a titled axis (tick labels shown only there)
        title = a.get("title", {})
        if not (title.get("text") if isinstance(title, dict) else title):
            bad.append(f"{fig['id']}:{ax}")
    return bad


def section_screens(results: dict, run_dir: Path, shots: Path, prefix: str, chromium: str,
                    work: Path) -> Dict[str, Path]:
    """One screenshot per section that the report has: ``shots/<prefix>-<section>.png``."""
    from .layout import SECTIONS, render_report

    shots.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    out = {}
    for sid, _, _ in SECTIONS:
        page = render_report(results, run_dir, sections=[sid])
        if f'<section id="{sid}"' not in page:
            continue
        f = work / f"{prefix}-{sid}.html"
        f.write_text(page)
        png = shots / f"{prefix}-{sid}.png"
        screenshot(chromium, f, png, work / f"profile-{sid}", SECTION_HEIGHT.get(sid, 1000))
        out[sid] = png
    return out


def main(argv: List[str]) -> int:
    import tempfile

    run_dir, shots = Path(argv[0]), Path(argv[1])
    chromium = find_chromium()
    if chromium is None:
        print("chromium not found (apt-get install chromium)", file=sys.stderr)
        return 2
    results = json.loads((run_dir / "results.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        page = (run_dir / "report.html").read_text()
        probe = Path(tmp) / "probe.html"
        probe.write_text(with_probe(page))
        dom, _ = dump_dom(chromium, probe, Path(tmp) / "profile")
        figs = figures(page)
        print(f"{len(figs)} plots, {dom.count('main-svg')} drawn svg layers, JS errors: {js_errors(dom)}, "
              f"untitled axes: {[a for f in figs for a in untitled_axes(f)]}, "
              f"overlapping texts: {text_overlaps(dom)}")
        for sid, png in section_screens(results, run_dir, shots, run_dir.name, chromium, Path(tmp)).items():
            print(f"{sid}: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
