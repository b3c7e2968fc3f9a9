r"""Langevin estimate of the local Gibbs mean — the estimator of Entropy-SGD, HEAT and Parle.

The local entropy (PDE time t = 1/γ, inverse temperature β)

.. math::  f_{1/γ}(x) = -β^{-1} \log \int \exp\big(-β f(y) - \tfrac{βγ}{2}|x - y|^2\big)\,dy

solves the viscous Hamilton-Jacobi equation u_t = -½|∇u|² + (β⁻¹/2)Δu, u(·,0) = f, and its gradient is

.. math::  ∇f_{1/γ}(x) = γ\,(x - ⟨y⟩),\qquad ρ(y; x) ∝ \exp\big(-β f(y) - \tfrac{βγ}{2}|x - y|^2\big).

The estimator samples ρ by Euler-Maruyama steps of the overdamped Langevin dynamics of
H(y) = f(y) + (γ/2)|x − y|², started at y₀ = x, each on a fresh minibatch:

.. math::

    d_k &= ∇f_{\rm mb}(y_k) + wd·y_k + γ_t\,(y_k - x) + \frac{ε}{\sqrt{η'/2}}\,ξ_k,\qquad ξ_k \sim N(0, I)\\
    y_{k+1} &= y_k - η'\,d_k\\
    μ_{k+1} &= w_{k+1}\,μ_k + (1 - w_{k+1})\,y_{k+1},\qquad μ_0 = x

and returns the direction ``x − μ_L`` (γ⁻¹ times the estimate of ∇f_{1/γ}(x); γ is absorbed into the outer
learning rate, as in the authors' code). The averaging weights w_k distinguish the algorithms: exponential
(w_k = α: Entropy-SGD, Parle) or uniform over y₀ … y_L (w_k = k/(k+1): HEAT).

**Inner momentum** (``inner_momentum`` m > 0, reset every outer step), two conventions of the authors' code:
``inner_momentum_on="gradient"`` applies it to the loss gradient ∇f_mb + wd·y only (Lua / PyTorch port);
``"step"`` applies it to the whole inner step d_k, coupling and noise included (``pratikac/hamilton-jacobi``).

**Noise convention.** The step is y − η'∇H(y) − ε√(2η')ξ: Euler-Maruyama for dy = −∇H dt + √(2β⁻¹) dW with
dt = η' and **β⁻¹ = ε²** (``noise = ε``). ξ comes from the optimizer's own generator.

**Stability.** Along a direction of curvature c ≥ 0 (c = γ_t + wd from the coupling and weight decay alone)
the noise-free recursion contracts iff η'c < ``stability_limit`` — 2 without momentum, 2(1 + m) for heavy
ball, 2(1 + m)/(1 + 2m) for Nesterov (momentum on the whole step). A γ, ``gamma_max`` or ``inner_lr`` past
that line is a ``ValueError`` at construction, a scoped γ_t that reaches it a ``RuntimeWarning`` naming the
outer step. Curvature of f itself can still make the chain diverge: the estimator watches the distance of
the iterate from the anchor, raises :class:`~deeprelax.optim.DivergenceError` (anchor restored) when it is
not finite, and warns when it grew more than ``divergence_factor``·L times its first step.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor

from deeprelax.optim._relaxation import (
    Closure,
    DivergenceError,
    Participants,
    RelaxationOptimizer,
    _AmpScaling,
)
from deeprelax.optim._validation import (
    check_at_least,
    check_bool,
    check_choice,
    check_nonneg,
    check_positive,
    check_unit_interval,
)
from deeprelax.optim.outer import momentum_foreach, momentum_single
from deeprelax.optim.scoping import scoped


def stability_limit(momentum: float, nesterov: bool, on: str = "gradient") -> float:
    """The largest η'c for which the noise-free inner step contracts along curvature c (see module doc).

    With ``on="gradient"`` the coupling and weight-decay terms are outside the momentum (the line is 2).
    """
    if momentum == 0 or on == "gradient":
        return 2.0
    return 2 * (1 + momentum) / (1 + 2 * momentum) if nesterov else 2 * (1 + momentum)


# ---------------------------------------------------------------------------------------- the kernels
def langevin_single(
    params: list[Tensor],
    anchors: list[Tensor],
    means: list[Tensor],
    bufs: list[Tensor | None],
    *,
    gamma: float,
    weight_decay: float,
    inner_lr: float,
    noise: float,
    momentum: float,
    nesterov: bool,
    on: str,
    w: float,
    generator: torch.Generator | None,
) -> None:
    """Reference: one Langevin step y ← y − η'd and μ ← wμ + (1 − w)y for every parameter."""
    scale = noise / math.sqrt(inner_lr / 2)
    for i, (y, x, mu) in enumerate(zip(params, anchors, means)):
        g = y.grad if y.grad is not None else torch.zeros_like(y)
        if weight_decay != 0:
            g = g.add(y, alpha=weight_decay)
        if momentum != 0 and on == "gradient":
            g, bufs[i] = momentum_single(g, bufs[i], momentum, 0.0, nesterov)
        d = torch.add(g, torch.sub(y, x), alpha=gamma)  # ∇f + wd·y + γ(y − x)
        if scale != 0:
            xi = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
            d.add_(xi, alpha=scale)  # + ε/√(η'/2)·ξ
        if momentum != 0 and on == "step":
            d, bufs[i] = momentum_single(d, bufs[i], momentum, 0.0, nesterov)
        y.add_(d, alpha=-inner_lr)
        mu.mul_(w).add_(y, alpha=1 - w)


