r"""Curvature of f at w through Hessian-vector products only (the p×p Hessian H = ∇²f(w) is never formed).

- **Top eigenvalues**: implicitly restarted Lanczos (ARPACK, ``scipy.sparse.linalg.eigsh`` with
  ``which="LA"``) on a ``LinearOperator`` whose ``matvec`` is one HVP. ``tol`` is ARPACK's relative accuracy
  of the Ritz values; each returned pair also comes with its residual r = ‖Hu − λu‖ (one extra HVP), which
  *certifies* it: a symmetric H has an eigenvalue within r of λ.
- **Trace** by Hutchinson: for Rademacher z (entries ±1, E zzᵀ = I), E[zᵀHz] = tr H; the estimate is the mean
  of n samples and its standard error s/√n (s the sample standard deviation).
- **Spectral density** by stochastic Lanczos quadrature (SLQ; Lin, Saad & Yang 2016; Ghorbani et al. 2019):
  for a unit probe v, m Lanczos steps from v (with full re-orthogonalisation) give the tridiagonal T_m with
  eigen-decomposition T_m = Σ_i θ_i q_i q_iᵀ; the Gauss quadrature

  .. math::  vᵀ g(H) v ≈ Σ_{i=1}^{m} τ_i^2 g(θ_i),\qquad τ_i = (q_i)_1,

  is exact for polynomials g of degree ≤ 2m − 1 (and for every g once m = p). Averaging over probes gives the
  spectral measure φ(λ) = p⁻¹ Σ_j δ(λ − λ_j); the plotted density convolves it with a Gaussian of width σ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.sparse.linalg import LinearOperator, eigsh

from deeprelax.diagnostics.objective import Batches, LossFn, Objective

__all__ = [
    "EigenResult",
    "SLQResult",
    "hessian_operator",
    "hutchinson_trace",
    "hutchinson_trace_of",
    "lanczos",
    "slq",
    "top_eigenpairs",
    "top_eigenvalues",
]


def hessian_operator(obj: Objective) -> LinearOperator:
    """H = ∇²f(w0) as a float64 ``LinearOperator`` (each ``matvec`` is one HVP)."""

    def matvec(v: NDArray[np.float64]) -> NDArray[np.float64]:
        t = torch.as_tensor(np.ascontiguousarray(v).reshape(-1), device=obj.device)
        return obj.hvp(t).double().cpu().numpy()

    return LinearOperator((obj.p, obj.p), matvec=matvec, dtype=np.float64)


@dataclass
class EigenResult:
    """Top eigenpairs: ``values`` descending, ``vectors`` (p, k) float64 unit columns, ``residuals``
    ‖Hu − λu‖, ``n_hvp`` HVPs spent (including the k residual checks)."""

    values: NDArray[np.float64]
    vectors: NDArray[np.float64]
    residuals: NDArray[np.float64]
    n_hvp: int


def _check_int(name: str, v: object, lo: int) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def top_eigenpairs(
    obj: Objective,
    k: int = 1,
    *,
    tol: float = 1e-3,
    maxiter: int | None = None,
    ncv: int | None = None,
    seed: int = 0,
) -> EigenResult:
    """The k algebraically largest eigenpairs of H by ARPACK Lanczos (see the module docstring).

    The start vector is drawn from ``numpy.random.default_rng(seed)``, so the result is deterministic.
    """
    k = _check_int("k", k, 1)
    if k >= obj.p:
        raise ValueError(f"k must be smaller than the number of parameters {obj.p}, got {k}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol!r}")
    v0 = np.random.default_rng(seed).standard_normal(obj.p)
    start = obj.n_hvp
    op = hessian_operator(obj)
    if ncv is None:
        ncv = min(obj.p, max(2 * k + 1, 10))
    vals, vecs = eigsh(op, k=k, which="LA", tol=tol, v0=v0, maxiter=maxiter, ncv=ncv)
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    res = np.array([np.linalg.norm(op.matvec(vecs[:, i]) - vals[i] * vecs[:, i]) for i in range(k)])
    return EigenResult(vals, vecs, res, obj.n_hvp - start)


def top_eigenvalues(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    k: int = 1,
    *,
    tol: float = 1e-3,
    maxiter: int | None = None,
    seed: int = 0,
) -> NDArray[np.float64]:
    """The k largest eigenvalues (descending) of the Hessian of the mean loss over ``batches`` at the model's
    weights (eval mode, BatchNorm frozen; see :class:`~deeprelax.diagnostics.Objective`)."""
    return top_eigenpairs(Objective(model, loss_fn, batches), k, tol=tol, maxiter=maxiter, seed=seed).values


def hutchinson_trace_of(obj: Objective, n_samples: int = 100, *, seed: int = 0) -> tuple[float, float]:
    """Hutchinson estimate of tr H and its standard error, from ``n_samples`` Rademacher probes."""
    n_samples = _check_int("n_samples", n_samples, 2)
    gen = torch.Generator().manual_seed(int(seed))
    vals = np.empty(n_samples)
    for i in range(n_samples):
        z = (torch.randint(0, 2, (obj.p,), generator=gen) * 2 - 1).to(obj.dtype).to(obj.device)
        vals[i] = float(torch.dot(z.double(), obj.hvp(z).double()))
    return float(vals.mean()), float(vals.std(ddof=1) / np.sqrt(n_samples))


def hutchinson_trace(
    model: torch.nn.Module, loss_fn: LossFn, batches: Batches, n_samples: int = 100, *, seed: int = 0
) -> tuple[float, float]:
    """(estimate, standard error) of the trace of the Hessian of the mean loss over ``batches``."""
    return hutchinson_trace_of(Objective(model, loss_fn, batches), n_samples, seed=seed)


def lanczos(obj: Objective, v: torch.Tensor, m: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """m steps of Lanczos on H from ``v`` with full re-orthogonalisation (float64); returns the diagonal α and
    off-diagonal β of T (stops early, with fewer steps, when an invariant subspace is found)."""
    m = _check_int("m", m, 1)
    m = min(m, obj.p)
    q = v.double() / v.double().norm()
    basis = [q]
    alphas: list[float] = []
    betas: list[float] = []
    for j in range(m):
        w = obj.hvp(q).double()
        a = float(torch.dot(w, q))
        alphas.append(a)
        Q = torch.stack(basis)
        w = w - Q.T @ (Q @ w)  # full re-orthogonalisation, twice ("twice is enough")
        w = w - Q.T @ (Q @ w)
        b = float(w.norm())
        if j == m - 1 or b < 1e-10 * max(1.0, abs(a)):
            break
        betas.append(b)
        q = w / b
        basis.append(q)
    return np.array(alphas), np.array(betas)


@dataclass
class SLQResult:
    """Stochastic Lanczos quadrature: per probe the Ritz values ``nodes[j]`` and Gauss weights ``weights[j]``
    (each probe's weights sum to 1); ``p`` the dimension."""

    nodes: list[NDArray[np.float64]]
    weights: list[NDArray[np.float64]]
    p: int

    def quadrature(self, g: object) -> NDArray[np.float64]:
        """Σ_i τ_i² g(θ_i) for every probe (≈ vᵀ g(H) v for the unit probe v)."""
        return np.array([np.sum(w * g(t)) for t, w in zip(self.nodes, self.weights)])  # type: ignore[operator]

    def trace(self) -> float:
        """tr H ≈ p · mean over probes of Σ τ² θ."""
        return float(self.p * self.quadrature(lambda t: t).mean())

    def density(self, grid: NDArray[np.float64], sigma: float) -> NDArray[np.float64]:
        """φ_σ(λ) = mean over probes of Σ_i τ_i² N(λ; θ_i, σ²): integrates to 1 over the real line."""
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma!r}")
        grid = np.asarray(grid, dtype=np.float64)
        out = np.zeros_like(grid)
        for t, w in zip(self.nodes, self.weights):
            out += (w[None, :] * np.exp(-0.5 * ((grid[:, None] - t[None, :]) / sigma) ** 2)).sum(1)
        return out / (len(self.nodes) * sigma * np.sqrt(2 * np.pi))


def slq(obj: Objective, n_probes: int = 4, m: int = 50, *, seed: int = 0) -> SLQResult:
    """Stochastic Lanczos quadrature with ``n_probes`` Rademacher probes and ``m`` Lanczos steps each."""
    from scipy.linalg import eigh_tridiagonal

    n_probes = _check_int("n_probes", n_probes, 1)
    m = _check_int("m", m, 1)
    gen = torch.Generator().manual_seed(int(seed))
    nodes, weights = [], []
    for _ in range(n_probes):
        v = (torch.randint(0, 2, (obj.p,), generator=gen) * 2 - 1).to(obj.dtype).to(obj.device)
        a, b = lanczos(obj, v, m)
        if len(a) == 1:
            theta, vecs = a.copy(), np.ones((1, 1))
        else:
            theta, vecs = eigh_tridiagonal(a, b)
        nodes.append(theta)
        weights.append(vecs[0] ** 2)
    return SLQResult(nodes, weights, obj.p)
