"""The mission's own command, `bench run --encoders arcface,blendface`: family tags resolve to the defaults
(timm-style), every missing weight file is named in one message, and with official-format weights it runs."""

import json

import pytest
import torch
from typer.testing import CliRunner

from idbench.bench.cli import app
from idbench.encoders import ENCODERS, create_encoder, list_encoders

from test_encoder_loaders import empty_homes, random_state_dict  # noqa: F401  (fixture)


def test_family_tags_resolve_to_their_defaults():
    assert ENCODERS.resolve("arcface") == "arcface.r100"
    assert ENCODERS.resolve("blendface") == "blendface.r100"
    assert ENCODERS.spec("facenet").name == "facenet.vggface2"
    with pytest.raises(KeyError, match="Did you mean"):
        ENCODERS.resolve("arcfase")


def test_list_pattern_finds_substrings_and_globs():
    assert list_encoders("blendface") == ["arcface.r100_blendface_repo", "blendface.r100", "blendface.r18",
                                          "blendface.r34", "blendface.r50"]
    assert list_encoders("R100") == ["arcface.onnx_glintr100", "arcface.r100", "arcface.r100_blendface_repo", "blendface.r100"]
    assert list_encoders("arcface.r1*") == ["arcface.r100", "arcface.r100_blendface_repo", "arcface.r18"]
    r = CliRunner().invoke(app, ["list", "encoders", "blendface"])
    assert r.exit_code == 0 and "blendface.r100" in r.output and "blendface.pt" in r.output


def test_every_missing_weight_file_in_one_message(empty_homes, tmp_path):  # noqa: F811
    r = CliRunner().invoke(app, ["run", "--encoders", "arcface,blendface", "--dataset", "sample",
                                 "--out", str(tmp_path / "out")])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1, r.output
    msg = lines[0]
    assert msg.startswith("error: 2 missing weight files")
    for needle in ("arcface.r100 needs ms1mv3_arcface_r100_fp16_backbone.pth", "--weights arcface=PATH",
                   "blendface.r100 needs blendface.pt", "--weights blendface=PATH",
                   str(tmp_path / "idbench" / "weights")):
        assert needle in msg, needle
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.slow
def test_mission_command_runs_with_official_format_weights(empty_homes, tmp_path):  # noqa: F811
    weights = tmp_path / "idbench" / "weights"
    weights.mkdir(parents=True)
    # arcface_torch releases fp16 backbones; BlendFace's blendface.pt is a plain float32 state dict
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in random_state_dict("r100", 1).items()},
               weights / "ms1mv3_arcface_r100_fp16_backbone.pth")
    bf = tmp_path / "elsewhere" / "blendface.pt"
    bf.parent.mkdir()
    torch.save(random_state_dict("r100", 2), bf)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["run", "--encoders", "arcface,blendface", "--weights", f"blendface={bf}",
                                 "--dataset", "sample", "--out", str(out), "--n-boot", "50",
                                 "--saliency-faces", "0", "--analyses", "bias,verification"])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert set(res["encoders"]) == {"arcface.r100", "blendface.r100"}
    assert create_encoder("arcface").weights_path == weights / "ms1mv3_arcface_r100_fp16_backbone.pth"
    for enc in res["encoders"].values():
        assert enc["verification"]["auc"] is not None
