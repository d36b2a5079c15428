"""``bench run`` as a loop of registered steps writes the same results.json as the hard-coded analyses did.

The golden file ``tests/data/steps_golden.json`` is the results (with its samples.npz put back) of the code before
the steps (main at f534270), made with ``python tests/test_steps_golden.py RUN_FOLDER`` after running, in a folder
holding ``faces/`` = four identities of ../shared/data/faces (links), the command :data:`ARGS`. The test runs the
same command with this code and compares every key and number (floats to 1e-5: the golden may come from another
CPU); only the machine-dependent provenance and the schema stamp (now with step versions) are left out.

Regenerated once since, when detection workers moved from ``spawn`` to a forkserver: only the decomposition's
``shape`` variant moved (one borderline thin-plate-spline swap of 67 is re-detected or not depending on the BLAS
threads of the process that warps it; the file is now what the code before the forkserver gives in one
process (``IDBENCH_WORKERS=1``, checked at 6ef94cb).

Keys added since the golden (:data:`ADDED`) are checked on their own (recomputed from the run's own pair scores
with the metric library) and then left out of the comparison, so the file stays the code before the steps.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "data" / "steps_golden.json"
FACES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "faces"
IDENTITIES = ("abdullah_gul", "ali_naimi", "antonio_palocci", "ariel_sharon")
ARGS = ["run", "--dataset", "folder", "--root", "faces", "--encoders", "dlib", "--analyses",
        "bias,verification,retrieval,decomposition", "--swappers", "blend", "--out", "out", "--cache-dir", "cache",
        "--n-boot", "50", "--n-perm", "50", "--saliency-faces", "2", "--k-partners", "10"]
MACHINE = ("created", "python", "platform", "packages", "git_commit")
ADDED = (("verification", "auc_ci"),)  # per encoder: DeLong's interval of the verification AUC


def normalise(results: dict, cwd: Path) -> dict:
    """``results`` without what depends on the machine, the time or the folder it ran in."""
    r = json.loads(json.dumps(results).replace(str(Path(cwd).resolve()), "<cwd>"))
    for k in MACHINE:
        r["provenance"].pop(k, None)
    r.pop("schema", None)
    r.pop("samples", None)  # the manifest of samples.npz; its arrays are back in place
    return r


def assert_same(got, want, path="results"):
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{path}: keys {sorted(set(got) ^ set(want))}"
        for k in want:
            assert_same(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool) and isinstance(got, (int, float)):
        assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6), f"{path}: {got} != {want}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory):
    if not all((FACES / i).is_dir() for i in IDENTITIES):
        pytest.skip("../shared/data/faces not present")
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    d = tmp_path_factory.mktemp("golden")
    (d / "faces").mkdir()
    for i in IDENTITIES:
        (d / "faces" / i).symlink_to((FACES / i).resolve())
    import os

    old = os.getcwd()
    os.chdir(d)
    try:
        r = CliRunner().invoke(app, ARGS)
    finally:
        os.chdir(old)
    assert r.exit_code == 0, r.output
    return d


@pytest.mark.slow
def test_results_json_is_the_same_as_before_the_steps(golden_run):
    from idbench.bench.samples import load_results

    got = normalise(load_results(golden_run / "out"), golden_run)
    want = json.loads(GOLDEN.read_text())
    for enc in got["encoders"].values():
        for step, key in ADDED:
            assert key in enc[step] and key not in want["encoders"]["dlib"][step], (step, key)
            del enc[step][key]
    assert_same(got, want)


@pytest.mark.slow
def test_the_verification_auc_interval_is_delongs_on_the_runs_pairs(golden_run):
    import numpy as np

    from idbench.analysis import roc_auc_ci
    from idbench.bench.samples import load_results

    ver = load_results(golden_run / "out")["encoders"]["dlib"]["verification"]
    s, y = np.array(ver["pair_scores"]), np.array(ver["pair_labels"])
    lo, hi = roc_auc_ci(s, y)  # the stored scores are rounded to 1e-5: the interval moves by less than that
    assert ver["auc_ci"] == pytest.approx([lo, hi], abs=1e-4) and lo <= ver["auc"] <= hi


@pytest.mark.slow
def test_every_step_result_round_trips_and_the_schema_names_their_versions(golden_run):
    from idbench.bench.samples import load_results
    from idbench.bench.steps import STEPS, step_versions

    res = load_results(golden_run / "out")
    assert res["schema"]["steps"] == step_versions() and res["schema"]["version"] == 3
    enc = res["encoders"]["dlib"]
    for name in STEPS:
        spec = STEPS.spec(name)
        src = enc if spec.scope == "encoder" else res
        typed = spec.result.from_json(src)
        assert typed is not None, name
        frag = typed.to_json()
        assert frag and all(src[k] == v for k, v in frag.items()), name  # the same keys and values back


if __name__ == "__main__":  # regenerate: python tests/test_steps_golden.py RUN_FOLDER (the folder ARGS ran in)
    from idbench.bench.samples import load_results

    folder = Path(sys.argv[1])
    GOLDEN.write_text(json.dumps(normalise(load_results(folder / "out"), folder), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
