"""The idbench namespace is built from the top-level folders, in a wheel as in the editable install."""

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_maps_folders_onto_idbench(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(tmp_path.glob("idbench-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("idbench/__init__.py", "idbench/align.py", "idbench/encoders/registry.py",
              "idbench/encoders/dlib_native.py", "idbench/analysis/__init__.py", "idbench/swapper/__init__.py",
              "idbench/bench/cli.py", "idbench/bench/report/__init__.py", "idbench/bench/report/tables.py"):
        assert f in names, f
    # nothing leaks out under the bare folder names that collide with PyPI packages
    assert not any(n.split("/")[0] in {"bench", "analysis", "encoders", "swapper", "core", "tests"} for n in names)
    ep = next(n for n in names if n.endswith("entry_points.txt"))
    assert "bench = idbench.bench.cli:main" in zipfile.ZipFile(wheel).read(ep).decode()


def test_console_script_runs():
    bench = Path(sys.executable).parent / "bench"
    r = subprocess.run([str(bench), "list", "detectors"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for name in ("dlib-hog", "dlib-mmod", "mtcnn", "scrfd", "auto"):
        assert name in r.stdout
