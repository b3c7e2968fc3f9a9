r"""Elastic-SGD (Zhang, Choromanska & LeCun 2015, synchronous form): SGD replicas on an elastic leash.

Replica a (one process each, over ``torch.distributed``; one process = world size 1) steps along

.. math::  d_a = ∇f(x_a) + ρ_t\,(x_a - \bar x),\qquad \bar x = \frac1n\sum_b x_b

with ``torch.optim.SGD``'s outer update (weight decay, (Nesterov) momentum). It is the ``L = 0`` case of
:class:`~deeprelax.optim.Parle` — no inner loop, one gradient per step (the Parle README's "L = 1, γ = 0"
form spends a second gradient for nothing). ρ is scoped like γ: ρ_t = min(ρ(1 + scoping)^t, rho_max).
With ρ = 0 the replicas are n independent ``torch.optim.SGD`` runs, bit for bit.

One all-reduce of the parameters per step, launched before the closure call, so it overlaps with it. At
construction one collective checks that every rank has the same hyperparameters and parameter shapes.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.optim.optimizer import ParamsT

from deeprelax.optim._relaxation import RelaxationOptimizer
from deeprelax.optim.elastic import ElasticCoupling


class ElasticSGD(RelaxationOptimizer):
    """Elastic-SGD: d = ∇f(x_a) + ρ_t (x_a − x̄), outer update as ``torch.optim.SGD``.

    Args:
        params: parameters or parameter groups.
        lr, momentum, nesterov, dampening, weight_decay: as ``torch.optim.SGD``.
        rho: elastic coupling ρ₀ (≥ 0); rho_max: optional cap of the scoped ρ_t.
        scoping: ρ_t = ρ₀(1 + scoping)^t, t = outer steps taken (default 0: constant ρ, as EASGD).
        foreach: use the ``torch._foreach`` fast path (default: on accelerators only).
        process_group: the replicas' process group (default: the default group; none initialised: one
            process, x̄ = x).
    """

    def __init__(self, params: ParamsT, lr: float | Tensor = 0.1, *, momentum: float = 0.9,
                 nesterov: bool = True, dampening: float = 0.0, weight_decay: float = 0.0,
                 rho: float = 1.0, rho_max: float | None = 10.0, scoping: float = 0.0,
                 foreach: bool | None = None, process_group: Any = None) -> None:
        hp = {k: v for k, v in locals().items() if k in ElasticSGD.hyperparameters}
        super().__init__(params, dict(hp, L=0))
        self._couplings.append(ElasticCoupling(process_group))
        self._check_replicas_agree(process_group)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        if group["L"] != 0:
            raise ValueError(f"ElasticSGD has no inner loop (L = 0); got L={group['L']!r} — use Parle")
