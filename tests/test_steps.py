"""The analysis steps: one registry, checked names, only the requested steps computed, typed results that round-trip,
step layout versions in results.json, the pure protocol module and no import cycle."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from idbench.bench import steps as S

REPO = Path(__file__).resolve().parents[1]


# --- one list of analyses, checked names -------------------------------------------------------------------

def test_default_and_order_come_from_the_registry():
    assert S.default_analyses() == ["bias", "verification", "retrieval"]  # unchanged default
    assert S.ordered() == ["bias", "verification", "retrieval", "saliency", "decomposition", "swaps"]
    for name in S.STEPS:  # every step declares catalogued columns and a known section
        spec = S.STEPS.spec(name)
        assert spec.columns and spec.section and spec.description and spec.version >= 1


def test_the_docs_table_lists_every_step():
    table = S.steps_markdown()
    for name in S.STEPS:
        assert f"| `{name}` |" in table
    assert "| `bias` | " in table and "by default" in table.split("| `bias` |")[1].split("\n")[0]


def test_unknown_analysis_suggests_the_close_name():
    with pytest.raises(KeyError) as e:
        S.parse_analyses("bias,verfication")
    assert "unknown analysis 'verfication'" in str(e.value) and "Did you mean: verification" in str(e.value)
    with pytest.raises(ValueError, match="empty list"):
        S.parse_analyses(" , ")


def test_cli_refuses_an_unknown_analysis_in_one_line_and_its_help_lists_the_registry(tmp_path):
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    r = CliRunner().invoke(app, ["run", "--analyses", "bias,decompositon", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    last = [ln for ln in r.output.strip().splitlines() if ln.strip()][-1]
    assert last.startswith("error: unknown analysis 'decompositon'") and "Did you mean: decomposition" in last
    help_text = " ".join(CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output.split())
    for name in S.STEPS:
        assert name in help_text, name


def test_a_step_with_an_uncatalogued_column_or_unknown_need_is_refused():
    from idbench.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="no_such_metric"):
        S.register_step(S.StepSpec("t_bad_col", "x", S.StepResult, columns=("no_such_metric",)))
    with pytest.raises(ValueError, match="needs"):
        S.register_step(S.StepSpec("t_bad_need", "x", S.StepResult, needs=("gpu",)))
    assert "t_bad_col" not in S.STEPS and "t_bad_need" not in S.STEPS


# --- the loop computes only what is asked, with the metric functions' values ----------------------------

def _context(n_ids=6, per_id=5, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim))
    labels = np.repeat([f"id{i}" for i in range(n_ids)], per_id)
    emb = centres[np.repeat(np.arange(n_ids), per_id)] + 0.8 * rng.normal(size=(n_ids * per_id, dim))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    table = SimpleNamespace(embeddings={"enc": emb}, paths=[f"p{i}.jpg" for i in range(len(emb))])
    cfg = SimpleNamespace(seed=seed, n_boot=0, bias=True, saliency_faces=0)
    enc = SimpleNamespace(spec=SimpleNamespace(flip_test=False))
    results = {"encoders": {"enc": {}}, "swappers": {}}
    ctx = S.RunContext(cfg, SimpleNamespace(table=table, labels=labels), {"enc": enc}, None, [], Path("."),
                       results=results)
    return ctx, emb, labels


def test_only_the_requested_steps_run_and_match_independent_references(monkeypatch):
    from sklearn.metrics import roc_auc_score

    ctx, emb, labels = _context()
    monkeypatch.setattr(S.RunContext, "bias_swaps", lambda self: pytest.fail("bias swaps built, bias not asked"))
    S.run_steps(["verification", "retrieval"], ctx)
    e = ctx.results["encoders"]["enc"]
    assert set(e) == {"verification", "retrieval"} and "bias_swap_params" not in ctx.results
    # verification: every same-identity pair and sampled different-identity pairs, AUC as scikit-learn has it
    v = e["verification"]
    pairs = np.array([[i, j] for i in range(len(labels)) for j in range(len(labels)) if i < j])
    same = {(i, j) for i, j in pairs if labels[i] == labels[j]}
    assert sum(v["pair_labels"]) == len(same)
    assert v["auc"] == pytest.approx(roc_auc_score(v["pair_labels"], v["pair_scores"]), abs=1e-4)
    # retrieval: gallery = first face of each identity, top-1 by brute force
    gal = [int(np.flatnonzero(labels == u)[0]) for u in np.unique(labels)]
    probes = [r for r in range(len(labels)) if r not in gal]
    top1 = np.mean([labels[gal[int(np.argmax(emb[gal] @ emb[p]))]] == labels[p] for p in probes])
    assert e["retrieval"]["top1"] == pytest.approx(top1) and e["retrieval"]["n_probes"] == len(probes)


def test_typed_results_round_trip():
    ctx, _, _ = _context()
    S.run_steps(["verification", "retrieval"], ctx)
    e = ctx.results["encoders"]["enc"]
    for name in ("verification", "retrieval"):
        typed = S.STEPS.spec(name).result.from_json(e)
        assert typed.to_json() == {name: e[name]}
    from idbench.bench.steps.verification import VerificationResult

    assert VerificationResult.from_json(e).tar_at_far_1e_3 == e["verification"]["tar_at_far_1e-3"]
    assert VerificationResult.from_json({}) is None  # an encoder without the step


# --- results.json: step layout versions ---------------------------------------------------------------------

def _write(run: Path, results: dict) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "results.json").write_text(json.dumps(results))
    return run


def test_schema_names_each_steps_version_and_a_newer_one_is_refused_in_one_line(tmp_path):
    from idbench.bench.run_folder import SCHEMA_VERSION, read_results, stamp
    from idbench.errors import InputError

    r = stamp({"encoders": {}})
    assert r["schema"]["version"] == SCHEMA_VERSION == 3 and r["schema"]["steps"] == S.step_versions()
    assert read_results(_write(tmp_path / "ok", r))["schema"]["steps"]["bias"] == 1
    old = {"encoders": {"dlib": {"verification": {"auc": 0.9}}}}  # before any schema stamp: still read
    assert read_results(_write(tmp_path / "old", old))["encoders"]["dlib"]["verification"]["auc"] == 0.9
    newer = stamp({"encoders": {}})
    newer["schema"]["steps"]["bias"] = 2
    with pytest.raises(InputError, match="analysis 'bias' has result version 2, this idbench reads up to 1"):
        read_results(_write(tmp_path / "newer", newer))
    p = subprocess.run([sys.executable, "-m", "idbench.bench.cli", "report", str(tmp_path / "newer")],
                       capture_output=True, text=True, cwd=REPO)
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and "update idbench" in lines[0]


def test_restamping_keeps_the_versions_the_fragments_were_written_with():
    from idbench.bench.run_folder import stamp

    r = {"encoders": {}, "schema": {"name": "idbench.results", "version": 3, "steps": {"bias": 1, "plugin": 4}}}
    assert stamp(r)["schema"]["steps"]["plugin"] == 4


# --- module structure --------------------------------------------------------------------------------------

def test_protocol_is_pure_numpy_and_old_imports_still_work():
    code = ("import sys, idbench.analysis.protocol; "
            "bad = [m for m in ('torch', 'cv2') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    from idbench.analysis import protocol as P
    from idbench.bench import encoder_analysis as EA
    from idbench.bench import run as R

    assert EA.plan_bias is P.plan_bias and EA.gallery_split is P.gallery_split and EA.BiasPlan is P.BiasPlan
    assert callable(R.plan_swap_embeddings) and callable(R.bias_swapper)


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield ("." * node.level) + (node.module or "")
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_no_module_of_the_analyses_imports_bench_run():
    files = [REPO / "bench" / f for f in ("decomposition.py", "plan_swaps.py", "swap_eval.py", "encoder_analysis.py")]
    files += sorted((REPO / "bench" / "steps").glob("*.py"))
    for f in files:
        bad = [m for m in _imports(f) if m in (".run", "idbench.bench.run", "..run")]
        assert not bad, f"{f.name} imports {bad}"


def test_the_leaderboards_fixed_columns_are_the_encoder_steps_declared_ones():
    from idbench.analysis.catalogue import split_column
    from idbench.bench.report.tables import ENCODER_COLUMNS

    declared = {c for n in S.STEPS if S.STEPS.spec(n).scope == "encoder" for c in S.STEPS.spec(n).columns}
    assert {split_column(c)[0] for c, _ in ENCODER_COLUMNS} == declared