def langevin_foreach(
    params: list[Tensor],
    anchors: list[Tensor],
    means: list[Tensor],
    bufs: list[Tensor | None],
    *,
    gamma: float,
    weight_decay: float,
    inner_lr: float,
    noise: float,
    momentum: float,
    nesterov: bool,
    on: str,
    w: float,
    generator: torch.Generator | None,
) -> None:
    """Fast path of :func:`langevin_single` (same arithmetic, same order, same random draws)."""
    if not params:
        return
    scale = noise / math.sqrt(inner_lr / 2)
    g = [y.grad if y.grad is not None else torch.zeros_like(y) for y in params]
    if weight_decay != 0:
        g = list(torch._foreach_add(g, params, alpha=weight_decay))
    if momentum != 0 and on == "gradient":
        g = momentum_foreach(g, bufs, momentum, 0.0, nesterov)
    d = list(torch._foreach_add(g, torch._foreach_sub(params, anchors), alpha=gamma))
    if scale != 0:
        xi = [torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device) for y in params]
        torch._foreach_add_(d, xi, alpha=scale)
    if momentum != 0 and on == "step":
        d = momentum_foreach(d, bufs, momentum, 0.0, nesterov)
    torch._foreach_add_(params, d, alpha=-inner_lr)
    torch._foreach_mul_(means, w)
    torch._foreach_add_(means, params, alpha=1 - w)


def _sq_distance(params: list[Tensor], anchors: list[Tensor]) -> Tensor:
    """|y − x|² summed over the tensors (a diagnostic: native precision, one pass per tensor)."""
    if not params:
        return torch.zeros((), dtype=torch.float64)
    norms = torch._foreach_norm(torch._foreach_sub(params, anchors))
    return torch.stack([n.double().cpu() for n in norms]).pow(2).sum()


