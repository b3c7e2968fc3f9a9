r"""Controlled SGD (CSGD) in 1-D: backward HJB for the value, forward Fokker-Planck, Euler-Maruyama paths.

Convention (REFERENCE §1; chosen and derived here). SGD and its controlled version are

    SGD:   dX = -f'(X) ds + sigma dW,
    CSGD:  dX = (-f'(X) + alpha(X, s)) ds + sigma dW,
    cost   C(alpha) = E[ V(X_T) + 1/2 int_0^T alpha^2 ds ].

The value ``u(x, s) = min_alpha E[ V(X_T) + 1/2 int_s^T alpha^2 | X_s = x ]`` solves the HJB equation

    -u_s = min_a [ (-f' + a) u_x + a^2/2 ] + (sigma^2/2) u_xx = -f' u_x - 1/2 u_x^2 + (sigma^2/2) u_xx,
    u(x, T) = V(x),

whose minimiser is the optimal feedback ``alpha = -u_x``. (Seed 000 writes ``dx = -grad f ds - alpha ds +
beta^{-1/2} dW`` with ``alpha = +grad u``: the same control with the opposite sign of ``alpha``, and
``sigma^2 = beta^{-1}``. Its forward equation ``rho_t = -div((grad u + grad f) rho) + Laplace(rho)`` has
dropped signs and the factor ``sigma^2/2``; the correct one, used here, is
``rho_s = ( (f' + u_x) rho )_x + (sigma^2/2) rho_xx``.)

Hopf-Cole linearisation. With ``w = exp(-u / sigma^2)``: ``u_x = -sigma^2 w_x / w`` and
``u_xx = -sigma^2 w_xx / w + sigma^2 (w_x / w)^2``; substituting, the quadratic terms cancel and

    -w_s = -f' w_x + (sigma^2/2) w_xx,        w(x, T) = exp(-V(x) / sigma^2),

the backward Kolmogorov equation of *uncontrolled* SGD. Hence (Feynman-Kac)

    u(x_0, 0) = -sigma^2 log E_sgd[ exp(-V(X_T) / sigma^2) | X_0 = x_0 ],

a soft minimum of ``V(X_T)`` over SGD paths. Taking ``alpha = 0`` in the cost gives the expected-improvement
theorem ``E V(X_csgd(T)) + 1/2 E int alpha^2 = u(x_0, 0) <= E V(X_sgd(T))``.

Discretisation. The linear backward equation is solved with the transpose of the Scharfetter-Gummel
Fokker-Planck generator of SGD (:class:`~deeprelax.pde.fokker_planck.FokkerPlanck1D` with potential ``f`` and
``beta = 2 / sigma^2``), implicit Euler, renormalised each step; so the computed value is exact up to
``O(h + dt)`` and the domain's reflecting walls (keep them far from where the mass goes). Float64 range:
``w`` is floored at ``1e-300`` times its maximum, i.e. ``u`` is capped at ``min u + 690 sigma^2``; where the
cap bites the control is zero, in regions the controlled process reaches with probability ``~e^{-690}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import logsumexp

from deeprelax.pde._grid import check_positive, sample_on_grid, uniform_grid
from deeprelax.pde.fokker_planck import FokkerPlanck1D
from deeprelax.pde.sde import euler_maruyama

FloatArray = NDArray[np.float64]
Fn = Callable[[FloatArray], ArrayLike]

__all__ = [
    "CSGDDensities",
    "CSGDMonteCarlo",
    "CSGDValue",
    "csgd_densities",
    "simulate_sgd_and_csgd",
    "solve_csgd_value",
]

# w = exp(-u / sigma^2) is kept >= this fraction of its maximum (float64 underflows near 1e-308): u is capped
# at min u + sigma^2 * log(1/_W_FLOOR) ~ min u + 690 sigma^2, where the control is then zero.
_W_FLOOR = 1e-300


@dataclass
class CSGDValue:
    """The value function ``u[n, i] = u(x_i, times[n])`` of the CSGD control problem on the grid ``x``."""

    x: FloatArray
    times: FloatArray
    u: FloatArray
    sigma: float

    def __post_init__(self) -> None:
        self._h = float(self.x[1] - self.x[0])
        self._alpha = -np.diff(self.u, axis=1) / self._h

    @property
    def faces(self) -> FloatArray:
        return 0.5 * (self.x[1:] + self.x[:-1])

    @property
    def control_on_faces(self) -> FloatArray:
        """Optimal feedback ``alpha = -u_x`` on the faces, ``-(u_{i+1} - u_i)/h``, one row per time level."""
        return self._alpha

    def control(self, x: ArrayLike, s: float) -> FloatArray:
        """``alpha(x, s) = -u_x(x, s)``: linear interpolation in ``x`` (between faces, constant beyond the
        outer faces) and in time."""
        xs = np.asarray(x, dtype=float)
        a = self._alpha
        pos = np.clip(s / self.times[-1], 0.0, 1.0) * (self.times.size - 1)
        n = min(int(pos), self.times.size - 2)
        th = pos - n
        row = (1 - th) * a[n] + th * a[n + 1]
        # uniform faces: locate by arithmetic instead of a search
        q = np.clip((xs - (self.x[0] + 0.5 * self._h)) / self._h, 0.0, row.size - 1.0)
        i = np.minimum(q.astype(np.int64), row.size - 2)
        lam = q - i
        return (1 - lam) * row[i] + lam * row[i + 1]

    def value(self, x0: float) -> float:
        """``u(x0, 0)`` (linear interpolation between nodes)."""
        return float(np.interp(x0, self.x, self.u[0]))


def solve_csgd_value(
    f: Fn | ArrayLike, V: Fn | ArrayLike, x: ArrayLike, sigma: float, T: float, n_steps: int
) -> CSGDValue:
    r"""Solve ``-u_s = -f' u_x - u_x^2/2 + (sigma^2/2) u_xx``, ``u(., T) = V`` by the Hopf-Cole transform.

    ``f`` and ``V`` are vectorised callables or samples on the uniform grid ``x``; ``n_steps`` implicit
    Euler steps of ``-w_s = L^T w`` (``L`` the SGD Fokker-Planck generator), ``u = -sigma^2 log w``.
    """
    xg, _ = uniform_grid("x", x)
    sigma = check_positive("sigma", sigma)
    T = check_positive("T", T)
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps!r}")
    n_steps = int(n_steps)
    Vg = sample_on_grid("V", V, xg)
    s2 = sigma**2
    fp = FokkerPlanck1D(xg, f, beta=2.0 / s2)
    dt = T / n_steps
    w = np.maximum(np.exp(-(Vg - Vg.min()) / s2), _W_FLOOR)
    log_scale = -Vg.min() / s2  # w_true = w * exp(log_scale)
    u = np.empty((n_steps + 1, xg.size))
    u[n_steps] = -s2 * (np.log(w) + log_scale)
    for n in range(n_steps, 0, -1):
        w = fp.step_adjoint(w, n * dt, dt)
        m = w.max()
        w = np.maximum(w / m, _W_FLOOR)
        log_scale += np.log(m)
        u[n - 1] = -s2 * (np.log(w) + log_scale)
    return CSGDValue(x=xg, times=np.linspace(0.0, T, n_steps + 1), u=u, sigma=sigma)


@dataclass
class CSGDDensities:
    """Forward Fokker-Planck densities of SGD and CSGD (``[n, i]`` at ``times[n]``) and their expectations.

    ``E_V_sgd``, ``E_V_csgd``: ``int V rho(T)``; ``control_cost``: ``1/2 int_0^T int alpha^2 rho_csgd dx ds``.
    """

    x: FloatArray
    times: FloatArray
    rho_sgd: FloatArray
    rho_csgd: FloatArray
    E_V_sgd: float
    E_V_csgd: float
    control_cost: float


def csgd_densities(f: Fn | ArrayLike, V: Fn | ArrayLike, value: CSGDValue, rho0: ArrayLike) -> CSGDDensities:
    r"""Forward equations on the value's grid and time levels:

    SGD ``rho_s = (f' rho)_x + (sigma^2/2) rho_xx``,
    CSGD ``rho_s = ((f' - alpha) rho)_x + (sigma^2/2) rho_xx`` with ``alpha = -u_x`` (on each face
    ``-(u_{i+1} - u_i)/h``, so CSGD is Fokker-Planck in the potential ``f + u(., s)``). Implicit Euler with
    the value's time step.
    """
    x, h = value.x, value.x[1] - value.x[0]
    rho = np.asarray(rho0, dtype=float)
    if rho.shape != x.shape or np.any(rho < 0):
        raise ValueError(f"rho0 must be a non-negative array of shape {x.shape}")
    alpha = value.control_on_faces
    n_steps = value.times.size - 1
    dt = value.times[1] - value.times[0]
    beta = 2.0 / value.sigma**2

    def level(s: float) -> int:
        return int(round(s / dt))

    sgd = FokkerPlanck1D(x, f, beta)
    csgd = FokkerPlanck1D(x, f, beta, drift=lambda xf, s: alpha[level(s)])
    Vg = sample_on_grid("V", V, x)
    rs, rc = [rho.copy()], [rho.copy()]
    # control cost: 1/2 alpha^2 averaged to the nodes, left-point rule in time (matches Ito/Euler-Maruyama)
    a2_nodes = np.empty_like(value.u)
    a2_nodes[:, 1:-1] = 0.5 * (alpha[:, 1:] ** 2 + alpha[:, :-1] ** 2)
    a2_nodes[:, 0], a2_nodes[:, -1] = alpha[:, 0] ** 2, alpha[:, -1] ** 2
    cost = 0.0
    for n in range(n_steps):
        cost += 0.5 * dt * h * np.sum(a2_nodes[n] * rc[-1])
        rs.append(sgd.step(rs[-1], n * dt, dt))
        rc.append(csgd.step(rc[-1], n * dt, dt))
    return CSGDDensities(
        x=x,
        times=value.times,
        rho_sgd=np.array(rs),
        rho_csgd=np.array(rc),
        E_V_sgd=float(h * np.sum(Vg * rs[-1])),
        E_V_csgd=float(h * np.sum(Vg * rc[-1])),
        control_cost=float(cost),
    )


@dataclass
class CSGDMonteCarlo:
    """Monte-Carlo estimates (mean and standard error over ``n_paths``) from Euler-Maruyama paths.

    ``E_V_sgd``, ``E_V_csgd``: E V(X_T); ``control_cost``: 1/2 E int alpha^2; ``cost_csgd``: their sum (the
    CSGD cost, an estimate of the value); ``value_feynman_kac``: -sigma^2 log E_sgd exp(-V(X_T)/sigma^2)
    (standard error by the delta method). ``x_sgd``, ``x_csgd``: the final states.
    """

    E_V_sgd: float
    E_V_sgd_se: float
    E_V_csgd: float
    E_V_csgd_se: float
    control_cost: float
    control_cost_se: float
    cost_csgd: float
    cost_csgd_se: float
    value_feynman_kac: float
    value_feynman_kac_se: float
    x_sgd: FloatArray
    x_csgd: FloatArray


def _mean_se(a: FloatArray) -> tuple[float, float]:
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(a.size))


def simulate_sgd_and_csgd(
    grad_f: Fn,
    V: Fn,
    value: CSGDValue,
    x0: float,
    n_paths: int,
    n_steps: int,
    rng: np.random.Generator,
) -> CSGDMonteCarlo:
    r"""Euler-Maruyama (:func:`deeprelax.pde.sde.euler_maruyama`) for SGD and for CSGD with the feedback
    ``alpha(x, s) = -u_x(x, s)`` from ``value``, all paths from ``x0``, over ``[0, T]`` in ``n_steps`` steps.

    The control cost rides along as a noiseless second coordinate ``dc = 1/2 alpha(X, s)^2 ds``.
    """
    n_paths = int(n_paths)
    if n_paths < 2:
        raise ValueError(f"n_paths must be >= 2, got {n_paths}")
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps!r}")
    T = float(value.times[-1])
    dt = T / int(n_steps)
    s = value.sigma

    def sgd_drift(z: FloatArray, t: float) -> FloatArray:
        return -np.asarray(grad_f(z), dtype=float)

    def csgd_drift(z: FloatArray, t: float) -> FloatArray:
        a = value.control(z[:, 0], t)
        return np.stack([-np.asarray(grad_f(z[:, 0]), dtype=float) + a, 0.5 * a**2], axis=1)

    xs = euler_maruyama(sgd_drift, np.full(n_paths, float(x0)), dt=dt, n_steps=int(n_steps), sigma=s, rng=rng)
    z0 = np.stack([np.full(n_paths, float(x0)), np.zeros(n_paths)], axis=1)
    zc = euler_maruyama(csgd_drift, z0, dt=dt, n_steps=int(n_steps), sigma=np.array([s, 0.0]), rng=rng)
    x_sgd = xs.final
    x_csgd, cost = zc.final[:, 0], zc.final[:, 1]
    v_sgd = np.asarray(V(x_sgd), dtype=float)
    v_csgd = np.asarray(V(x_csgd), dtype=float)
    # Feynman-Kac soft-min: -s^2 log mean exp(-V/s^2), SE by the delta method on the mean of the weights
    s2 = s**2
    log_mean = logsumexp(-v_sgd / s2) - np.log(n_paths)
    wts = np.exp(-v_sgd / s2 - log_mean)  # weights / their mean
    fk_se = s2 * float(wts.std(ddof=1) / np.sqrt(n_paths))
    e_sgd, e_sgd_se = _mean_se(v_sgd)
    e_csgd, e_csgd_se = _mean_se(v_csgd)
    cc, cc_se = _mean_se(cost)
    tot, tot_se = _mean_se(v_csgd + cost)
    return CSGDMonteCarlo(
        E_V_sgd=e_sgd,
        E_V_sgd_se=e_sgd_se,
        E_V_csgd=e_csgd,
        E_V_csgd_se=e_csgd_se,
        control_cost=cc,
        control_cost_se=cc_se,
        cost_csgd=tot,
        cost_csgd_se=tot_se,
        value_feynman_kac=float(-s2 * log_mean),
        value_feynman_kac_se=fk_se,
        x_sgd=x_sgd,
        x_csgd=x_csgd,
    )
