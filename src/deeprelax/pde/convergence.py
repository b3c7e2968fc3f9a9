r"""How fast the Fokker-Planck flow and the Langevin chain reach the Gibbs density μ ∝ e^{−βV} (1-D).

**Spectral gap.** The density of dX = −V'(X) dt + √(2β⁻¹) dW solves ρ_t = (V'ρ)_x + β⁻¹ρ_xx = 𝓛ρ. In the
variable g = ρ/μ the generator is A g = β⁻¹g'' − V'g', self-adjoint in L²(μ) with Dirichlet form
𝓔(g) = β⁻¹∫|g'|² dμ; its spectral gap

    λ₁ = inf_{g ≠ const} 𝓔(g) / Var_μ(g)          (1/λ₁ is the Poincaré constant of μ for the form 𝓔)

gives ‖ρ_t/μ − 1‖_{L²(μ)} ≤ e^{−λ₁t} ‖ρ₀/μ − 1‖_{L²(μ)}, the rate being attained for large t. Bounds:

* Bakry-Émery: V'' ≥ λ > 0 ⇒ λ₁ ≥ λ (and W₂(ρ_t, μ) ≤ e^{−λt} W₂(ρ₀, μ)); the OU case V = λy²/2 has
  λ_k = kλ exactly;
* the test function g = y: λ₁ ≤ β⁻¹ / Var_μ(y) (an upper bound, equality for the OU process);
* a double well: λ₁ ≈ k₁₂ + k₂₁, the sum of the two Kramers transition rates (for a symmetric well
  λ₁ ≈ 2/T, T the mean transition time of :func:`deeprelax.pde.metastability.mfpt_1d`).

The discrete generator is the Scharfetter-Gummel one of :class:`~deeprelax.pde.fokker_planck.FokkerPlanck1D`.
It satisfies detailed balance with the discrete Gibbs vector π (L_{i,i+1}π_{i+1} = L_{i+1,i}π_i), so
S = Π^{−1/2} L Π^{1/2} is a symmetric tridiagonal matrix with off-diagonal √(L_{i,i+1}L_{i+1,i})
(:func:`generator_spectrum` solves it with ``eigh_tridiagonal``). In the same coordinates
ψ = Π^{−1/2}(ρ − π) the discrete χ-distance is Euclidean: ‖ρ/π − 1‖²_{L²(π)} = h Σ(ρ_i − π_i)²/π_i = h|ψ|²,
so implicit Euler contracts it by at least 1/(1 + dt λ₁) per step — the discrete Poincaré inequality, exact.

**W₂ in 1-D** through quantile functions: W₂(ρ, σ)² = ∫₀¹ |F_ρ⁻¹(q) − F_σ⁻¹(q)|² dq, with F the CDF of the
cell-wise constant density (piecewise linear), integrated exactly between the merged breakpoints
(:func:`wasserstein2_1d`).

**The Langevin chain** of the Entropy-SGD inner loop, y ← y − η∇H(y) + √(2η/β) ξ (unadjusted Langevin, ULA),
is a Markov chain with the Gaussian kernel p(y, ·) = N(y − ηH'(y), 2η/β); :func:`ula_transition_matrix`
discretises it on a grid (row-stochastic matrix P), from which the law of y_k started at y₀ is e₀ᵀPᵏ,
the expected exponential running mean μ_k = αμ_{k−1} + (1 − α)y_k follows by linearity
(:func:`ula_expected_running_mean`), and the chain's own stationary law (which differs from μ by O(η):
the discretisation bias of ULA) is the left Perron vector of P (:func:`ula_stationary`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import eigh_tridiagonal

from deeprelax.pde._grid import check_positive, sample_on_grid, uniform_grid
from deeprelax.pde.fokker_planck import FokkerPlanck1D

FloatArray = NDArray[np.float64]

__all__ = [
    "Spectrum",
    "chi2_distance",
    "decay_rate",
    "generator_spectrum",
    "generator_spectrum_2d",
    "poincare_upper_bound",
    "ula_expected_running_mean",
    "ula_stationary",
    "ula_transition_matrix",
    "wasserstein2_1d",
]


@dataclass
class Spectrum:
    """The ``k`` slowest modes of the discrete Fokker-Planck generator.

    ``rates``: 0 = λ₀ ≤ λ₁ ≤ … (decay rates, −eigenvalues of L; ``gap`` = λ₁). ``modes[:, j]``: density-space
    eigenvectors v_j = Π^{1/2}ψ_j (L v_j = −λ_j v_j). ``pi``: the discrete Gibbs density (h Σ π = 1).
    """

    x: FloatArray
    h: float
    beta: float
    rates: FloatArray
    modes: FloatArray
    pi: FloatArray

    @property
    def gap(self) -> float:
        return float(self.rates[1])


def symmetrized_generator(fp: FokkerPlanck1D) -> tuple[FloatArray, FloatArray]:
    """Diagonal and off-diagonal of S = Π^{−1/2} L Π^{1/2} for a generator without extra drift.

    With the face coefficients ``L_{i,i+1} = up_i`` and ``L_{i+1,i} = down_i``: S_{ii} = L_{ii},
    S_{i,i+1} = √(up_i·down_i) = (β h²)⁻¹ (z/2)/sinh(z/2), z = β(V_{i+1} − V_i) (no overflow for any β).
    """
    if fp.drift is not None:
        raise ValueError("the spectrum is for the gradient (reversible) case: drift must be None")
    z = fp.beta * np.diff(fp.V)
    k = 1.0 / (fp.beta * fp.h**2)
    from scipy.special import exprel

    up, down = k / exprel(-z), k / exprel(z)  # k B(−z), k B(z)
    diag = np.zeros(fp.x.size)
    diag[:-1] -= down
    diag[1:] -= up
    half = 0.5 * np.abs(z)
    with np.errstate(over="ignore"):
        # (z/2)/sinh(z/2) = |z| e^{−|z|/2} / (1 − e^{−|z|}), 1 at z = 0
        off = k * np.where(half > 1e-8, 2 * half * np.exp(-half) / -np.expm1(-2 * half), 1.0)
    return diag, off


def generator_spectrum(
    x: ArrayLike, V: Callable[[FloatArray], ArrayLike] | ArrayLike, beta: float, k: int = 4
) -> Spectrum:
    """The ``k`` smallest decay rates (λ₀ = 0 < λ₁ = spectral gap < …) and modes of ρ_t = (V'ρ)_x + β⁻¹ρ_xx
    on the uniform grid ``x`` with no-flux ends (Scharfetter-Gummel), by a symmetric tridiagonal eigen-solve.
    """
    fp = FokkerPlanck1D(x, V, beta)
    if not 2 <= int(k) <= fp.x.size:
        raise ValueError(f"k must be in [2, {fp.x.size}], got {k!r}")
    diag, off = symmetrized_generator(fp)
    lam, psi = eigh_tridiagonal(-diag, -off, select="i", select_range=(0, int(k) - 1))
    pi = fp.gibbs()
    modes = np.sqrt(pi)[:, None] * psi
    return Spectrum(x=fp.x, h=fp.h, beta=fp.beta, rates=lam, modes=modes, pi=pi)


def generator_spectrum_2d(
    x: ArrayLike,
    y: ArrayLike,
    V: Callable[[FloatArray, FloatArray], ArrayLike] | ArrayLike,
    beta: float,
    k: int = 3,
) -> FloatArray:
    """The ``k`` smallest decay rates of the 2-D Scharfetter-Gummel Fokker-Planck generator on the tensor grid
    ``x × y`` (no-flux boundary), by a sparse shift-invert eigen-solve of its symmetrisation.

    Each face between neighbouring cells n, m carries the 1-D flux of the module docstring, so detailed
    balance holds face by face and S = Π^{−1/2} L Π^{1/2} is symmetric with S_{nm} = κ (z/2)/sinh(z/2) and
    S_{nn} = −Σ_m κ B(z_{nm}), z_{nm} = β(V_m − V_n), κ = (βh²)⁻¹ of the face's direction. For a separable
    V = V₁(x) + V₂(y) it is exactly the Kronecker sum of the two 1-D operators (rates add).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import eigsh
    from scipy.special import exprel

    xs, hx = uniform_grid("x", x)
    ys, hy = uniform_grid("y", y)
    v = sample_on_grid("V", V, xs, ys)
    beta = check_positive("beta", beta)
    n1, n2 = v.shape
    idx = np.arange(n1 * n2).reshape(n1, n2)
    rows, cols, vals = [], [], []
    diag = np.zeros(n1 * n2)
    for a, b, h in ((idx[:-1, :], idx[1:, :], hx), (idx[:, :-1], idx[:, 1:], hy)):
        a, b = a.ravel(), b.ravel()
        z = beta * (v.ravel()[b] - v.ravel()[a])
        kap = 1.0 / (beta * h**2)
        half = 0.5 * np.abs(z)
        with np.errstate(over="ignore"):
            off = kap * np.where(half > 1e-8, 2 * half * np.exp(-half) / -np.expm1(-2 * half), 1.0)
        np.subtract.at(diag, a, kap / exprel(z))  # out of a towards b: κ B(z)
        np.subtract.at(diag, b, kap / exprel(-z))  # out of b towards a: κ B(−z)
        rows += [a, b]
        cols += [b, a]
        vals += [off, off]
    r = np.concatenate([*rows, np.arange(n1 * n2)])
    c = np.concatenate([*cols, np.arange(n1 * n2)])
    S = coo_matrix((np.concatenate([*vals, diag]), (r, c)), shape=(n1 * n2, n1 * n2)).tocsc()
    # shift-invert about σ = −1: the eigenvalues of −S (all ≥ 0) nearest σ are the smallest ones
    lam = eigsh(-S, k=int(k), sigma=-1.0, which="LM", return_eigenvectors=False)
    return np.sort(lam)


def poincare_upper_bound(
    x: ArrayLike, V: Callable[[FloatArray], ArrayLike] | ArrayLike, beta: float
) -> float:
    """β⁻¹ / Var_μ(y): the Rayleigh quotient of g(y) = y, an upper bound on the spectral gap (= for OU)."""
    xs, h = uniform_grid("x", x)
    v = sample_on_grid("V", V, xs)
    beta = check_positive("beta", beta)
    w = np.exp(-beta * (v - v.min()))
    w /= w.sum()
    m = float(w @ xs)
    return float(1.0 / (beta * (w @ (xs - m) ** 2)))


def chi2_distance(rho: ArrayLike, pi: ArrayLike, h: float) -> FloatArray:
    """‖ρ/π − 1‖_{L²(π)} = (h Σ_i (ρ_i − π_i)² / π_i)^{1/2}; ``rho`` may be a stack ``(n_times, N)``."""
    r, p = np.asarray(rho, dtype=float), np.asarray(pi, dtype=float)
    if np.any(p <= 0):
        raise ValueError("pi must be positive on the grid")
    return np.sqrt(h * np.sum((r - p) ** 2 / p, axis=-1))


def wasserstein2_1d(x: ArrayLike, rho: ArrayLike, sigma: ArrayLike) -> float:
    """W₂ between two densities given on the cell centres ``x`` (uniform, cells of width h), each constant on
    its cell: W₂² = ∫₀¹ |F_ρ⁻¹(q) − F_σ⁻¹(q)|² dq with piecewise-linear quantile functions, integrated exactly
    (Simpson's rule is exact for the square of a linear function) over the merged breakpoints."""
    xs, h = uniform_grid("x", x)
    edges = np.concatenate([xs - h / 2, [xs[-1] + h / 2]])
    out = []
    for d in (rho, sigma):
        d = np.asarray(d, dtype=float)
        if d.shape != xs.shape or np.any(d < 0) or not np.all(np.isfinite(d)):
            raise ValueError(f"densities must be finite, non-negative, of shape {xs.shape}")
        F = np.concatenate([[0.0], np.cumsum(d)])
        if F[-1] <= 0:
            raise ValueError("a density has zero mass")
        out.append(F / F[-1])
    Fr, Fs = out
    q = np.union1d(Fr, Fs)

    def quantile(F: FloatArray) -> FloatArray:
        # keep the strictly increasing part of the CDF (cells of zero mass carry no quantile)
        keep = np.concatenate([[True], np.diff(F) > 0])
        return np.interp(q, F[keep], edges[keep])

    dq = quantile(Fr) - quantile(Fs)
    a, b = dq[:-1], dq[1:]
    return float(np.sqrt(np.sum(np.diff(q) * (a * a + a * b + b * b) / 3.0)))


def decay_rate(t: ArrayLike, d: ArrayLike, *, implicit_dt: float | None = None) -> float:
    """Exponential decay rate of ``d(t)`` from a least-squares fit of log d against t.

    With ``implicit_dt`` the fitted per-step factor r = e^{slope·dt} is read as implicit Euler's
    1/(1 + dt λ), and λ = (1/r − 1)/dt is returned (the continuous-time rate the scheme represents).
    """
    t, d = np.asarray(t, dtype=float), np.asarray(d, dtype=float)
    if t.shape != d.shape or t.size < 2 or np.any(d <= 0):
        raise ValueError("t and d must have the same shape (>= 2 points) and d must be positive")
    slope = float(np.polyfit(t, np.log(d), 1)[0])
    if implicit_dt is None:
        return -slope
    dt = check_positive("implicit_dt", implicit_dt)
    return float((np.exp(-slope * dt) - 1.0) / dt)


# ----------------------------------------------------------------------------------------------------
# the unadjusted Langevin chain of the inner loop


def ula_transition_matrix(
    grad_H: Callable[[FloatArray], ArrayLike], y: ArrayLike, beta: float, eta: float
) -> FloatArray:
    """Row-stochastic P_{ij} ∝ exp(−(y_j − y_i + ηH'(y_i))² / (4η/β)) on the uniform grid ``y``: the chain
    y ← y − ηH'(y) + √(2η/β)ξ with each Gaussian kernel restricted to the grid (the grid must cover the
    chain's range, and its spacing resolve the kernel width √(2η/β))."""
    ys, h = uniform_grid("y", y)
    beta, eta = check_positive("beta", beta), check_positive("eta", eta)
    s2 = 2.0 * eta / beta
    if h > 0.5 * np.sqrt(s2):
        raise ValueError(f"grid spacing {h:g} does not resolve the kernel width {np.sqrt(s2):g}")
    g = np.asarray(grad_H(ys), dtype=float)
    mean = ys - eta * g
    logk = -((ys[None, :] - mean[:, None]) ** 2) / (2 * s2)
    logk -= logk.max(axis=1, keepdims=True)
    P = np.exp(logk)
    return P / P.sum(axis=1, keepdims=True)


def ula_stationary(P: ArrayLike) -> FloatArray:
    """The stationary probability vector p = pP of a row-stochastic matrix (sum 1)."""
    P = np.asarray(P, dtype=float)
    n = P.shape[0]
    A = P.T - np.eye(n)
    A[-1] = 1.0  # replace one (redundant) balance equation by the normalisation
    b = np.zeros(n)
    b[-1] = 1.0
    p = np.linalg.solve(A, b)
    return np.maximum(p, 0.0) / np.maximum(p, 0.0).sum()


def ula_expected_running_mean(
    P: ArrayLike, y: ArrayLike, y0: float, alpha: float, L: int
) -> tuple[FloatArray, FloatArray]:
    """E y_k and E μ_k, k = 0 … L, for the chain started at the grid node nearest ``y0`` and the running mean
    μ₀ = y₀, μ_k = αμ_{k−1} + (1 − α)y_k (exact for the grid chain: p_k = p_{k−1}P, E y_k = p_k·y)."""
    P, ys = np.asarray(P, dtype=float), np.asarray(y, dtype=float)
    p = np.zeros(ys.size)
    i0 = int(np.argmin(np.abs(ys - y0)))
    p[i0] = 1.0
    ey, em = np.empty(L + 1), np.empty(L + 1)
    ey[0] = em[0] = ys[i0]
    for k in range(1, L + 1):
        p = p @ P
        ey[k] = p @ ys
        em[k] = alpha * em[k - 1] + (1 - alpha) * ey[k]
    return ey, em
