r"""Explicit monotone finite-difference solver for the (viscous) Hamilton-Jacobi equation of local entropy.

Solves, in 1-D or 2-D on a uniform grid,

    u_t = -1/2 |grad u|^2 + (beta^{-1}/2) Laplace(u),        u(x, 0) = f(x),

(``beta = inf``: the non-viscous equation ``u_t = -1/2 |grad u|^2``) with forward Euler in time::

    u^{n+1}_i = u^n_i - dt * Hhat(D^- u^n_i, D^+ u^n_i) + dt * (beta^{-1}/2) * sum_k D^+_k D^-_k u^n_i,

``D^-_k``, ``D^+_k`` the backward / forward differences along axis ``k``, and a monotone numerical Hamiltonian
for ``H(p) = 1/2 |p|^2``, summed over the axes:

- Godunov (exact Riemann solver for the convex ``H``): ``1/2 max( max(p^-, 0)^2, min(p^+, 0)^2 )``;
- Lax-Friedrichs: ``1/2 ((p^- + p^+)/2)^2 - (theta/2) (p^+ - p^-)`` with ``theta = max |p|`` (the largest
  ``|H'(p)|``, taken over the current grid).

The scheme is monotone, hence convergent to the viscosity solution (Crandall-Lions), under the CFL condition

    dt * ( sum_k L_k / h_k + beta^{-1} sum_k 1 / h_k^2 ) <= 1,        L_k = max |D^{+-}_k u^n|.

With ``dt=None`` each step takes ``cfl`` (default 0.9) times the largest such ``dt`` for the current ``u^n``
(the last step is shortened to land on ``T``); an explicit ``dt`` that violates the condition is a
``ValueError``. Boundary: ``"periodic"`` (exact for periodic data), or ``"extrapolate"`` (linear ghost values
``u_{-1} = 2 u_0 - u_1``: a natural outflow condition, inexact where information enters the domain).
Accuracy is first order in ``h`` (and in ``dt``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

__all__ = ["HJSolution", "cfl_time_step", "solve_hamilton_jacobi"]

SCHEMES = ("godunov", "lax-friedrichs")
BOUNDARIES = ("periodic", "extrapolate")


@dataclass
class HJSolution:
    """``u`` at time ``t`` (shape of the initial data), the number of steps, the largest step, and the largest
    CFL number ``dt * (sum L_k/h_k + beta^-1 sum 1/h_k^2)`` met (<= 1: every step was monotone)."""

    u: FloatArray
    t: float
    n_steps: int
    dt_max: float
    cfl_max: float


def _neighbours(u: FloatArray, axis: int, boundary: str) -> tuple[FloatArray, FloatArray]:
    """Values to the left and right of every node along ``axis``, with ghost values at the ends."""
    if boundary == "periodic":
        return np.roll(u, 1, axis=axis), np.roll(u, -1, axis=axis)
    left = np.roll(u, 1, axis=axis)
    right = np.roll(u, -1, axis=axis)
    first: list[slice | int] = [slice(None)] * u.ndim
    last: list[slice | int] = [slice(None)] * u.ndim
    second: list[slice | int] = [slice(None)] * u.ndim
    before_last: list[slice | int] = [slice(None)] * u.ndim
    first[axis], second[axis], last[axis], before_last[axis] = 0, 1, -1, -2
    left[tuple(first)] = 2.0 * u[tuple(first)] - u[tuple(second)]
    right[tuple(last)] = 2.0 * u[tuple(last)] - u[tuple(before_last)]
    return left, right


def _one_sided(u: FloatArray, h: tuple[float, ...], boundary: str) -> list[tuple[FloatArray, FloatArray]]:
    out = []
    for k, hk in enumerate(h):
        left, right = _neighbours(u, k, boundary)
        out.append(((u - left) / hk, (right - u) / hk))
    return out


def _lipschitz(diffs: list[tuple[FloatArray, FloatArray]]) -> list[float]:
    return [float(max(np.abs(pm).max(), np.abs(pp).max())) for pm, pp in diffs]


def cfl_time_step(lipschitz: list[float], h: tuple[float, ...], beta: float) -> float:
    """Largest monotone step ``1 / (sum_k L_k/h_k + beta^{-1} sum_k 1/h_k^2)`` (``inf`` if nothing moves)."""
    rate = sum(lk / hk for lk, hk in zip(lipschitz, h, strict=True)) + sum(1.0 / hk**2 for hk in h) / beta
    return math.inf if rate == 0.0 else 1.0 / rate


def _hamiltonian(diffs: list[tuple[FloatArray, FloatArray]], scheme: str) -> FloatArray:
    total = np.zeros_like(diffs[0][0])
    for pm, pp in diffs:
        if scheme == "godunov":
            total += 0.5 * np.maximum(np.maximum(pm, 0.0) ** 2, np.minimum(pp, 0.0) ** 2)
        else:
            theta = max(np.abs(pm).max(), np.abs(pp).max())
            total += 0.5 * (0.5 * (pm + pp)) ** 2 - 0.5 * theta * (pp - pm)
    return total


def solve_hamilton_jacobi(
    u0: ArrayLike,
    h: float | tuple[float, ...],
    T: float,
    *,
    beta: float = math.inf,
    scheme: str = "godunov",
    boundary: str = "periodic",
    dt: float | None = None,
    cfl: float = 0.9,
) -> HJSolution:
    r"""March u_t = -1/2 |grad u|^2 + (beta^{-1}/2) Laplace(u) from ``u0`` (1-D or 2-D samples) to time ``T``.

    Parameters
    ----------
    u0: initial data ``f`` on a uniform grid (1-D array, or 2-D array indexed ``[i1, i2]``).
    h: grid spacing (one number, or one per axis).
    T: final time, ``T >= 0``.
    beta: inverse temperature (``math.inf``: non-viscous equation).
    scheme: ``"godunov"`` or ``"lax-friedrichs"``.
    boundary: ``"periodic"`` or ``"extrapolate"``.
    dt: fixed time step (must satisfy the CFL condition of the module docstring at every step);
        ``None``: automatic, ``cfl`` times the largest monotone step.
    cfl: safety factor in ``(0, 1]`` for the automatic step.
    """
    u = np.array(u0, dtype=float)
    if u.ndim not in (1, 2) or min(u.shape) < 3:
        raise ValueError(f"u0 must be a 1-D or 2-D array with at least 3 points per axis, got {u.shape}")
    if not np.all(np.isfinite(u)):
        raise ValueError("u0 must be finite")
    hs = (
        (float(cast(float, h)),) * u.ndim
        if np.isscalar(h)
        else tuple(float(v) for v in cast("tuple[float, ...]", h))
    )
    if len(hs) != u.ndim or not all(np.isfinite(v) and v > 0 for v in hs):
        raise ValueError(f"h must be positive (one value or one per axis), got {h!r}")
    T = float(T)
    if not np.isfinite(T) or T < 0:
        raise ValueError(f"T must be a finite number >= 0, got {T!r}")
    beta = float(beta)
    if not beta > 0:
        raise ValueError(f"beta must be > 0 (math.inf for the non-viscous equation), got {beta!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    if not 0 < cfl <= 1:
        raise ValueError(f"cfl must be in (0, 1], got {cfl!r}")
    if dt is not None and not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number, got {dt!r}")
    nu = 0.0 if math.isinf(beta) else 0.5 / beta

    t = 0.0
    n = 0
    dt_max = 0.0
    cfl_max = 0.0
    while t < T * (1 - 1e-14):
        diffs = _one_sided(u, hs, boundary)
        stable = cfl_time_step(_lipschitz(diffs), hs, beta)
        if dt is None:
            step = cfl * stable
        else:
            if dt > stable * (1 + 1e-12):
                raise ValueError(
                    f"dt={dt:g} violates the CFL condition at t={t:g}: the largest monotone step is "
                    f"{stable:g} (dt * (sum L_k/h_k + beta^-1 sum 1/h_k^2) must be <= 1)"
                )
            step = dt
        step = min(step, T - t)
        lap = np.zeros_like(u)
        if nu > 0:
            for k, (pm, pp) in enumerate(diffs):
                lap += (pp - pm) / hs[k]
        u = u - step * _hamiltonian(diffs, scheme) + step * nu * lap
        t += step
        n += 1
        dt_max = max(dt_max, step)
        cfl_max = max(cfl_max, step / stable)
    return HJSolution(u=u, t=T, n_steps=n, dt_max=dt_max, cfl_max=cfl_max)
