r"""Local entropy and local energy at a point w: how much lower (wider) is the valley around w than w itself?

**Local entropy** (REFERENCE §1, coupling γ = 1/t, inverse temperature β; G_s the normalised Gaussian of
variance s)

.. math::  f_γ(w) = -β^{-1} \log \int G_{1/(βγ)}(w - y)\, e^{-β f(y)}\, dy
           = -β^{-1} \log E_{z \sim N(0, (βγ)^{-1} I)}\big[e^{-β f(w + z)}\big].

The reported number is Δ_γ(w) = f_γ(w) − f(w): for a quadratic valley f(w + z) = f(w) + ½ zᵀHz it is
(2β)⁻¹ Σ_i log(1 + h_i/γ) ≥ 0, small for a wide (flat) valley and large for a sharp one. Two estimators:

1. **Monte Carlo over the Gaussian kernel** (:func:`local_entropy_mc`): with Δ_i = f(w + z_i) − f(w),
   z_i ~ N(0, (βγ)⁻¹ I), Δ̂ = −β⁻¹ log( n⁻¹ Σ_i e^{−βΔ_i} ) (log-sum-exp); standard error by the delta method,
   SE = β⁻¹ · sd(e^{−βΔ}) / (√n · mean(e^{−βΔ})). (Biased upwards by O(1/n), by Jensen.) The estimate
   also reports the effective sample size ESS = (Σ r_i)² / Σ r_i² of the weights r_i = e^{−βΔ_i}: when a
   few samples dominate (ESS ≈ 1, a kernel much wider than the valley at this β) the error bar itself is
   unreliable — lower β or raise γ.
2. **Langevin thermodynamic integration** (:func:`local_entropy_langevin`): for λ ∈ [0, 1] let
   ρ_λ(y) ∝ exp(−λβ(f(y) − f(w)) − βγ|y − w|²/2). Then ρ_0 is the kernel, ρ_1 the local Gibbs measure that
   Entropy-SGD's inner loop samples, and d/dλ log Z_λ = −β E_{ρ_λ}[f(y) − f(w)], so

   .. math::  f_γ(w) − f(w) = \int_0^1 E_{ρ_λ}[f(y) − f(w)]\, dλ,

   computed by Gauss-Legendre quadrature in λ, each E_{ρ_λ} by the same overdamped Langevin dynamics as the
   Entropy-SGD inner loop (full-data gradients here),
   y ← y − η(λ∇f(y) + γ(y − w)) + √(2η/β) ξ, started from an exact sample of ρ_0 (so the flat directions
   start at equilibrium). The error bar combines the between-chain standard errors of the nodes; it does not
   include the O(η) bias of the unadjusted Langevin step nor the quadrature error in λ.

**Local energy** (Pittorino et al. 2021, multiplicative noise):
δE(σ) = E_z[f(w + σ z ⊙ w)] − f(w), z ~ N(0, I); ``mode="filter"`` scales the noise of each filter (a slice
along the first axis of a weight tensor) by the root-mean-square of that filter instead of weight by weight.
Either way the noise follows the rescalings w_f → c·w_f that leave a ReLU network unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from deeprelax.diagnostics.objective import Objective

__all__ = [
    "Estimate",
    "local_energy",
    "local_entropy_langevin",
    "local_entropy_mc",
    "local_entropy_quadratic",
]


@dataclass
class Estimate:
    """One point of a sweep: ``param`` (γ or σ), ``value`` ± ``stderr``, the method and the sample count."""

    param: float
    value: float
    stderr: float
    method: str
    n_samples: int
    ess: float | None = None  # Monte Carlo: effective sample size (Σr)²/Σr² of the weights r_i = e^{−βΔ_i}

    def to_dict(self) -> dict[str, float | str | int]:
        return asdict(self)


def _positive_list(name: str, values: Sequence[float] | float) -> list[float]:
    vals = [float(values)] if isinstance(values, (int, float)) else [float(v) for v in values]
    if not vals or not all(math.isfinite(v) and v > 0 for v in vals):
        raise ValueError(f"{name} must be positive finite numbers, got {values!r}")
    return vals


def _check_int(name: str, v: object, lo: int) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _check_beta(beta: float) -> float:
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be positive and finite, got {beta!r}")
    return float(beta)


def local_entropy_quadratic(
    h: Sequence[float] | np.ndarray,
    gamma: float,
    beta: float,
    offset: Sequence[float] | np.ndarray | None = None,
) -> float:
    """Closed form of Δ_γ(w) for the quadratic f(y) = c + ½ Σ_i h_i (y_i − a_i)² (eigenbasis, h_i > 0) at
    w = a + d (``offset`` d, default 0): Δ_γ = Σ_i [(2β)⁻¹ log(1 + h_i/γ) − ½ h_i² d_i² / (h_i + γ)]."""
    h = np.asarray(h, dtype=np.float64)
    d = np.zeros_like(h) if offset is None else np.asarray(offset, dtype=np.float64)
    return float(np.sum(np.log1p(h / gamma) / (2 * beta) - 0.5 * h**2 * d**2 / (h + gamma)))


def local_entropy_mc(
    obj: Objective,
    gammas: Sequence[float] | float,
    beta: float = 1.0,
    *,
    n_samples: int = 100,
    seed: int = 0,
    w: Tensor | None = None,
) -> list[Estimate]:
    """Δ_γ(w) = f_γ(w) − f(w) by Monte Carlo over the Gaussian kernel, for each γ (module docstring, 1.)."""
    gammas = _positive_list("gammas", gammas)
    beta = _check_beta(beta)
    n_samples = _check_int("n_samples", n_samples, 2)
    w = obj._w(w)
    f0 = obj.loss(w)
    gen = torch.Generator().manual_seed(int(seed))
    out = []
    for gamma in gammas:
        s = 1.0 / math.sqrt(beta * gamma)
        d = np.empty(n_samples)
        for i in range(n_samples):
            z = torch.randn(obj.p, generator=gen, dtype=torch.float64).to(obj.dtype).to(obj.device)
            d[i] = obj.loss(w + s * z) - f0
        e = -beta * d
        m = e.max()
        r = np.exp(e - m)
        value = -(m + math.log(r.mean())) / beta
        se = float(r.std(ddof=1) / (math.sqrt(n_samples) * r.mean()) / beta)
        ess = float(r.sum() ** 2 / np.sum(r**2))
        out.append(Estimate(gamma, float(value), se, "mc", n_samples, ess))
    return out


def local_entropy_langevin(
    obj: Objective,
    gammas: Sequence[float] | float,
    beta: float = 1.0,
    *,
    n_lambda: int = 6,
    n_steps: int = 100,
    burn_in: int = 20,
    n_chains: int = 2,
    step_size: float | None = None,
    curvature: float = 0.0,
    seed: int = 0,
    w: Tensor | None = None,
) -> list[Estimate]:
    """Δ_γ(w) by Langevin thermodynamic integration in λ (module docstring, 2.), for each γ.

    Args:
        n_lambda: Gauss-Legendre nodes in λ ∈ [0, 1].
        n_steps, burn_in: Langevin steps kept per chain and node, and discarded before them.
        n_chains: independent chains per node (≥ 2: the error bar is their spread).
        step_size: η; default ``0.1 / (γ + curvature)`` (pass the top Hessian eigenvalue as ``curvature``).
            The step must satisfy η·(γ + curvature) < 2 (the inner-loop stability line).
    """
    gammas = _positive_list("gammas", gammas)
    beta = _check_beta(beta)
    n_lambda = _check_int("n_lambda", n_lambda, 1)
    n_steps = _check_int("n_steps", n_steps, 1)
    burn_in = _check_int("burn_in", burn_in, 0)
    n_chains = _check_int("n_chains", n_chains, 2)
    if not (math.isfinite(curvature) and curvature >= 0):
        raise ValueError(f"curvature must be a finite number >= 0, got {curvature!r}")
    if step_size is not None and not (math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be positive, got {step_size!r}")
    w = obj._w(w).detach()
    f0 = obj.loss(w)
    nodes, qw = np.polynomial.legendre.leggauss(n_lambda)
    lams, qw = (nodes + 1) / 2, qw / 2
    gen = torch.Generator().manual_seed(int(seed))
    out = []
    for gamma in gammas:
        eta = step_size if step_size is not None else 0.1 / (gamma + curvature)
        if eta * (gamma + curvature) >= 2:
            raise ValueError(
                f"step_size={eta!r} is unstable: step_size·(γ + curvature) = "
                f"{eta * (gamma + curvature):.3g} >= 2"
            )
        s0 = 1.0 / math.sqrt(beta * gamma)
        noise = math.sqrt(2 * eta / beta)
        means, ses = [], []
        for lam in lams:
            chain_means = []
            for _ in range(n_chains):
                z0 = torch.randn(obj.p, generator=gen, dtype=torch.float64)
                y = w + s0 * z0.to(obj.dtype).to(obj.device)
                acc, kept = 0.0, 0
                for step in range(burn_in + n_steps):
                    fy, g = obj.loss_and_grad(y)
                    if step >= burn_in:
                        acc += fy - f0
                        kept += 1
                    xi = torch.randn(obj.p, generator=gen, dtype=torch.float64).to(obj.dtype).to(obj.device)
                    y = y - eta * (lam * g + gamma * (y - w)) + noise * xi
                    if not math.isfinite(fy):
                        raise RuntimeError(
                            f"Langevin chain diverged at γ={gamma:g}, λ={lam:.3g} "
                            f"(step_size {eta:g}); pass a smaller step_size"
                        )
                chain_means.append(acc / kept)
            cm = np.array(chain_means)
            means.append(cm.mean())
            ses.append(cm.std(ddof=1) / math.sqrt(n_chains))
        value = float(np.dot(qw, means))
        se = float(math.sqrt(np.dot(qw**2, np.square(ses))))
        out.append(Estimate(gamma, value, se, "langevin", n_lambda * n_chains * n_steps))
    return out


def _filter_rms(obj: Objective, w: Tensor) -> Tensor:
    """Each weight's filter RMS (1-D parameters: their own magnitude)."""
    parts = []
    for t in obj.unflatten(w).values():
        if t.dim() >= 2:
            rms = t.reshape(t.shape[0], -1).pow(2).mean(1).sqrt()
            parts.append(rms.view(-1, *([1] * (t.dim() - 1))).expand_as(t).reshape(-1))
        else:
            parts.append(t.abs().reshape(-1))
    return torch.cat(parts)


