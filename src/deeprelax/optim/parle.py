r"""Parle (Chaudhari et al. 2017): Entropy-SGD on every replica, coupled elastically to their average.

Replica a (one process each, over ``torch.distributed``) runs the Entropy-SGD inner loop around its anchor
x_a (L Langevin steps on fresh minibatches, exponential running mean μ_a; see
:mod:`deeprelax.optim.langevin`), then, after one all-reduce that forms the reference x̄ = (1/n) Σ_b x_b,
steps along

.. math::  d_a = (x_a - μ_a) + ρ_t\,(x_a - \bar x)

with ``torch.optim.SGD``'s outer update from the anchor. γ and ρ are both scoped,
γ_t = min(γ(1 + scoping)^t, gamma_max), ρ_t = min(ρ(1 + scoping)^t, rho_max). This is gradient descent,
replica by replica, on the seeds' JKO functional J(ρ) = ∫ f_γ ρ + (1/2γ)∬|x − y|²ρ(x)ρ(y).

Special cases (tested): world size 1 with ρ = 0 is :class:`EntropySGD` bit for bit; ``L = 0`` is
:class:`ElasticSGD`. Defaults follow ``pratikac/distributed-ensembles``' ``Parle`` (lr 0.1, L 25, γ 0.01
capped at 1, ρ 1 capped at 10, inner Nesterov 0.9 on the whole inner step); where the three public
implementations disagree, ``docs/optimizers.md`` has the table and the reasons for the choices.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.optim.optimizer import ParamsT

from deeprelax import distributed
from deeprelax.optim._validation import check_choice, check_unit_interval
from deeprelax.optim.elastic import ElasticCoupling
from deeprelax.optim.langevin import LangevinRelaxation


class Parle(LangevinRelaxation):
    """Parle: Entropy-SGD inner loop per replica, outer step along (x_a − μ_a) + ρ_t (x_a − x̄).

    Keyword arguments are those of :class:`deeprelax.optim.EntropySGD` plus:
        rho: elastic coupling ρ₀; rho_max: cap of the scoped ρ_t.
        reference: ``"anchors"`` (x̄ = mean of the replicas' x_b, communicated while the inner loop runs)
            or ``"means"`` (mean of their μ_b, as ``distributed-ensembles``).
        max_direction_norm: clip this replica's direction (x − μ_L) + ρ_t (x − x̄) to this global 2-norm
            once per step (``None``: off; see :mod:`deeprelax.optim.clipping`).
        process_group: the replicas' process group (default group; none initialised: one process).
        seed: seed of the noise generator; each replica draws its own stream from (seed, rank).
    """

    _object_options = ("seed", "process_group", "reference")

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 0.1,
        *,
        momentum: float = 0.9,
        nesterov: bool = True,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        L: int = 25,
        inner_lr: float = 0.1,
        gamma: float = 0.01,
        gamma_max: float | None = 1.0,
        rho: float = 1.0,
        rho_max: float | None = 10.0,
        scoping: float = 1e-3,
        noise: float = 1e-4,
        alpha: float = 0.75,
        inner_momentum: float = 0.9,
        inner_nesterov: bool = True,
        inner_momentum_on: str = "step",
        divergence_factor: float = 10.0,
        reference: str = "anchors",
        max_direction_norm: float | None = None,
        foreach: bool | None = None,
        seed: int | None = None,
        process_group: Any = None,
    ) -> None:
        check_choice("reference", reference, ("anchors", "means"))
        hp = {k: v for k, v in locals().items() if k in Parle.hyperparameters}
        rank, _ = distributed.rank_and_size(process_group)
        super().__init__(params, hp, seed=seed, replica=rank)
        self._keep_means = reference == "means"
        self._couplings.append(ElasticCoupling(process_group, reference))
        self._check_replicas_agree(process_group)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        check_unit_interval("alpha", group["alpha"])

    def _mean_weight(self, group: dict[str, Any], k: int) -> float:
        return group["alpha"]
