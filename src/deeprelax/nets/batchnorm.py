"""BatchNorm "dry feed": re-estimate the BatchNorm running statistics on training data before evaluating.

During training the running mean/variance of a BatchNorm layer are exponential averages over weights that
kept changing. The reference runs therefore, before each evaluation, reset them and feed training batches
forward with dropout switched off and BatchNorm in training mode, accumulating the *plain average* of the
batch statistics (``momentum=None``): for equal batches the running mean is exactly the mean of the
layer's input over the data fed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd


@torch.no_grad()
def refresh_batchnorm(
    model: nn.Module,
    x: Tensor,
    *,
    batch_size: int = 128,
    max_batches: int | None = None,
    device: torch.device | str | None = None,
    transform: Callable[[Tensor], Tensor] | None = None,
) -> int:
    """Dry-feed ``x`` (in order, ``batch_size`` at a time, at most ``max_batches`` batches) through ``model``
    to re-estimate every BatchNorm layer's running statistics; returns the number of examples fed.

    Dropout is off during the feed; the model's train/eval mode and the layers' momenta are restored after.
    """
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not bns:
        return 0
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size!r}")
    was_training = model.training
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for mod in model.modules():
        if isinstance(mod, _DropoutNd):
            mod.eval()
    n = len(x) if max_batches is None else min(len(x), max_batches * batch_size)
    try:
        for i in range(0, n, batch_size):
            xb = x[i : min(i + batch_size, n)]
            if device is not None:
                xb = xb.to(device, non_blocking=True)
            model(transform(xb) if transform is not None else xb)
    finally:
        for m, mom in zip(bns, momenta, strict=True):
            m.momentum = mom
        model.train(was_training)
    return n
