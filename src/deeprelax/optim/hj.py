r"""HJ (Deep Relaxation, Table 1): gradient descent on the Moreau envelope via the proximal fixed point.

In the non-viscous limit β → ∞ the local entropy becomes the Hopf-Lax formula / Moreau envelope, the solution
of u_t = −½|∇u|², u(·, 0) = f, at time t = 1/γ:

    u(x, t) = min_y f(y) + |x − y|² / (2t),        ∇u(x, t) = p*,   p* = ∇f(x − t p*)

(x − t p* is the proximal point: one implicit / backward-Euler gradient step). HJ estimates p* by the damped
fixed-point iteration, one fresh minibatch per iteration (weight decay folded into the gradient)::

    p₀ = ∇f(x) + wd·x
    p_{k+1} = δ·p_k + (1 − δ)·(∇f(w_k) + wd·w_k),   w_k = x − p_k / γ,   k = 0 … L−1   (δ = ``damping``)
    x ← x − lr · p_L                                  (momentum / Nesterov as torch.optim.SGD)

**Contraction.** Near a point where ∇²f has eigenvalues h, the map has slopes δ − (1 − δ)h/γ; it contracts iff
−γ < h < γ(1 + δ)/(1 − δ) (= 7γ for δ = 0.75). Outside that range p_k grows geometrically: the optimizer then
warns (``RuntimeWarning``) when the fixed-point residual |∇f(w_k) − p_k| grows over the loop by more than
``divergence_factor`` — persistently, i.e. on an exponential average over outer steps, because with
minibatches a single step's growth is noise (one hard example in the last batch) — or is not finite; increase
γ (shorter PDE time) or the damping.

**Negative slope and odd L.** Where h > γδ/(1 − δ) the slope s is negative: p_k oscillates around p* while
the residual shrinks. On a quadratic, p_L / p₀ = 1/(1 + r) + s^L r/(1 + r) with r = h/γ, so for odd L and
|s|^L r > 1 the truncated iterate points *uphill* (⟨p_L, p₀⟩ < 0) although the loop "converges". The
optimizer detects ⟨p_L, p₀⟩ < 0 and warns when it happens persistently (exponential average over outer
steps above ½); use an even L, more damping or a larger γ.

One outer step costs L + 1 closure calls; with ``L = 0`` HJ is exactly SGD with Nesterov momentum.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT

from deeprelax.optim._relaxation import (
    Closure,
    DivergenceError,
    Participants,
    RelaxationOptimizer,
    _AmpScaling,
)
from deeprelax.optim._validation import check_at_least, check_positive, check_unit_interval
from deeprelax.optim.scoping import scoped


def fixed_point_single(
    params: list[Tensor], ps: list[Tensor], *, weight_decay: float, damping: float, track: bool
) -> list[Tensor]:
    """Reference: p ← δ p + (1 − δ)(∇f(w) + wd·w) for every parameter (params hold w).

    Returns the squared residuals |∇f(w) + wd·w − p|² per tensor when ``track``.
    """
    sq = []
    for w, p in zip(params, ps):
        g = w.grad if w.grad is not None else torch.zeros_like(w)
        if weight_decay != 0:
            g = g.add(w, alpha=weight_decay)
        if track:
            sq.append(torch.sub(g, p).pow(2).sum().to(torch.float64))
        p.mul_(damping).add_(g, alpha=1 - damping)
    return sq


def fixed_point_foreach(
    params: list[Tensor], ps: list[Tensor], *, weight_decay: float, damping: float, track: bool
) -> list[Tensor]:
    """Fast path of :func:`fixed_point_single` (same arithmetic, same order)."""
    if not params:
        return []
    g = [w.grad if w.grad is not None else torch.zeros_like(w) for w in params]
    if weight_decay != 0:
        g = list(torch._foreach_add(g, params, alpha=weight_decay))
    sq = []
    if track:
        sq = [n.to(torch.float64).pow(2) for n in torch._foreach_norm(torch._foreach_sub(g, ps))]
    torch._foreach_mul_(ps, damping)
    torch._foreach_add_(ps, g, alpha=1 - damping)
    return sq


class HJ(RelaxationOptimizer):
    """HJ: proximal (Hopf-Lax) fixed point p = ∇f(x − p/γ) by damped iteration, outer step along p.

    Args:
        params: parameters or parameter groups (each group may override any keyword below except ``L``).
        lr: outer learning rate (p estimates a gradient, so SGD-like values: 0.1).
        momentum, nesterov, dampening, weight_decay: outer update, as ``torch.optim.SGD`` (weight decay is
            folded into p, so it is not added a second time).
        L: fixed-point iterations per outer step (closure calls per step = L + 1).
        gamma: coupling γ > 0; the proximal time is t = 1/γ.
        scoping, gamma_max: γ_t = min(γ(1 + scoping)^t, gamma_max), t = outer steps taken.
        damping: δ in p ← δ p + (1 − δ) ∇f(x − p/γ).
        divergence_factor: warn when the residual grows by more than this factor (> 1) within one step,
            persistently.
        max_direction_norm: clip the outer direction p_L (weight decay included) to this global 2-norm
            once per step (``None``: off; see :mod:`deeprelax.optim.clipping`).
        foreach: use the ``torch._foreach`` fast path (default: on accelerators only).

    After each step, ``last_residuals`` holds (first, last) fixed-point residual norms of the step and
    ``residual_growth`` the exponential average over steps of log(last / first) that the warning tests;
    both are saved in ``state_dict``.
    """

    _fold_weight_decay = True
    _diagnostic_defaults = {
        "last_residuals": None,
        "residual_growth": None,
        "uphill": 0.0,
        "warned_uphill": False,
    }

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 0.1,
        *,
        momentum: float = 0.9,
        nesterov: bool = True,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        L: int = 20,
        gamma: float = 10.0,
        scoping: float = 1e-3,
        gamma_max: float | None = None,
        damping: float = 0.75,
        divergence_factor: float = 10.0,
        max_direction_norm: float | None = None,
        foreach: bool | None = None,
    ) -> None:
        hp = {k: v for k, v in locals().items() if k in HJ.hyperparameters}
        super().__init__(params, hp)

    @property
    def last_residuals(self) -> tuple[float, float] | None:
        r = self._diagnostics["last_residuals"]
        return None if r is None else (float(r[0]), float(r[1]))

    @property
    def residual_growth(self) -> float | None:
        return self._diagnostics["residual_growth"]

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        check_positive("gamma", group["gamma"])
        check_unit_interval("damping", group["damping"])
        check_at_least("divergence_factor", group["divergence_factor"], 1.0)

    def _estimate(
        self,
        parts: list[Participants],
        anchors: list[list[Tensor]] | None,
        closure: Closure,
        L: int,
        amp: _AmpScaling | None,
    ) -> list[list[Tensor]]:
        ps = []
        for pt in parts:  # p₀ = ∇f(x) + wd·x
            wd = pt.group["weight_decay"]
            ps.append([g.add(x, alpha=wd) if wd != 0 else g.clone() for x, g in zip(pt.params, pt.grads)])
        if L == 0 or anchors is None:
            return ps
        p0 = [[p.clone() for p in group_ps] for group_ps in ps]
        residual_sq = []
        for k in range(L):
            for pt, x0, p in zip(parts, anchors, ps):  # move to w_k = x − p_k/γ
                inv_gamma = 1.0 / scoped(pt.group, "gamma")
                for w, a, pi in zip(pt.params, x0, p):
                    torch.add(a, pi, alpha=-inv_gamma, out=w)
            self._inner_call(closure, amp)
            track = k == 0 or k == L - 1
            sq = []
            for pt, p in zip(parts, ps):
                kernel = fixed_point_foreach if self._use_foreach(pt.group, pt.params) else fixed_point_single
                sq.extend(
                    kernel(
                        pt.params,
                        p,
                        weight_decay=pt.group["weight_decay"],
                        damping=pt.group["damping"],
                        track=track,
                    )
                )
            if track:
                residual_sq.append(torch.stack(sq).sum() if sq else torch.zeros((), dtype=torch.float64))
        self._restore(parts, anchors)
        self._check_contraction(residual_sq, L)
        self._check_uphill(ps, p0)
        return ps

    def _check_contraction(self, residual_sq: list[Tensor], L: int) -> None:
        """Warn when the residual grows geometrically, persistently.

        One step's growth g = log(r_L / r_1) is unreliable with minibatches (a hard example in the last batch
        makes r_L jump), so the test is on its exponential average over outer steps,
        G ← 0.9·G + 0.1·g (G started at the first step's g): warn if G > log(divergence_factor) or if the
        residual is not finite. A deterministic divergence (g ≈ (L − 1)·log ρ every step) warns at once.
        """
        first, last = (math.sqrt(float(r)) for r in (residual_sq[0], residual_sq[-1]))
        self._diagnostics["last_residuals"] = (first, last)
        if not (math.isfinite(first) and math.isfinite(last)):  # p_k is inf/NaN: no step can be taken
            t = self.param_groups[0]["outer_steps"]
            raise DivergenceError(
                f"HJ: the fixed-point iteration p = ∇f(x − p/γ) produced non-finite values at outer step {t} "
                f"(a NaN/inf loss or gradient, or a proximal time 1/γ so long that x − p/γ overflows; "
                f"γ = {self.gammas}); the parameters were restored to the anchor. Increase gamma, lower lr, "
                f"or check the data."
            )
        if L < 2 or not math.isfinite(last):
            growth = 0.0 if math.isfinite(last) else math.inf
        elif first == 0.0:
            growth = 0.0 if last == 0.0 else math.inf
        else:
            growth = math.log(max(last, 1e-300) / first)
        previous = self._diagnostics["residual_growth"]
        previous = growth if previous is None else previous
        self._diagnostics["residual_growth"] = G = 0.9 * previous + 0.1 * growth
        factor = min(g["divergence_factor"] for g in self.param_groups)
        if not math.isfinite(last) or G > math.log(factor):
            t = self.param_groups[0]["outer_steps"]
            warnings.warn(
                f"HJ fixed point p = ∇f(x − p/γ) is not contracting at outer step {t}: the residual grew "
                f"from {first:.3g} to {last:.3g} in {L} iterations (by a factor "
                f"{math.exp(min(G, 700.0)):.3g} on average over recent steps; γ = {self.gammas}). "
                f"It contracts only where the Hessian "
                f"eigenvalues lie in (−γ, γ(1+δ)/(1−δ)); increase gamma (shorter proximal time 1/γ) or "
                f"damping δ.",
                RuntimeWarning,
                stacklevel=4,
            )

    def _check_uphill(self, ps: list[list[Tensor]], p0: list[list[Tensor]]) -> None:
        """Warn (once) when ⟨p_L, p₀⟩ < 0 persistently: the truncated iterate points uphill."""
        dot = sum(
            (
                torch.dot(a.reshape(-1), b.reshape(-1)).double().cpu()
                for gp, g0 in zip(ps, p0)
                for a, b in zip(gp, g0)
            ),
            torch.zeros((), dtype=torch.float64),
        )
        indicator = 1.0 if float(dot) < 0 else 0.0
        self._diagnostics["uphill"] = U = 0.9 * self._diagnostics["uphill"] + 0.1 * indicator
        if U > 0.5 and not self._diagnostics["warned_uphill"]:
            self._diagnostics["warned_uphill"] = True
            t = self.param_groups[0]["outer_steps"]
            warnings.warn(
                f"HJ: the truncated fixed-point iterate p_L points against the anchor gradient "
                f"(⟨p_L, p₀⟩ < 0) in most recent steps (outer step {t}): the fixed-point map has a negative "
                f"slope (Hessian eigenvalues above γδ/(1 − δ)) and with odd L the oscillation ends uphill. "
                f"Use an even L, more damping or a larger gamma.",
                RuntimeWarning,
                stacklevel=4,
            )
