r"""Langevin MCMC estimate of the local Gibbs mean — the inner loop shared by Entropy-SGD and HEAT.

The local entropy (PDE time t = 1/γ, inverse temperature β)

.. math::  f_{1/γ}(x) = -β^{-1} \log \int \exp\big(-β f(y) - \tfrac{βγ}{2}|x - y|^2\big)\,dy

solves the viscous Hamilton-Jacobi equation u_t = -½|∇u|² + (β⁻¹/2)Δu, u(·,0) = f, and its gradient is

.. math::  ∇f_{1/γ}(x) = γ\,(x - ⟨y⟩),\qquad ρ(y; x) ∝ \exp\big(-β f(y) - \tfrac{βγ}{2}|x - y|^2\big),

⟨y⟩ the mean of the local Gibbs measure ρ. The inner loop samples ρ by Euler-Maruyama steps of the
overdamped Langevin dynamics of H(y) = f(y) + (γ/2)|x − y|², started at y₀ = x, each on a fresh minibatch:

.. math::

    d_k &= ∇f_{\rm mb}(y_k) + wd·y_k + γ\,(y_k - x) + \frac{ε}{\sqrt{η'/2}}\,ξ_k,\qquad ξ_k \sim N(0, I)\\
    y_{k+1} &= y_k - η'\,d_k\\
    μ_{k+1} &= w_{k+1}\,μ_k + (1 - w_{k+1})\,y_{k+1},\qquad μ_0 = x

(with optional inner momentum applied to the loss gradient ∇f_mb + wd·y only, as the authors' PyTorch port).

**Noise convention.** The step is y − η'∇H(y) − ε√(2η')ξ, i.e. Euler-Maruyama for
dy = −∇H dt + √(2β⁻¹) dW with dt = η' and **β⁻¹ = ε²** (``noise = ε``; the authors' "thermal noise" ε = 1e-4
samples an almost cold ρ, so ⟨y⟩ is close to the proximal point).

**Stability of the inner loop.** In every direction where f has curvature c ≥ 0 the step multiplies the
deviation from the local minimiser by 1 − η'(γ + wd + c), so the loop is unstable once

.. math::  η'\,(γ_t + wd) ≥ 2

(the coupling term overshoots the anchor and each inner step amplifies the previous minibatch's kick).
γ-scoping makes γ_t grow without bound, so a long run crosses this line: a γ, ``gamma_max`` or ``inner_lr``
that violates it at construction is a ``ValueError``; a scoped γ_t that reaches it during training gives a
``RuntimeWarning`` naming the outer step (cap it with ``gamma_max < 2/inner_lr − weight_decay``).

The averaging weights w_k distinguish the algorithms: Entropy-SGD keeps an exponential running mean
(w_k = α), HEAT the uniform average of y₀ = x, y₁, …, y_L (w_k = k/(k+1)). After the loop the parameters
return to the anchor x and the relaxed direction is ``x − μ_L`` — γ⁻¹ times the estimate of ∇f_{1/γ}(x)
(γ is absorbed into the outer learning rate, as in the authors' code). With ``L = 0`` the direction is the
anchor gradient ∇f(x), so the optimizer reduces to SGD.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor

from deeprelax.optim._relaxation import (
    Closure,
    Participants,
    RelaxationOptimizer,
    check_bool,
    check_nonneg,
    check_positive,
    check_unit_interval,
    momentum_foreach,
    momentum_single,
)


class LangevinRelaxation(RelaxationOptimizer):
    """Base of Entropy-SGD and HEAT: the Langevin inner loop; subclasses choose the averaging weights."""

    _warned_unstable = False  # set on the instance by the first stability warning

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        check_positive("inner_lr", group["inner_lr"])
        check_nonneg("noise", group["noise"])
        check_unit_interval("inner_momentum", group["inner_momentum"])
        check_bool("inner_nesterov", group["inner_nesterov"])
        if group["inner_nesterov"] and group["inner_momentum"] <= 0:
            raise ValueError("inner_nesterov=True requires inner_momentum > 0")
        if group["L"] > 0:
            lr, wd = group["inner_lr"], group["weight_decay"]
            for name in ("gamma", "gamma_max"):
                gamma = group[name]
                if gamma is not None and lr * (gamma + wd) >= 2:
                    raise ValueError(
                        f"{name}={gamma!r} makes the Langevin inner loop unstable: inner_lr·({name} + "
                        f"weight_decay) = {lr * (gamma + wd):.4g} >= 2 (each inner step would multiply the "
                        f"distance to the anchor by |1 − inner_lr·(γ + wd)| > 1); use {name} < "
                        f"{2 / lr - wd:.4g} or a smaller inner_lr"
                    )

    def _check_stability(self, parts: list[Participants]) -> None:
        """Warn (once per optimizer) when a scoped γ_t crosses the stability line inner_lr·(γ_t + wd) = 2."""
        if self._warned_unstable:
            return
        for pt in parts:
            group = pt.group
            gamma, lr, wd = self.gamma_at(group), group["inner_lr"], group["weight_decay"]
            if pt.params and lr * (gamma + wd) >= 2:
                self._warned_unstable = True
                warnings.warn(
                    f"{type(self).__name__}: the Langevin inner loop is unstable from outer step "
                    f"{group['outer_steps']} on: the scoped coupling γ_t = γ·(1 + scoping)^t = {gamma:.4g} "
                    f"gives inner_lr·(γ_t + weight_decay) = {lr * (gamma + wd):.4g} >= 2, so every inner "
                    f"step amplifies the distance to the anchor. Cap the scoping with gamma_max < "
                    f"{2 / lr - wd:.4g} (e.g. gamma_max = 1/inner_lr).",
                    RuntimeWarning,
                    stacklevel=4,
                )
                return

    def _mean_weight(self, group: dict[str, Any], k: int) -> float:
        """Weight w_k of the previous mean in μ_k = w_k μ_{k−1} + (1 − w_k) y_k, k = 1..L."""
        raise NotImplementedError

    def _relaxed_directions(self, parts: list[Participants], closure: Closure, L: int) -> list[list[Tensor]]:
        if L == 0:
            return [list(pt.grads) for pt in parts]
        self._check_stability(parts)
        anchors = [[x.detach().clone() for x in pt.params] for pt in parts]
        means = [[x.detach().clone() for x in pt.params] for pt in parts]
        inner_bufs: list[list[Tensor | None]] = [[None] * len(pt.params) for pt in parts]
        for k in range(1, L + 1):
            self._call(closure)
            for pt, x0, mu, bufs in zip(parts, anchors, means, inner_bufs):
                fast = self._use_foreach(pt.group, pt.params)
                step = self._langevin_foreach if fast else self._langevin_single
                step(pt.group, pt.params, x0, mu, bufs, self._mean_weight(pt.group, k))
        directions = []
        for pt, x0, mu in zip(parts, anchors, means):
            for x, a in zip(pt.params, x0):
                x.copy_(a)
            directions.append([torch.sub(a, m) for a, m in zip(x0, mu)])  # x − μ_L
        return directions

    def _langevin_single(self, group: dict[str, Any], params: list[Tensor], anchors: list[Tensor],
                         means: list[Tensor], bufs: list[Tensor | None], w: float) -> None:
        """Reference: one Langevin step y ← y − η'd and μ ← wμ + (1 − w)y for every parameter."""
        gamma, wd, lr = self.gamma_at(group), group["weight_decay"], group["inner_lr"]
        m, scale = group["inner_momentum"], group["noise"] / math.sqrt(lr / 2)
        for i, (y, x, mu) in enumerate(zip(params, anchors, means)):
            g = y.grad if y.grad is not None else torch.zeros_like(y)
            if wd != 0:
                g = g.add(y, alpha=wd)
            if m != 0:
                g, bufs[i] = momentum_single(g, bufs[i], m, 0.0, group["inner_nesterov"])
            d = torch.add(g, torch.sub(y, x), alpha=gamma)  # ∇f + wd·y + γ(y − x)
            if scale != 0:
                d.add_(torch.randn_like(y), alpha=scale)  # + ε/√(η'/2)·ξ
            y.add_(d, alpha=-lr)
            mu.mul_(w).add_(y, alpha=1 - w)

    def _langevin_foreach(self, group: dict[str, Any], params: list[Tensor], anchors: list[Tensor],
                          means: list[Tensor], bufs: list[Tensor | None], w: float) -> None:
        """Fast path of :meth:`_langevin_single` (same arithmetic, same order, same random draws)."""
        if not params:
            return
        gamma, wd, lr = self.gamma_at(group), group["weight_decay"], group["inner_lr"]
        m, scale = group["inner_momentum"], group["noise"] / math.sqrt(lr / 2)
        g = [y.grad if y.grad is not None else torch.zeros_like(y) for y in params]
        if wd != 0:
            g = torch._foreach_add(g, params, alpha=wd)
        if m != 0:
            g = momentum_foreach(g, bufs, m, 0.0, group["inner_nesterov"])
        d = torch._foreach_add(g, torch._foreach_sub(params, anchors), alpha=gamma)
        if scale != 0:
            torch._foreach_add_(d, [torch.randn_like(y) for y in params], alpha=scale)
        torch._foreach_add_(params, d, alpha=-lr)
        torch._foreach_mul_(means, w)
        torch._foreach_add_(means, params, alpha=1 - w)
