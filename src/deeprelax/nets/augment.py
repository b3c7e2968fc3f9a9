"""Data augmentation for CIFAR (optional; the reference runs use none): random crop after zero padding, and
random horizontal flip, on a batch of image tensors, driven by an explicit ``torch.Generator``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def crop(x: Tensor, dy: Tensor, dx: Tensor, pad: int) -> Tensor:
    """Zero-pad each (C, H, W) image of ``x`` by ``pad`` and cut the H×W window at offset (dy[i], dx[i])."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_crop_flip(x: Tensor, generator: torch.Generator, *, pad: int = 4, flip: bool = True) -> Tensor:
    """Random translation by up to ``pad`` pixels (zero fill) and, if ``flip``, a left-right flip with
    probability 1/2, drawn independently per image from ``generator`` (a CPU generator)."""
    if pad < 0:
        raise ValueError(f"pad must be non-negative, got {pad!r}")
    n = x.shape[0]
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    out = crop(x, dy, dx, pad) if pad else x
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(x.device).view(n, 1, 1, 1)
        out = torch.where(mask, out.flip(-1), out)
    return out
