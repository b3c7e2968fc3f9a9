r"""The clip stage: bound the relaxed direction of one outer step, once, by its global 2-norm.

.. math::  d \leftarrow d \cdot \min\Bigl(1,\ \frac{c}{\lVert d\rVert_2 + 10^{-6}}\Bigr),\qquad
           \lVert d\rVert_2 = \Bigl(\sum_{\text{tensors } i} \lVert d_i\rVert_2^2\Bigr)^{1/2}

over every tensor of the direction of every parameter group (one norm for the whole model, as
:func:`torch.nn.utils.clip_grad_norm_`, whose rule and ``1e-6`` this is, arithmetic included: with
``L = 0`` and no coupling, ``max_direction_norm=c`` *is* ``clip_grad_norm_(params, c)`` followed by
``torch.optim.SGD``'s step, bit for bit).

It runs after the couplings and before the outer update (see :mod:`._relaxation`), so it bounds exactly the
vector the outer (Nesterov-)SGD update consumes in place of a gradient: ∇f for ``L = 0``, x − μ_L for
Entropy-SGD / HEAT, p_L (which contains ``wd·x``) for HJ, ∇f + ρ_t (x − x̄) for Elastic-SGD and
(x − μ_L) + ρ_t (x − x̄) for Parle (per replica: each process clips its own direction). Weight decay (except
HJ's, which is folded into p) and momentum are applied after it, as ``torch.optim.SGD`` applies them after
``clip_grad_norm_``.

Why a stage of the step and not a closure hook: a closure only sees one minibatch gradient at a time, so
clipping there bounds each of the L + 1 gradients (the inner ones, for the Langevin optimizers) but not the
step; the relaxed direction exists only inside ``step``, between the estimator and the outer update. Why an
optimizer keyword (``max_direction_norm``) and not a coupling object: it is one number, saved with the
hyperparameters in ``state_dict`` and filled in by ``__setstate__`` for older checkpoints, and a coupling
is per-replica physics, not a safeguard.

:func:`clip_single` is the readable reference (``torch.linalg.vector_norm`` per tensor, one ``mul_`` per
tensor), :func:`clip_foreach` the fast path (``torch._foreach_norm`` / ``torch._foreach_mul_`` per device
and dtype, as ``clip_grad_norm_`` does): same arithmetic, same order.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: added to the norm before dividing, as ``torch.nn.utils.clip_grad_norm_`` does
EPS = 1e-6


def _total(norms: list[Tensor], device: torch.device) -> Tensor:
    return torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]), 2.0)


def clip_single(directions: list[Tensor], max_norm: float) -> Tensor:
    """Reference: scale ``directions`` in place by min(1, c / (‖d‖ + 1e-6)); returns ‖d‖ (before clipping).

    ‖d‖ is the 2-norm of all the tensors together; with no tensor it is 0 and nothing changes.
    """
    if not directions:
        return torch.zeros(())
    total = _total([torch.linalg.vector_norm(d, 2.0) for d in directions], directions[0].device)
    coef = torch.clamp(float(max_norm) / (total + EPS), max=1.0)
    for d in directions:
        d.mul_(coef.to(d.device))
    return total


def clip_foreach(directions: list[Tensor], max_norm: float) -> Tensor:
    """Fast path of :func:`clip_single` (``torch._foreach_*`` per (device, dtype); same arithmetic)."""
    if not directions:
        return torch.zeros(())
    buckets: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, d in enumerate(directions):
        buckets.setdefault((d.device, d.dtype), []).append(i)
    norms: list[Tensor] = [torch.zeros(())] * len(directions)
    for idx in buckets.values():
        for i, n in zip(idx, torch._foreach_norm([directions[i] for i in idx], 2.0)):
            norms[i] = n
    total = _total(norms, directions[0].device)
    coef = torch.clamp(float(max_norm) / (total + EPS), max=1.0)
    for (device, _), idx in buckets.items():
        torch._foreach_mul_([directions[i] for i in idx], coef.to(device))
    return total
