"""Packaging: the idbench namespace is built from the top-level folders (wheel as editable install), the base
install is light (numpy + scipy), every third-party import is declared, and ``bench`` without the ``[bench]``
extra fails with one line."""

import ast
import importlib.metadata as md
import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("core", "encoders", "analysis", "swapper", "bench")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# installed --no-deps by the Makefile, documented in docs/install.md: facenet-pytorch pins torch<2.3,
# face_recognition would build dlib from source
NO_DEPS_INSTALLS = {"facenet-pytorch", "face-recognition"}
HEAVY = {"torch", "torchvision", "opencv-python", "opencv-contrib-python", "opencv-python-headless", "mediapipe",
         "dlib-bin", "dlib", "insightface", "onnxruntime", "tensorflow", "deepface", "pandas", "plotly"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _norm(re.match(r"[A-Za-z0-9_.\-]+", req).group(0))


def test_wheel_maps_folders_onto_idbench(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(tmp_path.glob("idbench-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("idbench/__init__.py", "idbench/align.py", "idbench/checkpoints.py", "idbench/encoders/registry.py",
              "idbench/encoders/dlib_native.py", "idbench/analysis/__init__.py",
              "idbench/analysis/estimators/__init__.py", "idbench/analysis/estimators/hopenet.py",
              "idbench/swapper/__init__.py", "idbench/bench/cli/application.py", "idbench/bench/train.py",
              "idbench/bench/training/loop.py", "idbench/bench/report/__init__.py", "idbench/bench/report/tables.py",
              "idbench/bench/data/published.csv"):
        assert f in names, f
    # every source folder (and subfolder) with Python files is shipped
    for folder in SOURCE_FOLDERS:
        for py in (REPO / folder).rglob("*.py"):
            rel = py.relative_to(REPO / folder).as_posix()
            prefix = "idbench/" if folder == "core" else f"idbench/{folder}/"
            assert prefix + rel in names, f"{folder}/{rel} is missing from the wheel (pyproject packages list?)"
    # nothing leaks out under the bare folder names that collide with PyPI packages
    assert not any(n.split("/")[0] in {"bench", "analysis", "encoders", "swapper", "core", "tests"} for n in names)
    ep = next(n for n in names if n.endswith("entry_points.txt"))
    assert "bench = idbench.bench.cli.entry:main" in zipfile.ZipFile(wheel).read(ep).decode()


def test_console_script_runs():
    bench = Path(sys.executable).parent / "bench"
    r = subprocess.run([str(bench), "list", "detectors"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for name in ("dlib-hog", "dlib-mmod", "mtcnn", "scrfd", "auto"):
        assert name in r.stdout


@pytest.mark.parametrize("blocked", ["typer", "torch"])
def test_bench_without_the_extra_is_one_line(blocked, tmp_path):
    """As on a base install: the module is absent, ``bench`` prints one line naming the extra, exit 2."""
    import numpy as np
    from PIL import Image

    image = tmp_path / "grey.png"  # a real input: validation passes and the torch encoder is built
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(image)
    code = (f"import sys; sys.modules[{blocked!r}] = None; sys.argv = ['bench', 'embed', '--encoder', "
            f"'dlib.resnet_v1_torch', '--no-cache', '--out', '/tmp/none.npz', {str(image)!r}]; "
            f"from idbench.bench._entry import main; main()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "%|" not in ln]
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-2000:]
    assert f"'{blocked}'" in lines[0] and "idbench[bench]" in lines[0]


def _third_party_imports():
    """Top-level modules imported anywhere in the five source folders that are neither stdlib nor idbench."""
    found = {}
    for folder in SOURCE_FOLDERS:
        for py in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(py.read_text(), str(py))):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods = [node.module]
                else:
                    continue
                for m in mods:
                    top = m.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ("idbench", "__future__"):
                        found.setdefault(top, f"{folder}/{py.relative_to(REPO / folder)}")
    return found


# import name -> distribution where packages_distributions() cannot tell: optional extras not installed here,
# and dlib-bin, whose RECORD names its extension module (_dlib_pybind11), not the dlib package
_NOT_INSTALLED_HERE = {"deepface": "deepface", "tensorflow": "tensorflow", "tf_keras": "tf-keras", "dlib": "dlib-bin"}


def test_every_imported_package_is_declared():
    declared = {_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    for reqs in PYPROJECT["project"]["optional-dependencies"].values():
        declared |= {_requirement_name(r) for r in reqs if not r.startswith("idbench")}
    dists = md.packages_distributions()  # import name -> installed distributions (from their RECORD files)
    undeclared = []
    for mod, where in sorted(_third_party_imports().items()):
        names = {_norm(d) for d in dists.get(mod, [])} or {_norm(_NOT_INSTALLED_HERE.get(mod, mod))}
        if not names & (declared | NO_DEPS_INSTALLS):
            undeclared.append(f"{mod} ({where}; distributions {sorted(names)})")
    assert not undeclared, "imported but not declared in pyproject.toml: " + ", ".join(undeclared)


def test_extras_use_ranges_not_exact_pins():
    reqs = list(PYPROJECT["project"]["dependencies"])
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        reqs += extra
    pinned = [r for r in reqs if "==" in r]
    assert not pinned, f"exact pins belong to the Makefile's tested install: {pinned}"
    base = {_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert base == {"numpy", "scipy"}
    assert {"bench", "deepface", "test", "all"} <= set(PYPROJECT["project"]["optional-dependencies"])


def test_base_install_pulls_no_torch(tmp_path):
    """Resolve ``pip install idbench`` (base, no extras) for a fresh environment: numpy and scipy only."""
    report = tmp_path / "report.json"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                        "--report", str(report), str(REPO)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        offline = re.search(r"No matching distribution|Could not find a version|Failed to establish|"
                            r"NewConnectionError|Temporary failure in name resolution|Network is unreachable",
                            r.stderr)
        if offline:
            pytest.skip(f"the package index cannot be reached to resolve the base install: {offline.group(0)}")
        pytest.fail(r.stderr[-2000:])
    pulled = {_norm(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}
    assert not pulled & HEAVY, f"the base install pulls {sorted(pulled & HEAVY)}"
    assert pulled == {"idbench", "numpy", "scipy"}, sorted(pulled)
