r"""The outer update: ``torch.optim.SGD``'s arithmetic with any direction d in place of the gradient.

.. math::

    d &\leftarrow d + wd\cdot x \\
    b &\leftarrow m\,b + (1 - \tau)\,d \qquad (b \leftarrow d \text{ on the first step}) \\
    d &\leftarrow d + m\,b \ \text{(Nesterov)}\quad\text{or}\quad b \\
    x &\leftarrow x - lr\cdot d

:func:`sgd_single` is the readable reference (one tensor at a time, as torch's ``_single_tensor_sgd``),
:func:`sgd_foreach` the fast path with ``torch._foreach_*`` kernels: same arithmetic, same order, so the two
agree to round-off and, with d = ∇f, both are bit-identical to ``torch.optim.SGD``. ``lr`` may be a
one-element tensor.
"""

from __future__ import annotations

import torch
from torch import Tensor


def momentum_single(
    d: Tensor, buf: Tensor | None, momentum: float, dampening: float, nesterov: bool
) -> tuple[Tensor, Tensor]:
    """b ← momentum·b + (1 − dampening)·d (b ← d the first time); returns (d + momentum·b or b, b)."""
    if buf is None:
        buf = d.detach().clone()
    else:
        buf.mul_(momentum).add_(d, alpha=1 - dampening)
    return (d.add(buf, alpha=momentum) if nesterov else buf), buf


def momentum_foreach(
    ds: list[Tensor], bufs: list[Tensor | None], momentum: float, dampening: float, nesterov: bool
) -> list[Tensor]:
    """:func:`momentum_single` over lists (``torch._foreach_*`` kernels); updates ``bufs`` in place."""
    if all(b is not None for b in bufs):
        torch._foreach_mul_(bufs, momentum)  # type: ignore[arg-type]
        torch._foreach_add_(bufs, ds, alpha=1 - dampening)  # type: ignore[arg-type]
    else:
        for i, d in enumerate(ds):
            _, bufs[i] = momentum_single(d, bufs[i], momentum, dampening, nesterov=False)
    return list(torch._foreach_add(ds, bufs, alpha=momentum)) if nesterov else list(bufs)  # type: ignore[arg-type]


def _descend_(x: Tensor, d: Tensor, lr: float | Tensor) -> None:
    if isinstance(lr, Tensor):
        x.sub_(d.mul(lr))
    else:
        x.add_(d, alpha=-lr)


def sgd_single(
    params: list[Tensor],
    directions: list[Tensor],
    bufs: list[Tensor | None],
    *,
    lr: float | Tensor,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
) -> None:
    """Reference: the SGD update of ``torch.optim.SGD`` (single-tensor), direction d in place of ∇f."""
    for i, (x, d) in enumerate(zip(params, directions)):
        if weight_decay != 0:
            d = d.add(x, alpha=weight_decay)
        if momentum != 0:
            d, bufs[i] = momentum_single(d, bufs[i], momentum, dampening, nesterov)
        _descend_(x, d, lr)


def sgd_foreach(
    params: list[Tensor],
    directions: list[Tensor],
    bufs: list[Tensor | None],
    *,
    lr: float | Tensor,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
) -> None:
    """Fast path of :func:`sgd_single` with ``torch._foreach_*`` kernels (same arithmetic, same order)."""
    if not params:
        return
    if weight_decay != 0:
        directions = list(torch._foreach_add(directions, params, alpha=weight_decay))
    if momentum != 0:
        directions = momentum_foreach(directions, bufs, momentum, dampening, nesterov)
    if isinstance(lr, Tensor):
        torch._foreach_sub_(params, torch._foreach_mul(directions, lr))
    else:
        torch._foreach_add_(params, directions, alpha=-lr)
