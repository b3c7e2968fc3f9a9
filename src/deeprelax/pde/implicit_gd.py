r"""Explicit vs implicit (proximal, backward-Euler) gradient descent.

Explicit (forward Euler for x' = -grad f):

    x_{k+1} = x_k - tau grad f(x_k),

stable only for ``tau < 2 / L`` (``L`` the largest curvature). Implicit / proximal point (backward Euler):

    x_{k+1} in argmin_x  f(x) + |x - x_k|^2 / (2 tau),     i.e.  (x_{k+1} - x_k)/tau = -grad f(x_{k+1}),

which by the Hopf-Lax formula is ``x_{k+1} = x_k - tau grad u(x_k, tau)`` with ``u`` the solution of
``u_t = -1/2 |grad u|^2``, ``u(., 0) = f`` (seed 000, "Implicit/proximal gradient descent"). Comparing the
objective at ``x_{k+1}`` with its value at ``x = x_k`` gives the descent guarantee, for any ``f``:

    f(x_{k+1}) <= f(x_k) - |x_{k+1} - x_k|^2 / (2 tau).

Seed 000 states it with ``1/tau`` instead of ``1/(2 tau)``; that stronger form follows from the optimality
condition and convexity (``f(x_k) >= f(x_{k+1}) + grad f(x_{k+1}) . (x_k - x_{k+1})``), so it holds for convex
``f`` and can fail where ``f`` is concave. :func:`descent_slack` reports both.

Here each implicit step minimises the proximal objective locally, starting from ``x_k`` (BFGS with the
exact gradient ``grad f(x) + (x - x_k)/tau``); the guarantee above holds for any such point that does not
increase the proximal objective from its value ``f(x_k)`` at the start, so it holds step by step whatever
the landscape.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize

FloatArray = NDArray[np.float64]

__all__ = ["descent_slack", "explicit_gd", "implicit_gd", "proximal_step"]


def _check(tau: float, n_steps: int) -> tuple[float, int]:
    tau = float(tau)
    if not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a positive number, got {tau!r}")
    if int(n_steps) != n_steps or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer, got {n_steps!r}")
    return tau, int(n_steps)


def explicit_gd(
    grad_f: Callable[[FloatArray], ArrayLike], x0: ArrayLike, tau: float, n_steps: int, blowup: float = 1e6
) -> FloatArray:
    """Iterates ``x_{k+1} = x_k - tau grad f(x_k)``, shape ``(n_steps + 1, d)``.

    Once ``|x_k| > blowup`` (divergence) the remaining iterates are ``nan``.
    """
    tau, n_steps = _check(tau, n_steps)
    x = np.atleast_1d(np.asarray(x0, dtype=float)).copy()
    out = np.full((n_steps + 1, x.size), np.nan)
    out[0] = x
    for k in range(n_steps):
        x = x - tau * np.asarray(grad_f(x), dtype=float)
        if not np.all(np.isfinite(x)) or np.linalg.norm(x) > blowup:
            break
        out[k + 1] = x
    return out


def proximal_step(
    f: Callable[[FloatArray], float],
    grad_f: Callable[[FloatArray], ArrayLike],
    x: ArrayLike,
    tau: float,
    tol: float = 1e-12,
) -> FloatArray:
    """A local minimiser of ``f(y) + |y - x|^2/(2 tau)`` reached by BFGS from ``y = x``."""
    xa = np.atleast_1d(np.asarray(x, dtype=float))

    def obj(y: FloatArray) -> tuple[float, FloatArray]:
        d = y - xa
        return float(f(y)) + float(d @ d) / (2 * tau), np.asarray(grad_f(y), dtype=float) + d / tau

    res = minimize(obj, xa.copy(), jac=True, method="BFGS", options={"gtol": tol, "maxiter": 500})
    y = np.asarray(res.x, dtype=float)
    # never accept a point worse than the start (keeps the descent guarantee even if BFGS stalls)
    return y if obj(y)[0] <= obj(xa)[0] else xa


def implicit_gd(
    f: Callable[[FloatArray], float],
    grad_f: Callable[[FloatArray], ArrayLike],
    x0: ArrayLike,
    tau: float,
    n_steps: int,
) -> FloatArray:
    """Iterates of the proximal point method ``x_{k+1} = prox_{tau f}(x_k)``, shape ``(n_steps + 1, d)``."""
    tau, n_steps = _check(tau, n_steps)
    x = np.atleast_1d(np.asarray(x0, dtype=float)).copy()
    out = np.empty((n_steps + 1, x.size))
    out[0] = x
    for k in range(n_steps):
        x = proximal_step(f, grad_f, x, tau)
        out[k + 1] = x
    return out


def descent_slack(
    f: Callable[[FloatArray], float], xs: ArrayLike, tau: float
) -> tuple[FloatArray, FloatArray]:
    """Per step ``f(x_k) - f(x_{k+1}) - |x_{k+1} - x_k|^2 / (2 tau)`` (guaranteed >= 0 for implicit steps) and
    the seed's stronger form with ``/ tau`` (guaranteed for convex ``f``). Steps with ``nan`` are dropped."""
    xa = np.asarray(xs, dtype=float)
    xa = xa[np.all(np.isfinite(xa), axis=1)]
    fx = np.array([float(f(x)) for x in xa])
    d2 = np.sum(np.diff(xa, axis=0) ** 2, axis=1)
    dec = fx[:-1] - fx[1:]
    return dec - d2 / (2 * tau), dec - d2 / tau
