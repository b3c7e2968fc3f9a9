r"""1-D Fokker-Planck equation with Scharfetter-Gummel (Chang-Cooper) fluxes and implicit Euler.

Solves, on a uniform grid of nodes ``x_0 < ... < x_{N-1}`` (each the centre of a cell of width ``h``) with
no-flux boundaries,

    rho_t = d/dx( (V'(x) - b(x, t)) rho ) + beta^{-1} rho_xx = d/dx F,

the density of ``dX = (-V'(X) + b(X, t)) dt + sqrt(2 beta^{-1}) dW`` (``b``: an optional extra, possibly
time-dependent drift, e.g. the control of controlled SGD). Finite volumes::

    d rho_i / dt = ( F_{i+1/2} - F_{i-1/2} ) / h,          F_{-1/2} = F_{N-1/2} = 0,
    F_{i+1/2} = (beta^{-1} / h) [ B(-z) rho_{i+1} - B(z) rho_i ],    z = beta h a_{i+1/2},
    a_{i+1/2} = (V_{i+1} - V_i) / h - b(x_{i+1/2}, t),               B(z) = z / (e^z - 1)  (Bernoulli).

This is the Scharfetter-Gummel flux (the exact flux of the two-point problem with ``a`` frozen on the face;
Chang-Cooper's weighting ``delta = 1/z - 1/(e^z - 1)`` gives the same expression). Consequences, exact up to
round-off and independent of ``h`` and ``dt``:

- mass ``h sum_i rho_i`` is conserved (the columns of the generator ``L`` sum to zero);
- implicit Euler ``(I - dt L) rho^{n+1} = rho^n`` keeps ``rho >= 0`` (``I - dt L`` is an M-matrix: positive
  diagonal, non-positive off-diagonals, column diagonally dominant, so its inverse is non-negative);
- with ``b = 0`` the discrete Gibbs density ``rho_i ∝ exp(-beta V_i)`` is a steady state: every face flux
  vanishes, because ``B(-z) e^{-z} = B(z)``.

The transpose ``L^T`` is the matching upwind discretisation of the backward Kolmogorov generator
``-(V' - b) w_x + beta^{-1} w_xx`` (no-flux becomes a reflecting boundary), so ``step_adjoint`` gives
backward equations whose discrete pairing with the forward density is exact:
``sum_i rho^N_i w^N_i = sum_i rho^0_i w^0_i``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import solve_banded
from scipy.special import exprel

from deeprelax.pde._grid import check_positive, sample_on_grid, uniform_grid

FloatArray = NDArray[np.float64]

__all__ = ["FokkerPlanck1D", "bernoulli"]


def bernoulli(z: ArrayLike) -> FloatArray:
    """B(z) = z / (e^z - 1), with B(0) = 1, evaluated without cancellation or overflow."""
    with np.errstate(over="ignore"):
        return 1.0 / exprel(np.asarray(z, dtype=float))


class FokkerPlanck1D:
    r"""rho_t = (  (V' - b) rho )_x + beta^{-1} rho_xx on a uniform grid, no-flux boundaries.

    Parameters
    ----------
    x: uniform grid of nodes (cell centres).
    V: potential, a vectorised callable or its samples on ``x``.
    beta: inverse temperature (diffusion coefficient ``beta^{-1}``).
    drift: optional extra drift ``b(x_faces, t)``, evaluated on the ``N - 1`` interior faces
        ``(x_i + x_{i+1})/2``; it must return an array of that length.
    """

    def __init__(
        self,
        x: ArrayLike,
        V: Callable[[FloatArray], ArrayLike] | ArrayLike,
        beta: float,
        drift: Callable[[FloatArray, float], ArrayLike] | None = None,
    ) -> None:
        self.x, self.h = uniform_grid("x", x)
        if self.x.size < 3:
            raise ValueError("x must have at least 3 nodes")
        self.V = sample_on_grid("V", V, self.x)
        self.beta = check_positive("beta", beta)
        if drift is not None and not callable(drift):
            raise ValueError("drift must be a callable b(x_faces, t) or None")
        self.drift = drift
        self.faces = 0.5 * (self.x[1:] + self.x[:-1])
        self._dV = np.diff(self.V) / self.h

    # ----------------------------------------------------------------------------------------------------
    def face_slopes(self, t: float) -> FloatArray:
        """``a_{i+1/2} = (V_{i+1} - V_i)/h - b(x_{i+1/2}, t)``: minus the drift velocity on each face."""
        if self.drift is None:
            return self._dV
        b = np.asarray(self.drift(self.faces, t), dtype=float)
        if b.shape != self.faces.shape:
            raise ValueError(f"drift must return shape {self.faces.shape}, got {b.shape}")
        return self._dV - b

    def _coefficients(self, t: float) -> tuple[FloatArray, FloatArray]:
        """Face coefficients ``(up, down)`` with ``F_{i+1/2} / h = up_i rho_{i+1} - down_i rho_i``."""
        z = self.beta * self.h * self.face_slopes(t)
        k = 1.0 / (self.beta * self.h**2)
        return k * bernoulli(-z), k * bernoulli(z)

    def generator(self, t: float = 0.0) -> FloatArray:
        """Dense generator ``L`` (``d rho/dt = L rho``); for inspection and tests (N x N)."""
        up, down = self._coefficients(t)
        n = self.x.size
        L = np.zeros((n, n))
        i = np.arange(n - 1)
        L[i, i + 1] += up
        L[i, i] -= down
        L[i + 1, i + 1] -= up
        L[i + 1, i] += down
        return L

    def _banded(self, t: float, dt: float, transpose: bool) -> FloatArray:
        """``I - dt L`` (or ``I - dt L^T``) in the (1, 1) banded storage of ``solve_banded``."""
        up, down = self._coefficients(t)
        n = self.x.size
        ab = np.zeros((3, n))
        ab[1] = 1.0
        ab[1, :-1] += dt * down
        ab[1, 1:] += dt * up
        if transpose:
            ab[0, 1:] = -dt * down  # (L^T)_{i, i+1} = L_{i+1, i}
            ab[2, :-1] = -dt * up
        else:
            ab[0, 1:] = -dt * up  # L_{i, i+1}
            ab[2, :-1] = -dt * down  # L_{i+1, i}
        return ab

    def step(self, rho: ArrayLike, t: float, dt: float) -> FloatArray:
        """One implicit Euler step ``(I - dt L(t + dt)) rho^{n+1} = rho^n`` from time ``t``."""
        dt = check_positive("dt", dt)
        return solve_banded((1, 1), self._banded(t + dt, dt, False), np.asarray(rho, dtype=float))

    def step_adjoint(self, w: ArrayLike, t: float, dt: float) -> FloatArray:
        """One backward step of ``-w_t = L^T w``: ``(I - dt L(t)^T) w(t - dt) = w(t)``."""
        dt = check_positive("dt", dt)
        return solve_banded((1, 1), self._banded(t, dt, True), np.asarray(w, dtype=float))

    def solve(
        self, rho0: ArrayLike, T: float, n_steps: int, save_every: int = 0
    ) -> tuple[FloatArray, FloatArray]:
        """March ``rho0`` to time ``T`` in ``n_steps`` implicit steps.

        Returns ``(times, densities)``; with ``save_every = k > 0`` every k-th step is kept (always the first
        and last), else only the initial and final densities.
        """
        rho = np.array(rho0, dtype=float)
        if rho.shape != self.x.shape or np.any(rho < 0) or not np.all(np.isfinite(rho)):
            raise ValueError(f"rho0 must be a finite non-negative array of shape {self.x.shape}")
        T = check_positive("T", T)
        if int(n_steps) < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps!r}")
        n_steps = int(n_steps)
        dt = T / n_steps
        times, out = [0.0], [rho.copy()]
        for n in range(n_steps):
            rho = self.step(rho, n * dt, dt)
            if (save_every > 0 and (n + 1) % save_every == 0) or n + 1 == n_steps:
                times.append((n + 1) * dt)
                out.append(rho.copy())
        return np.array(times), np.array(out)

    def mass(self, rho: ArrayLike) -> float:
        """``h sum_i rho_i``."""
        return float(self.h * np.sum(rho))

    def gibbs(self) -> FloatArray:
        """Discrete Gibbs density ``exp(-beta V_i) / (h sum_j exp(-beta V_j))`` (steady when b = 0)."""
        w = np.exp(-self.beta * (self.V - self.V.min()))
        return w / (self.h * w.sum())

    def delta(self, x0: float) -> FloatArray:
        """A unit-mass density concentrated at the node nearest ``x0`` (a discrete Dirac)."""
        rho = np.zeros_like(self.x)
        rho[int(np.argmin(np.abs(self.x - x0)))] = 1.0 / self.h
        return rho