def local_energy(
    obj: Objective,
    sigmas: Sequence[float] | float,
    *,
    n_samples: int = 20,
    mode: str = "elementwise",
    seed: int = 0,
    w: Tensor | None = None,
) -> list[Estimate]:
    """δE(σ) = E_z[f(w + σ z ⊙ s)] − f(w) with s = |w| (``"elementwise"``, Pittorino et al.'s w + σ z ⊙ w up
    to
    the sign of z) or s = the filter RMS (``"filter"``), for each σ; error bar sd/√n."""
    sigmas = _positive_list("sigmas", sigmas)
    n_samples = _check_int("n_samples", n_samples, 2)
    if mode not in ("elementwise", "filter"):
        raise ValueError(f"mode must be 'elementwise' or 'filter', got {mode!r}")
    w = obj._w(w).detach()
    f0 = obj.loss(w)
    scale = w.abs() if mode == "elementwise" else _filter_rms(obj, w)
    gen = torch.Generator().manual_seed(int(seed))
    out = []
    for sigma in sigmas:
        d = np.empty(n_samples)
        for i in range(n_samples):
            z = torch.randn(obj.p, generator=gen, dtype=torch.float64).to(obj.dtype).to(obj.device)
            d[i] = obj.loss(w + sigma * z * scale) - f0
        out.append(
            Estimate(
                sigma,
                float(d.mean()),
                float(d.std(ddof=1) / math.sqrt(n_samples)),
                f"local-energy-{mode}",
                n_samples,
            )
        )
    return out
