"""The one checkpoint reader (``idbench.checkpoints``): every failure is a one-line WeightsFormatError.

The files are written here with ``torch.save`` the way checkpoints come in the wild (DDP / torch.compile
prefixes, containers, whole pickled objects, truncated downloads, HTML error pages); the loaded tensors are
compared with the ones saved, not with anything the reader computes.
"""

from __future__ import annotations

import argparse

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from idbench.checkpoints import load_state_dict_checked, read_state_dict  # noqa: E402
from idbench.errors import WeightsFormatError, WeightsNotFoundError  # noqa: E402


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))


def _one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def test_plain_state_dict_round_trip(tmp_path):
    net = _net()
    p = tmp_path / "sd.pth"
    torch.save(net.state_dict(), p)
    fresh = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    load_state_dict_checked(fresh, read_state_dict(p), "a test net", p)
    for k, v in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


@pytest.mark.parametrize("wrap", [
    lambda sd: {f"module.{k}": v for k, v in sd.items()},                     # DDP
    lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()},                  # torch.compile
    lambda sd: {f"module._orig_mod.{k}": v for k, v in sd.items()},           # both
    lambda sd: {"state_dict": sd, "epoch": 3},                                # training container
    lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}, "optimizer": {}},
])
def test_prefixes_and_containers_are_unwrapped(tmp_path, wrap):
    sd = _net().state_dict()
    p = tmp_path / "w.pth"
    torch.save(wrap(sd), p)
    got = read_state_dict(p)
    assert sorted(got) == sorted(sd) and all(torch.equal(got[k], sd[k]) for k in sd)


def test_key_selects_one_net_of_several(tmp_path):
    sd = _net().state_dict()
    p = tmp_path / "multi.pth"
    torch.save({"net_recon": sd, "opt_00": {"state": {}, "param_groups": [{"lr": 1e-4}]}}, p)
    assert sorted(read_state_dict(p, key="net_recon")) == sorted(sd)
    other = tmp_path / "other.pth"
    torch.save({"epoch": 20, "opt_00": {"lr": 1.0}}, other)
    with pytest.raises(WeightsFormatError) as e:
        read_state_dict(other, key="net_recon")
    assert "net_recon" in _one_line(e) and "epoch" in str(e.value)


def test_missing_truncated_html_and_empty_files(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        read_state_dict(tmp_path / "nope.pth", origin="the moon")
    good = tmp_path / "good.pth"
    torch.save({"w": torch.zeros(5000)}, good)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(WeightsFormatError) as e:
        read_state_dict(cut, origin="the moon")
    assert "truncated or corrupt" in _one_line(e) and "the moon" in str(e.value)
    html = tmp_path / "page.pth"
    html.write_bytes(b"<!DOCTYPE html><html>Google Drive - quota exceeded</html>")
    with pytest.raises(WeightsFormatError) as e:
        read_state_dict(html)
    assert "HTML" in _one_line(e)
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(WeightsFormatError, match="empty"):
        read_state_dict(tmp_path / "empty.pth")


def test_pickled_objects_need_the_one_trust_switch(tmp_path, monkeypatch):
    sd = _net().state_dict()
    p = tmp_path / "pickled.pth"
    torch.save({"state_dict": sd, "args": argparse.Namespace(lr=0.1)}, p)  # as many research repos save
    monkeypatch.delenv("IDBENCH_ALLOW_PICKLE", raising=False)
    with pytest.raises(WeightsFormatError) as e:
        read_state_dict(p)
    assert "allow_pickle=True" in _one_line(e) and "IDBENCH_ALLOW_PICKLE" in str(e.value)
    assert sorted(read_state_dict(p, allow_pickle=True)) == sorted(sd)
    monkeypatch.setenv("IDBENCH_ALLOW_PICKLE", "1")
    assert sorted(read_state_dict(p)) == sorted(sd)
    with pytest.raises(WeightsFormatError):  # the explicit argument wins over the environment
        read_state_dict(p, allow_pickle=False)
    whole = tmp_path / "whole.pth"
    torch.save(nn.Linear(2, 2), whole)  # torch.save(model): a pickled module
    monkeypatch.delenv("IDBENCH_ALLOW_PICKLE")
    with pytest.raises(WeightsFormatError):
        read_state_dict(whole)
    assert sorted(read_state_dict(whole, allow_pickle=True)) == ["bias", "weight"]


def test_shape_mismatch_missing_and_unexpected_keys(tmp_path):
    net = _net()
    sd = net.state_dict()
    bad = dict(sd, **{"2.weight": torch.zeros(5, 3)})
    with pytest.raises(WeightsFormatError) as e:
        load_state_dict_checked(_net(), bad, "a test net", "f.pth")
    assert "'2.weight' has shape (5, 3) but a test net needs (2, 3)" in _one_line(e)
    partial = {k: v for k, v in sd.items() if not k.startswith("2.")}
    with pytest.raises(WeightsFormatError) as e:
        load_state_dict_checked(_net(), partial, "a test net", "f.pth")
    assert "2 missing" in _one_line(e)
    target = _net()
    torch.nn.init.constant_(target[2].weight, 7.0)
    load_state_dict_checked(target, partial, "a test net", "f.pth", optional=("2.",))  # a vestigial head
    assert torch.equal(target[0].weight, sd["0.weight"]) and float(target[2].weight.detach().min()) == 7.0
    with pytest.raises(WeightsFormatError) as e:
        load_state_dict_checked(_net(), dict(sd, extra=torch.ones(1)), "a test net", "f.pth")
    assert "1 unexpected" in _one_line(e)
    nan = dict(sd, **{"0.bias": torch.full((3,), float("nan"))})
    with pytest.raises(WeightsFormatError, match="NaN"):
        load_state_dict_checked(_net(), nan, "a test net", "f.pth")