# ------------------------------------------------------------------------------------- the estimator
class LangevinRelaxation(RelaxationOptimizer):
    """Base of Entropy-SGD, HEAT and Parle: the Langevin estimator; subclasses choose the weights w_k."""

    _diagnostic_defaults = {"warned_unstable": False, "warned_divergence": False, "inner_divergences": 0}

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        check_positive("inner_lr", group["inner_lr"])
        check_nonneg("noise", group["noise"])
        check_unit_interval("inner_momentum", group["inner_momentum"])
        check_bool("inner_nesterov", group["inner_nesterov"])
        check_choice("inner_momentum_on", group["inner_momentum_on"], ("gradient", "step"))
        check_at_least("divergence_factor", group["divergence_factor"], 1.0)
        if group["inner_nesterov"] and group["inner_momentum"] <= 0:
            raise ValueError("inner_nesterov=True requires inner_momentum > 0")
        if group["L"] > 0:
            lr, wd = group["inner_lr"], group["weight_decay"]
            limit = stability_limit(
                group["inner_momentum"], group["inner_nesterov"], group["inner_momentum_on"]
            )
            for name in ("gamma", "gamma_max"):
                gamma = group.get(name)
                if gamma is not None and lr * (gamma + wd) >= limit:
                    raise ValueError(
                        f"{name}={gamma!r} makes the Langevin inner loop unstable: inner_lr·({name} + "
                        f"weight_decay) = {lr * (gamma + wd):.4g} >= {limit:.4g} (each inner step would "
                        f"amplify the distance to the anchor); use {name} < {limit / lr - wd:.4g} or a "
                        f"smaller inner_lr"
                    )

    def _check_stability(self, parts: list[Participants]) -> None:
        """Warn (once per optimizer) when a scoped γ_t crosses the stability line."""
        if self._diagnostics["warned_unstable"]:
            return
        for pt in parts:
            group = pt.group
            gamma, lr, wd = scoped(group, "gamma"), group["inner_lr"], group["weight_decay"]
            limit = stability_limit(
                group["inner_momentum"], group["inner_nesterov"], group["inner_momentum_on"]
            )
            if pt.params and lr * (gamma + wd) >= limit:
                self._diagnostics["warned_unstable"] = True
                warnings.warn(
                    f"{type(self).__name__}: the Langevin inner loop is unstable from outer step "
                    f"{group['outer_steps']} on: the scoped coupling γ_t = γ·(1 + scoping)^t = {gamma:.4g} "
                    f"gives inner_lr·(γ_t + weight_decay) = {lr * (gamma + wd):.4g} >= {limit:.4g}, so every "
                    f"inner step amplifies the distance to the anchor. Cap the scoping with gamma_max < "
                    f"{limit / lr - wd:.4g} (e.g. gamma_max = 1/inner_lr).",
                    RuntimeWarning,
                    stacklevel=4,
                )
                return

    def _mean_weight(self, group: dict[str, Any], k: int) -> float:
        """Weight w_k of the previous mean in μ_k = w_k μ_{k−1} + (1 − w_k) y_k, k = 1..L."""
        raise NotImplementedError

    def _estimate(
        self,
        parts: list[Participants],
        anchors: list[list[Tensor]] | None,
        closure: Closure,
        L: int,
        amp: _AmpScaling | None,
    ) -> list[list[Tensor]]:
        if L == 0 or anchors is None:
            return [list(pt.grads) for pt in parts]
        self._check_stability(parts)
        means = [[x.detach().clone() for x in pt.params] for pt in parts]
        bufs: list[list[Tensor | None]] = [[None] * len(pt.params) for pt in parts]
        first = torch.zeros((), dtype=torch.float64)
        for k in range(1, L + 1):
            self._inner_call(closure, amp)
            for pt, x0, mu, b in zip(parts, anchors, means, bufs):
                group = pt.group
                kernel = langevin_foreach if self._use_foreach(group, pt.params) else langevin_single
                gen = self.noise_generator(pt.params[0].device) if pt.params and group["noise"] else None
                kernel(
                    pt.params,
                    x0,
                    mu,
                    b,
                    gamma=scoped(group, "gamma"),
                    weight_decay=group["weight_decay"],
                    inner_lr=group["inner_lr"],
                    noise=group["noise"],
                    momentum=group["inner_momentum"],
                    nesterov=group["inner_nesterov"],
                    on=group["inner_momentum_on"],
                    w=self._mean_weight(group, k),
                    generator=gen,
                )
            if k == 1:
                first = sum(
                    (_sq_distance(pt.params, x0) for pt, x0 in zip(parts, anchors)),
                    torch.zeros((), dtype=torch.float64),
                )
        last = sum(
            (_sq_distance(pt.params, x0) for pt, x0 in zip(parts, anchors)),
            torch.zeros((), dtype=torch.float64),
        )
        self._check_divergence(math.sqrt(float(first)), math.sqrt(float(last)), L)
        self._restore(parts, anchors)
        if getattr(self, "_keep_means", False):  # the elastic coupling's reference="means" reads them
            self._last_means = {id(p): m for pt, mu in zip(parts, means) for p, m in zip(pt.params, mu)}
        return [[torch.sub(a, m) for a, m in zip(x0, mu)] for x0, mu in zip(anchors, means)]  # x − μ_L

    def _check_divergence(self, first: float, last: float, L: int) -> None:
        t = self.param_groups[0]["outer_steps"]
        if not (math.isfinite(first) and math.isfinite(last)):
            self._diagnostics["inner_divergences"] += 1
            raise DivergenceError(
                f"{type(self).__name__}: the Langevin inner loop produced non-finite values at outer step "
                f"{t} "
                f"(a NaN/inf loss or gradient, or a diverging chain); the parameters were restored to the "
                f"anchor. Lower inner_lr, check the data, or cap gamma_max."
            )
        factor = min(g["divergence_factor"] for g in self.param_groups)
        if first > 0 and last > factor * L * first:
            self._diagnostics["inner_divergences"] += 1
            if not self._diagnostics["warned_divergence"]:
                self._diagnostics["warned_divergence"] = True
                warnings.warn(
                    f"{type(self).__name__}: the Langevin inner iterate moved {last:.3g} from the anchor at "
                    f"outer step {t}, more than divergence_factor·L = {factor * L:.3g} times its first step "
                    f"({first:.3g}): the inner loop is diverging (curvature × inner_lr past its stability "
                    f"line). Lower inner_lr or raise gamma.",
                    RuntimeWarning,
                    stacklevel=4,
                )
