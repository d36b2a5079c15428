"""Import the official upstream files of ../shared/upstream for parity tests, without modifying them.

Each file is read, patched in memory where it cannot run as is (the quirks listed in
../shared/upstream/README.md), and executed as a module under a private name. ``upstream_module`` skips
the calling test when ../shared/upstream is absent.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import pytest

UPSTREAM = Path(__file__).resolve().parents[1].parent / "shared" / "upstream"

#: file -> in-memory (old, new) replacements that make it importable under current Python / numpy / torch
QUIRKS: Dict[str, Tuple[Tuple[str, str], ...]] = {
    # the evaluation script: its definitions only (see UNTIL), without its data set module
    "clcarwin/sphereface_pytorch/lfw_eval.py": (("from dataset import ImageDataset", ""),
                                                ("from matlab_cp2tform import", "from _up_sphere_cp2tform import"),
                                                ("import net_sphere", "import _up_sphere_net as net_sphere")),
    # MATLAB's "X\\U" in a docstring is a bad escape in Python 3 (the in-place flip of the caller's
    # reference points is kept: it is what the official code does)
    "clcarwin/sphereface_pytorch/matlab_cp2tform.py": (("X\\U", "X/U"),),
    # AdaFace imports its own copy through the package path
    "mk-minchul/AdaFace/face_alignment/mtcnn_pytorch/src/align_trans.py": (
        ("from mtcnn_pytorch.src.matlab_cp2tform import", "from _up_adaface_cp2tform import"),),
    # torch >= 2 wants a contiguous input to .view()
    "clcarwin/sphereface_pytorch/net_sphere.py": (("x = x.view(x.size(0),-1)", "x = x.reshape(x.size(0),-1)"),),
    # numpy >= 1.24 refuses the ragged array of (scalar, size-1 array) the last line of align_img builds
    "sicxu/Deep3DFaceRecon_pytorch/util/preprocess.py": (
        ("trans_params = np.array([w0, h0, s, t[0], t[1]])",
         "trans_params = np.array([w0, h0, float(s), float(t[0]), float(t[1])])"),),
    # ImageNet weights are downloaded when the backbone is built: random weights are what a parity test wants
    "zllrunning/face-parsing.PyTorch/resnet.py": (("self.init_weight()", "pass"),),
}


#: file -> the text its definitions end at (a Python 2 self-test block, a script's command-line body)
UNTIL = {
    "clcarwin/sphereface_pytorch/matlab_cp2tform.py": "if __name__ == '__main__':",
    "mk-minchul/AdaFace/face_alignment/mtcnn_pytorch/src/matlab_cp2tform.py": "if __name__ == '__main__':",
    "clcarwin/sphereface_pytorch/lfw_eval.py": "parser = argparse",
}


def upstream_path(rel: str) -> Path:
    p = UPSTREAM / rel
    if not p.is_file():
        pytest.skip(f"../shared/upstream/{rel} is not available")
    return p


def upstream_module(rel: str, name: str, inject: Optional[dict] = None,
                    replace: Sequence[Tuple[str, str]] = ()) -> types.ModuleType:
    """The official file ``rel`` (relative to ../shared/upstream) executed as module ``name``.

    ``inject`` names are defined before the file runs (a name the file uses without defining it);
    ``replace`` adds in-memory replacements to :data:`QUIRKS`, each of which must match; a file in
    :data:`UNTIL` is cut where its definitions end.
    """
    if name in sys.modules:
        return sys.modules[name]
    src = upstream_path(rel).read_text()
    for old, new in (*QUIRKS.get(rel, ()), *replace):
        assert old in src, f"{rel}: expected {old!r} (the upstream file changed)"
        src = src.replace(old, new)
    until = UNTIL.get(rel, "")
    if until:
        assert until in src, f"{rel}: expected {until!r} (the upstream file changed)"
        src = src[:src.index(until)]
    mod = types.ModuleType(name)
    mod.__file__ = str(UPSTREAM / rel)
    mod.__dict__.update(inject or {})
    sys.modules[name] = mod
    try:
        exec(compile(src, str(UPSTREAM / rel), "exec"), mod.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def randomise(module, seed: int):
    """Random weights, BN statistics and PReLU slopes with sane activation scales, in eval mode: a network
    whose outputs depend on every input pixel (all-default initialisations hide preprocessing mistakes)."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
                fan_in = m.weight[0].numel() if not isinstance(m, nn.ConvTranspose2d) else m.weight[:, 0].numel()
                m.weight.normal_(0.0, fan_in ** -0.5, generator=g)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.05, generator=g)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                if m.weight is not None:
                    m.weight.uniform_(0.5, 1.0, generator=g)
                    m.bias.normal_(0.0, 0.1, generator=g)
                if m.running_mean is not None:
                    m.running_mean.normal_(0.0, 0.1, generator=g)
                    m.running_var.uniform_(0.5, 2.0, generator=g)
            elif isinstance(m, nn.PReLU):
                m.weight.uniform_(0.05, 0.4, generator=g)
    return module.eval()


def cosine(a, b) -> "np.ndarray":
    """Row-wise cosine similarity of two N x D arrays."""
    import numpy as np

    a, b = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
