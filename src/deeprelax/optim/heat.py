r"""HEAT (Deep Relaxation, Table 1): Entropy-SGD's Langevin loop with the *uniform* average of the iterates.

The local entropy f_{1/γ} solves the viscous Hamilton-Jacobi equation; by Hopf-Cole, v = e^{−βu} solves the
heat equation v_t = (β⁻¹/2)Δv, so ∇f_{1/γ}(x) = γ(x − ⟨y⟩) is the gradient of the heat-smoothed loss. HEAT
estimates the Gibbs mean ⟨y⟩ by the plain ergodic average of y₀ = x and the L Langevin iterates::

    μ_L = (1 / (L + 1)) · Σ_{k=0..L} y_k        (running form: μ_k = (k μ_{k−1} + y_k)/(k + 1))
    x   ← x − lr · (x − μ_L)                    (momentum / weight decay as torch.optim.SGD)

Everything else — fresh minibatch per inner step, noise ε with β⁻¹ = ε², γ-scoping, L + 1 closure calls per
step, ``L = 0`` ≡ SGD — is as :class:`deeprelax.optim.EntropySGD`.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.optim.optimizer import ParamsT

from deeprelax.optim.langevin import LangevinRelaxation


class Heat(LangevinRelaxation):
    """HEAT: Langevin inner loop, uniform average of the iterates, outer step along ``x − μ``.

    Keyword arguments are those of :class:`deeprelax.optim.EntropySGD` without ``alpha``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1.0,
        *,
        momentum: float = 0.9,
        nesterov: bool = True,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        L: int = 20,
        inner_lr: float = 0.1,
        gamma: float = 1e-4,
        scoping: float = 1e-3,
        gamma_max: float | None = None,
        noise: float = 1e-4,
        inner_momentum: float = 0.0,
        inner_nesterov: bool = False,
        inner_momentum_on: str = "gradient",
        divergence_factor: float = 10.0,
        max_direction_norm: float | None = None,
        foreach: bool | None = None,
        seed: int | None = None,
    ) -> None:
        hp = {k: v for k, v in locals().items() if k in Heat.hyperparameters}
        super().__init__(params, hp, seed=seed)

    def _mean_weight(self, group: dict[str, Any], k: int) -> float:
        return k / (k + 1)
