"""Weight files of the learned swappers in their official formats, for the tests (no real weights here).

* BlendSwap: the whole ``BlendSwap`` module's ``state_dict()`` (official keys; width divided, fewer blocks);
* SimSwap: ``latest_net_G.pth`` (the generator's state dict) and ``arcface_checkpoint.tar`` (its ArcFace);
* inswapper: an ONNX graph with inswapper_128's inputs and output and an appended ``emap`` initializer,
  plus a small recognition graph with w600k_r50's I/O (the ``arcface.onnx`` encoder).

Random weights turn a face into noise, so a swap made with them has no face to re-detect and is never scored.
For the end-to-end runs :func:`place_weights` (``scoreable=True``) writes weights that keep a face in the swap:
BlendSwap's and inswapper's random networks leave the face visible under their output; SimSwap's generator
gets hand-set weights (:func:`passthrough_simswap_generator`) in the same official layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def randomise_bn(module, seed: int) -> None:
    """Non-trivial BatchNorm statistics, so eval-mode normalisation is exercised."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def small_blendswap(seed: int = 0):
    from idbench.swapper.learned.aei_net import BlendSwapNet

    torch.manual_seed(seed)
    net = BlendSwapNet(width=16, id_layers=(1, 1, 1, 1))
    randomise_bn(net, seed)
    return net


def small_simswap_generator(seed: int = 0):
    from idbench.swapper.learned.simswap_net import SimSwapGenerator

    torch.manual_seed(seed)
    g = SimSwapGenerator(n_blocks=2, width=8)
    randomise_bn(g, seed)
    return g.eval()


def small_arcface(seed: int = 0):
    from idbench.swapper.learned.simswap_net import SimSwapArcFace

    torch.manual_seed(seed)
    a = SimSwapArcFace((1, 1, 1, 1), width=4)
    randomise_bn(a, seed)
    return a.eval()


def export_onnx(module, args, names, out_names, path: Path) -> Path:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=names, output_names=out_names, dynamo=False,
                          opset_version=17)
    return path


def identity_onnx(tmp_path: Path) -> Path:
    """A small recognition graph with w600k_r50's I/O (1 x 3 x 112 x 112 -> 1 x 512; > 1 MB like the real one)."""
    torch.manual_seed(5)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(14), torch.nn.Flatten(), torch.nn.Linear(588, 512)).eval()
    return export_onnx(net, (torch.zeros(1, 3, 112, 112),), ["input.1"], ["embedding"], tmp_path / "w600k_r50.onnx")


class TinySwapper(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.fc = torch.nn.Linear(512, 3)

    def forward(self, target, source):
        return torch.sigmoid(self.conv(target) * 4 + self.fc(source)[:, :, None, None] * 8)


def inswapper_onnx(tmp_path: Path) -> Path:
    """inswapper_128's I/O ('target' 1x3x128x128, 'source' 1x512 -> 'output'), emap appended as last initializer."""
    import onnx
    from onnx import numpy_helper

    torch.manual_seed(6)
    path = export_onnx(TinySwapper().eval(), (torch.zeros(1, 3, 128, 128), torch.zeros(1, 512)),
                       ["target", "source"], ["output"], tmp_path / "inswapper_128.onnx")
    model = onnx.load(str(path))
    emap = np.random.default_rng(7).normal(0, 1, (512, 512)).astype(np.float32)
    model.graph.initializer.append(numpy_helper.from_array(emap, "emap"))
    onnx.save(model, str(path))
    return path


def passthrough_simswap_generator(seed: int = 0, shift: float = 0.05):
    """SimSwap's generator layout (2 ID blocks, width 8) with hand-set weights: the RGB target is carried in
    channels 0-2 through the stride-2 path (blurred, 28 px at the bottleneck), and each ID block adds a shift
    that depends on the source latent (random, ``shift`` per unit latent); the output keeps a face."""
    from idbench.swapper.learned.simswap_net import SimSwapGenerator

    g = SimSwapGenerator(n_blocks=2, width=8).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in g.parameters():
            p.zero_()
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # the identity in eval mode
                m.weight.fill_(1.0)
                m.running_mean.zero_()
                m.running_var.fill_(1.0 - m.eps)

        def carry(conv, scale: float = 1.0, blur: bool = False):
            c = conv.weight.shape[-1] // 2
            for i in range(3):
                if blur:  # [1 2 1] x [1 2 1] / 16: no aliasing at stride 2
                    b = torch.tensor([1.0, 2.0, 1.0])
                    conv.weight[i, i] = torch.outer(b, b) / 16 * scale
                else:
                    conv.weight[i, i, c, c] = scale

        carry(g.first_layer[1])
        for down in (g.down1, g.down2, g.down3):
            carry(down[0], blur=True)
        for up in (g.up3, g.up2, g.up1):
            carry(up[1])
        carry(g.last_layer[1], scale=2.0)  # (tanh(2x - 1) + 1) / 2: a gentle S-curve on [0, 1]
        g.last_layer[1].bias[:3] = -1.0
        for block in g.BottleNeck:  # conv weights 0: the block adds style2's shift, linear in the latent
            lin = block.style2.linear
            c = lin.out_features // 2
            lin.weight[c:c + 3] = torch.randn(3, lin.in_features, generator=gen) * shift
    return g


def place_weights(home: Path, tmp: Path, scoreable: bool = False) -> Path:
    """Every learned swapper's files where the resolver looks (``home/weights`` = ``$IDBENCH_HOME/weights``).

    ``scoreable``: SimSwap's generator is :func:`passthrough_simswap_generator` (its swaps keep a face);
    otherwise random. Returns the weights folder.
    """
    w = home / "weights"
    w.mkdir(parents=True, exist_ok=True)
    generator = passthrough_simswap_generator() if scoreable else small_simswap_generator()
    torch.save(generator.state_dict(), w / "latest_net_G.pth")
    torch.save(small_arcface().state_dict(), w / "arcface_checkpoint.tar")
    torch.save(small_blendswap().state_dict(), w / "blendswap.pth")
    for p in (inswapper_onnx(tmp), identity_onnx(tmp)):
        (w / p.name).write_bytes(p.read_bytes())
    return w
