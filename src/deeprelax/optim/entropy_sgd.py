r"""Entropy-SGD (Chaudhari et al., ICLR 2017; Deep Relaxation §4): gradient descent on the local entropy.

Outer step on the anchor x (γ absorbed into ``lr``; momentum, Nesterov and weight decay exactly as
``torch.optim.SGD``)::

    x ← x − lr · (x − μ_L)            with μ_L ≈ ⟨y⟩,  ρ(y; x) ∝ exp(−β f(y) − βγ|x − y|²/2)

i.e. a step along γ⁻¹ ∇f_{1/γ}(x), f_{1/γ} the local entropy, which solves the viscous Hamilton-Jacobi PDE
u_t = −½|∇u|² + (β⁻¹/2)Δu up to time t = 1/γ (see :mod:`deeprelax.optim.langevin` for the inner loop and the
noise convention β⁻¹ = ε²). The running mean of the Langevin iterates y_k is exponential:

    μ ← α·μ + (1 − α)·y_k,      α = 0.75 by default.

This is the authors' code, which weights the *newest* sample by 1 − α = 0.25; the paper's Algorithm 1 writes
μ ← (1 − α)μ + α y with α = 0.75 — the same rule with the weights named the other way round.

Coupling scoping: γ_t = γ·(1 + scoping)^t, t = outer steps taken (optionally capped at ``gamma_max``). Unlike
the authors' public PyTorch port (whose step counter is never incremented, so scoping does nothing), t is
counted and saved in ``state_dict``.

One outer step costs L + 1 closure calls (paper: "effective epochs" = epochs × L). With ``L = 0`` it is
exactly SGD with Nesterov momentum.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.optim.optimizer import ParamsT

from deeprelax.optim._validation import check_unit_interval
from deeprelax.optim.langevin import LangevinRelaxation


class EntropySGD(LangevinRelaxation):
    """Entropy-SGD: Langevin inner loop with an exponential running mean, outer step along ``x − μ``.

    Args:
        params: parameters or parameter groups (each group may override any keyword below except ``L``).
        lr: outer learning rate (the authors use ≈ 1 for the first epochs, since γ is absorbed into it); a
            float or a one-element tensor.
        momentum, nesterov, dampening, weight_decay: outer update, as ``torch.optim.SGD``.
        L: inner Langevin steps per outer step (closure calls per step = L + 1).
        inner_lr: inner step size η'.
        gamma: coupling γ (PDE time 1/γ; larger γ = less smoothing). Default: the paper's MNIST 1e-4.
        scoping: γ grows as γ(1 + scoping)^t with the outer step count t.
        gamma_max: optional cap on the scoped γ.
        noise: thermal noise ε of the Langevin loop; inverse temperature β = 1/ε².
        alpha: running-mean weight, μ ← α μ + (1 − α) y.
        inner_momentum, inner_nesterov: optional momentum in the inner loop, reset every outer step.
        inner_momentum_on: ``"gradient"`` (on ∇f + wd·y only, the Lua / PyTorch-port convention) or
            ``"step"`` (on the whole inner step, the ``hamilton-jacobi`` code's convention).
        divergence_factor: warn when the inner iterate ends farther than ``divergence_factor·L`` times its
            first step from the anchor.
        max_direction_norm: clip the outer direction x − μ_L to this global 2-norm once per step
            (``None``: off; see :mod:`deeprelax.optim.clipping`).
        foreach: use the ``torch._foreach`` fast path (default: on accelerators only).
        seed: seed of the optimizer's own noise generator (default: drawn from the global RNG on first use).
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
        alpha: float = 0.75,
        inner_momentum: float = 0.0,
        inner_nesterov: bool = False,
        inner_momentum_on: str = "gradient",
        divergence_factor: float = 10.0,
        max_direction_norm: float | None = None,
        foreach: bool | None = None,
        seed: int | None = None,
    ) -> None:
        hp = {k: v for k, v in locals().items() if k in EntropySGD.hyperparameters}
        super().__init__(params, hp, seed=seed)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        check_unit_interval("alpha", group["alpha"])

    def _mean_weight(self, group: dict[str, Any], k: int) -> float:
        return group["alpha"]
