r"""Out-of-equilibrium SGD in 2-D: non-gradient forces, non-isotropic noise, loops (Chaudhari & Soatto).

Chaudhari & Soatto (REFERENCE §1) write continuous-time SGD as dx = −∇f dt + √(2β⁻¹D(x)) dW and decompose its
drift as

    −∇f = −D∇Φ + β⁻¹∇·D + j,       ∇·(j e^{−βΦ}) = 0,

where ρ_ss ∝ e^{−βΦ} is the stationary density. Only if D is isotropic (and j = 0) is Φ = f; otherwise SGD
samples a different potential and the non-gradient part j drives persistent loops (a non-zero probability
current). Two exactly analysable toys:

1. *A non-gradient force.* dx = F_λ(x) dt + √(2β⁻¹) dW with F_λ = −∇f + λJx, J the rotation by +90°, and the
   double well f(x) = ¼(x₁² − 1)² + ½x₂² (minima (±1, 0), saddle 0). The linearisation at the saddle,
   −∇²f(0) + λJ = [[1, −λ], [λ, −1]], has eigenvalues ±√(1 − λ²): for λ < 1 the origin stays a saddle and the
   attractors of F_λ are the displaced points ±(√(1 − λ²), λ√(1 − λ²)) (not the minima of f); for λ > 1 they
   disappear and trajectories loop around the saddle of f, which becomes the only attractor (a weak focus:
   ∇·F_λ = −3x₁² ≤ 0, so no closed orbit survives exactly, but the loops persist under noise). Since
   ∇·(λJx e^{−βf}) = −βλ e^{−βf} ∇f·Jx ≠ 0, the stationary density is not e^{−βf} for λ ≠ 0: Φ ≠ f.
2. *Non-isotropic noise with a gradient drift.* f = ½xᵀHx, constant D: the stationary density is Gaussian with
   covariance C solving the Lyapunov equation HC + CH = 2β⁻¹D, so Φ(x) = ½xᵀ(βC)⁻¹x, which equals f iff
   D = I. The remainder j(x) = −Hx + β⁻¹DC⁻¹x vanishes iff HD = DH; otherwise it is a rotation: the state is
   stationary, yet circulating.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import solve_continuous_lyapunov

J = np.array([[0.0, -1.0], [1.0, 0.0]])  # rotation by +90 degrees


def double_well(x: np.ndarray) -> np.ndarray:
    """f(x) = ¼(x₁² − 1)² + ½x₂² on points ``x[..., 2]``."""
    x = np.asarray(x, dtype=float)
    return 0.25 * (x[..., 0] ** 2 - 1) ** 2 + 0.5 * x[..., 1] ** 2


def grad_double_well(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return np.stack([x[..., 0] ** 3 - x[..., 0], x[..., 1]], axis=-1)


def rotational_force(lam: float, grad_f: Callable[[np.ndarray], np.ndarray] = grad_double_well) -> Callable:
    """F_λ(x) = −∇f(x) + λJx (a uniform rotation, curl 2λ, added to the gradient force)."""
    if not np.isfinite(lam):
        raise ValueError(f"lam must be finite, got {lam}")

    def F(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return -grad_f(x) + lam * x @ J.T

    return F


def rotational_fixed_points(lam: float) -> np.ndarray:
    """Zeros of F_λ = −∇f + λJx for the double well: the origin, and ±(√(1 − λ²), λ√(1 − λ²)) if |λ| < 1."""
    pts = [np.zeros(2)]
    if abs(lam) < 1:
        a = np.sqrt(1 - lam**2)
        pts += [np.array([a, lam * a]), np.array([-a, -lam * a])]
    return np.array(pts)


def saddle_eigenvalues(lam: float) -> np.ndarray:
    """Eigenvalues of the linearisation −∇²f(0) + λJ = [[1, −λ], [λ, −1]] at the saddle: ±√(1 − λ²)."""
    return np.linalg.eigvals(np.array([[1.0, -lam], [lam, -1.0]]))


def linear_stationary_covariance(H: ArrayLike, D: ArrayLike, beta: float) -> np.ndarray:
    """Stationary covariance C of dx = −Hx dt + √(2β⁻¹D) dW: the solution of HC + CHᵀ = 2β⁻¹D."""
    H = np.asarray(H, dtype=float)
    D = np.asarray(D, dtype=float)
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if np.any(np.linalg.eigvals(H).real <= 0):
        raise ValueError("H must be stable (eigenvalues with positive real part)")
    if np.any(np.linalg.eigvalsh((D + D.T) / 2) < 0):
        raise ValueError("D must be positive semi-definite")
    return solve_continuous_lyapunov(H, 2.0 / beta * D)


def linear_stationary_potential(H: ArrayLike, D: ArrayLike, beta: float) -> np.ndarray:
    """The matrix P with Φ(x) = ½xᵀPx, ρ_ss ∝ e^{−βΦ}: P = (βC)⁻¹. P = H iff D = I; P = HD⁻¹ if HD = DH."""
    return np.linalg.inv(beta * linear_stationary_covariance(H, D, beta))


def linear_current_matrix(H: ArrayLike, D: ArrayLike, beta: float) -> np.ndarray:
    """A with j(x) = Ax = −∇f + D∇Φ = (−H + DP)x, the non-gradient part of the drift; stationary probability
    current = j ρ_ss. A = 0 iff HD = DH (for symmetric H)."""
    H = np.asarray(H, dtype=float)
    return -H + np.asarray(D, dtype=float) @ linear_stationary_potential(H, D, beta)
