r"""Metastability of overdamped Langevin dynamics dX = −∇V(X) dt + √(2β⁻¹) dW.

Three ways to get the mean time to go from one well to another:

* exact 1-D mean first-passage time (MFPT) from a to b > a, reflecting at −∞, absorbing at b, by quadrature

      T(a → b) = β ∫_a^b e^{βV(y)} ∫_{−∞}^y e^{−βV(z)} dz dy,

  which solves the backward equation β⁻¹T'' − V'T' = −1, T(b) = 0, T'(−∞) = 0. The exponents are shifted
  (log-space accumulation) so the formula stays finite for large β (:func:`mfpt_1d`, :func:`mfpt_1d_grid`);
* the Eyring-Kramers asymptotics (β → ∞) for a minimum m and the saddle s between it and the target well

      1-D:   T ≈ 2π / √(V''(m) |V''(s)|) · e^{β(V(s) − V(m))},
      n-D:   T ≈ 2π / |λ₁(s)| · √(|det ∇²V(s)| / det ∇²V(m)) · e^{β(V(s) − V(m))},

  λ₁(s) the negative eigenvalue of the Hessian at the saddle (:func:`eyring_kramers_1d`,
  :func:`eyring_kramers`);
* simulated exit times (Euler-Maruyama, :func:`simulate_exit_times`) and their mean with a confidence interval
  (:func:`mean_exit_time`; handles paths still running at the time limit through the exponential law of
  metastable exits).

Two 2-D potentials illustrate the two kinds of barrier (seed 000, after Lelièvre & Stoltz):

* :func:`energetic_barrier` — two wells joined by a mountain pass: the exit time grows like e^{βΔV} and
  Eyring-Kramers applies;
* :func:`entropic_barrier` — two wide, nearly flat wells ("lakes") joined by a narrow channel ("river"),
  V = a(x² − 1)² + ½κ(x)y² with κ large only near x = 0. The energetic barrier a is small; what slows the
  crossing is the narrowness of the channel, an entropic free-energy barrier
  F(x) = −β⁻¹ log ∫ e^{−βV(x, y)} dy = a(x² − 1)² + (2β)⁻¹ log κ(x) + const (:func:`free_energy_x`). Its
  MFPT is estimated by the 1-D reduction in F (Fick-Jacobs), not by Eyring-Kramers (βa is of order one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import logsumexp

from deeprelax.pde.sde import first_passage_times

# ----------------------------------------------------------------------------------------------------
# exact 1-D mean first-passage time


def _check_beta(beta: float) -> None:
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be > 0, got {beta}")


def log_mfpt_1d_grid(x: ArrayLike, V: ArrayLike, a: float, beta: float) -> float:
    """log T(a → x[-1]), T = β ∫_a^b e^{βV(y)} ∫_{x[0]}^y e^{−βV(z)} dz dy, V given on an increasing grid x.

    ``x[0]`` stands for −∞ (V must be large there: β(V(x[0]) − min V) ≳ 30); ``a`` must be a grid point.
    Trapezoidal rule in both integrals, accumulated in log space: for every y the product
    e^{βV(y)}·∫e^{−βV} is formed as exp(βV(y) − c + log ∫e^{−(βV − c)}) with c = min βV, and the outer
    integral by a log-sum-exp, so nothing overflows however large β is.
    """
    _check_beta(beta)
    x = np.asarray(x, dtype=float)
    v = beta * np.asarray(V, dtype=float)
    if x.ndim != 1 or x.shape != v.shape or x.size < 3:
        raise ValueError("x and V must be 1-D arrays of the same length >= 3")
    if np.any(np.diff(x) <= 0):
        raise ValueError("x must be strictly increasing")
    ia = int(np.argmin(np.abs(x - a)))
    if not np.isclose(x[ia], a, rtol=0, atol=1e-12 * max(1.0, abs(a))) or ia >= x.size - 1:
        raise ValueError(f"a={a} must be a grid point strictly left of b={x[-1]}")
    c = v.min()
    e = np.exp(-(v - c))
    inner = np.concatenate([[0.0], np.cumsum(0.5 * (e[1:] + e[:-1]) * np.diff(x))])  # ∫_{x0}^y e^{−(βV − c)}
    with np.errstate(divide="ignore"):
        log_g = (v - c) + np.log(inner)  # log of e^{βV(y)} ∫ e^{−βV}
    # outer trapezoid over [a, b] in log space
    lg, xs = log_g[ia:], x[ia:]
    w = np.empty_like(xs)
    dx = np.diff(xs)
    w[0], w[-1] = dx[0] / 2, dx[-1] / 2
    w[1:-1] = (dx[:-1] + dx[1:]) / 2
    return float(np.log(beta) + logsumexp(lg + np.log(w)))


def mfpt_1d_grid(x: ArrayLike, V: ArrayLike, a: float, beta: float) -> float:
    """T(a → x[-1]) of :func:`log_mfpt_1d_grid` (``inf`` if it exceeds the float range)."""
    with np.errstate(over="ignore"):
        return float(np.exp(log_mfpt_1d_grid(x, V, a, beta)))


def _left_cutoff(V: Callable[[np.ndarray], np.ndarray], a: float, b: float, beta: float) -> float:
    """A left end L < a with β(V(L) − min_{[L, b]} V) ≥ 40, so that the mass left of L is negligible."""
    w = max(1.0, b - a)
    for _ in range(60):
        L = a - w
        xs = np.linspace(L, b, 2001)
        if beta * (V(np.array([L]))[0] - V(xs).min()) >= 40.0:
            return L
        w *= 2
    raise ValueError("V does not grow to the left of a (not confining): the MFPT is infinite")


def mfpt_1d(
    V: Callable[[np.ndarray], np.ndarray],
    a: float,
    b: float,
    beta: float,
    *,
    left: float | None = None,
    n: int = 20001,
) -> float:
    """Exact mean first-passage time of dX = −V'(X)dt + √(2β⁻¹)dW from a to b > a (reflecting at −∞):

        T = β ∫_a^b e^{βV(y)} ∫_{−∞}^y e^{−βV(z)} dz dy.

    ``V`` is a vectorised callable. −∞ is replaced by ``left`` (default: found automatically where
    β(V − min V) ≥ 40). The quadrature uses ``n`` points in total (trapezoid rule, error O(h²)).
    """
    _check_beta(beta)
    if not b > a:
        raise ValueError(f"need b > a, got a={a}, b={b}")
    if n < 11:
        raise ValueError(f"n must be >= 11, got {n}")
    L = _left_cutoff(V, a, b, beta) if left is None else float(left)
    if not L < a:
        raise ValueError(f"left={L} must be < a={a}")
    n_left = max(3, int(round(n * (a - L) / (b - L))))
    x = np.concatenate([np.linspace(L, a, n_left), np.linspace(a, b, max(3, n - n_left + 1))[1:]])
    return mfpt_1d_grid(x, V(x), a, beta)


# ----------------------------------------------------------------------------------------------------
# Eyring-Kramers


def eyring_kramers_1d(delta_V: float, vpp_min: float, vpp_saddle: float, beta: float) -> float:
    """T ≈ 2π / √(V''(m) |V''(s)|) · e^{βΔV}, ΔV = V(s) − V(m) (requires V''(m) > 0 > V''(s))."""
    _check_beta(beta)
    if not vpp_min > 0:
        raise ValueError(f"vpp_min must be > 0 (a minimum), got {vpp_min}")
    if not vpp_saddle < 0:
        raise ValueError(f"vpp_saddle must be < 0 (a maximum in 1-D), got {vpp_saddle}")
    with np.errstate(over="ignore"):
        return float(2 * np.pi / np.sqrt(vpp_min * abs(vpp_saddle)) * np.exp(beta * delta_V))


def eyring_kramers(
    V_min: float, V_saddle: float, hess_min: ArrayLike, hess_saddle: ArrayLike, beta: float
) -> float:
    """T ≈ 2π/|λ₁(s)| · √(|det ∇²V(s)| / det ∇²V(m)) · e^{β(V(s) − V(m))}.

    ``hess_min`` must be positive definite and ``hess_saddle`` must have exactly one negative eigenvalue λ₁(s)
    (an index-1 saddle); otherwise ``ValueError``.
    """
    _check_beta(beta)
    Hm = np.atleast_2d(np.asarray(hess_min, dtype=float))
    Hs = np.atleast_2d(np.asarray(hess_saddle, dtype=float))
    if Hm.shape != Hs.shape or Hm.shape[0] != Hm.shape[1]:
        raise ValueError("hess_min and hess_saddle must be square matrices of the same size")
    em = np.linalg.eigvalsh((Hm + Hm.T) / 2)
    es = np.linalg.eigvalsh((Hs + Hs.T) / 2)
    if em.min() <= 0:
        raise ValueError("hess_min must be positive definite (a non-degenerate minimum)")
    if not (es[0] < 0 < es[1] if es.size > 1 else es[0] < 0):
        raise ValueError("hess_saddle must have exactly one negative eigenvalue (an index-1 saddle)")
    pref = 2 * np.pi / abs(es[0]) * np.sqrt(abs(np.prod(es)) / np.prod(em))
    with np.errstate(over="ignore"):
        return float(pref * np.exp(beta * (V_saddle - V_min)))


# ----------------------------------------------------------------------------------------------------
# simulated exit times


def simulate_exit_times(
    grad_V: Callable[[np.ndarray], np.ndarray],
    x0: ArrayLike,
    hit: Callable[[np.ndarray], np.ndarray],
    *,
    beta: float,
    dt: float,
    max_steps: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Exit times of Euler-Maruyama paths of dX = −∇V dt + √(2β⁻¹) dW started at the rows of ``x0``.

    ``hit(x)`` (x of shape ``(n, d)``) says which paths reached the target. Paths still running after
    ``max_steps`` steps get ``inf``. The O(dt) bias of the scheme is the caller's to control.
    """
    _check_beta(beta)
    return first_passage_times(
        lambda x, t: -grad_V(x), x0, hit, dt=dt, sigma=np.sqrt(2.0 / beta), rng=rng, max_steps=max_steps
    )


@dataclass
class ExitTimeEstimate:
    """Mean exit time with a ``level`` confidence interval from ``n`` paths, ``n_exited`` of them exited."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    n_exited: int
    level: float
    method: str


def mean_exit_time(
    times: ArrayLike, *, censor_time: float | None = None, level: float = 0.95
) -> ExitTimeEstimate:
    """Mean of exit times with a ``level`` confidence interval.

    If every path exited (all times finite), the sample mean with a Student-t interval. If some are censored
    (``inf``, i.e. still inside at ``censor_time``), the exit time is modelled as exponential — the law of
    metastable exits — and the maximum-likelihood mean is S/k, S = Σ min(τ_i, T_c), k = #exits, with the
    chi-square interval [2S/χ²_{(1+level)/2}(2k), 2S/χ²_{(1−level)/2}(2k)] (exact for the exponential law
    under type-II censoring, a close approximation under the fixed time limit used here).
    """
    from scipy.stats import chi2
    from scipy.stats import t as student_t

    tau = np.asarray(times, dtype=float)
    if tau.ndim != 1 or tau.size < 2:
        raise ValueError("times must be a 1-D array with at least two entries")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    finite = np.isfinite(tau)
    n, k = tau.size, int(finite.sum())
    if k == n:
        m = float(tau.mean())
        half = student_t.ppf((1 + level) / 2, n - 1) * tau.std(ddof=1) / np.sqrt(n)
        return ExitTimeEstimate(
            m, float(m - half), float(m + half), n, k, level, "sample mean, Student-t interval"
        )
    if censor_time is None or not censor_time > 0:
        raise ValueError("censor_time (> 0) is required when some times are inf (censored)")
    if k == 0:
        raise ValueError("no path exited: the mean exit time cannot be estimated (increase the time limit)")
    S = float(np.minimum(tau, censor_time).sum())
    m = S / k
    lo = 2 * S / chi2.ppf((1 + level) / 2, 2 * k)
    hi = 2 * S / chi2.ppf((1 - level) / 2, 2 * k)
    return ExitTimeEstimate(
        m, float(lo), float(hi), n, k, level, "exponential MLE with censoring, chi2 interval"
    )


def euler_chain_mfpt_1d(
    grad_V: Callable[[np.ndarray], np.ndarray],
    a: float,
    b: float,
    beta: float,
    dt: float,
    *,
    left: float,
    points_per_sd: int = 8,
) -> float:
    """Mean first-passage time a → {x ≥ b} of the Euler-Maruyama *chain* x ← x − V'(x)dt + √(2dt/β)ξ (time =
    steps·dt): the chain's Gaussian kernel on a uniform grid from ``left`` (a reflecting end far in the left
    tail) to b + 6 kernel widths, and the linear system (I − Q)T = dt on the states x < b. Compared with the
    exact T of :func:`mfpt_1d` it is the time-discretisation bias of a simulation with step dt."""
    _check_beta(beta)
    sd = np.sqrt(2.0 * dt / beta)
    y = np.arange(left, b + 6 * sd, sd / points_per_sd)
    m = y - dt * np.asarray(grad_V(y), dtype=float)
    logk = -((y[None, :] - m[:, None]) ** 2) / (2 * sd**2)
    K = np.exp(logk - logk.max(axis=1, keepdims=True))
    K /= K.sum(axis=1, keepdims=True)
    inside = y < b
    Q = K[np.ix_(inside, inside)]
    T = np.linalg.solve(np.eye(Q.shape[0]) - Q, np.full(Q.shape[0], dt))
    return float(np.interp(a, y[inside], T))


# ----------------------------------------------------------------------------------------------------
# rare events: forward flux sampling


@dataclass
class ForwardFluxEstimate:
    """Forward-flux-sampling estimate of the mean first-passage time A → B (one run).

    ``flux``: first crossings of λ₀ after a visit to A, per unit time spent with A visited last;
    ``probabilities[i]``: P(reach λ_{i+1} before A | started at the first crossings of λ_i);
    ``mfpt`` = 1 / (flux · Π probabilities); ``trials``: starts per interface.
    """

    mfpt: float
    flux: float
    probabilities: list[float]
    interfaces: list[float]
    n_crossings: int
    trials: int


def forward_flux_mfpt(
    grad_V: Callable[[np.ndarray], np.ndarray],
    x0: ArrayLike,
    xi: Callable[[np.ndarray], np.ndarray],
    interfaces: ArrayLike,
    *,
    beta: float,
    dt: float,
    flux_steps: int,
    trials: int,
    rng: np.random.Generator,
    replicas: int = 1,
    max_trial_steps: int = 1_000_000,
) -> list[ForwardFluxEstimate]:
    """Mean first-passage time from A = {ξ ≤ λ_A} to B = {ξ ≥ λ_n} of the Euler-Maruyama chain
    X ← X − ∇V(X)dt + √(2β⁻¹dt) ξ by forward flux sampling (Allen, Valeriani & ten Wolde 2006), in
    ``replicas`` independent runs simulated side by side (one estimate each).

    ``interfaces`` = (λ_A, λ₀, λ₁, …, λ_n), increasing; ``xi`` maps states (n, d) to the reaction coordinate.
    Stage 0 runs the paths ``x0`` (rows, all in A; each replica gets its own copy) for ``flux_steps`` steps
    and records every first crossing of λ₀ after a visit to A: the flux Φ is their number per unit time spent
    with A visited last (paths that reach B stop counting until they return to A). Stage i draws ``trials``
    starts among the states the replica recorded at λ_i and runs each until ξ ≥ λ_{i+1} (success; the state
    is recorded) or ξ ≤ λ_A (failure). For a Markov chain

        k_AB = Φ · Π_i P(λ_{i+1} | λ_i),        T(A → B) = 1 / k_AB

    without approximation: only the sampling error remains (estimated from the replicas, see
    :func:`mean_exit_time_replicas`). Trials still running after ``max_trial_steps`` raise ``RuntimeError``.
    """
    _check_beta(beta)
    lam = np.asarray(interfaces, dtype=float)
    if lam.ndim != 1 or lam.size < 3 or np.any(np.diff(lam) <= 0):
        raise ValueError("interfaces must be increasing: (lambda_A, lambda_0, ..., lambda_n), at least 3")
    R, trials = int(replicas), int(trials)
    if not (int(flux_steps) >= 1 and trials >= 1 and R >= 1):
        raise ValueError("flux_steps, trials and replicas must be >= 1")
    x1, _ = _as_states(x0)
    if np.any(xi(x1) > lam[0]):
        raise ValueError("every starting state must lie in A (xi <= lambda_A)")
    n = x1.shape[0]
    x = np.tile(x1, (R, 1))
    owner = np.repeat(np.arange(R), n)
    sq = np.sqrt(2.0 * dt / beta)

    def step(z: np.ndarray) -> np.ndarray:
        return z - grad_V(z) * dt + sq * rng.standard_normal(z.shape)

    # stage 0: the flux through λ₀
    last_A = np.ones(x.shape[0], dtype=bool)  # A visited more recently than B
    armed = np.ones(x.shape[0], dtype=bool)  # in A since the last counted crossing of λ₀
    time_A = np.zeros(R)
    got_x, got_r = [], []
    for _ in range(int(flux_steps)):
        time_A += dt * np.bincount(owner[last_A], minlength=R)
        x = step(x)
        q = xi(x)
        hit = armed & last_A & (q >= lam[1])
        if hit.any():
            got_x.append(x[hit].copy())
            got_r.append(owner[hit])
            armed &= ~hit
        inA = q <= lam[0]
        armed |= inA
        last_A = (last_A | inA) & ~(q >= lam[-1])
    states = np.concatenate(got_x) if got_x else np.empty((0, x.shape[1]))
    who = np.concatenate(got_r) if got_r else np.empty(0, dtype=int)
    n_cross = np.bincount(who, minlength=R)
    if np.any(n_cross == 0):
        raise RuntimeError("no crossing of lambda_0 in the flux stage: move lambda_0 towards A or run longer")
    flux = n_cross / time_A
    probs = np.empty((R, lam.size - 2))
    for i in range(1, lam.size - 1):
        starts = []
        for r in range(R):  # each replica restarts from its own recorded states
            mine = np.flatnonzero(who == r)
            starts.append(states[mine[rng.integers(0, mine.size, trials)]])
        z = np.concatenate(starts)
        tag = np.repeat(np.arange(R), trials)
        success = xi(z) >= lam[i + 1]
        act = np.flatnonzero(~success)
        za = z[act]
        for _ in range(int(max_trial_steps)):
            if act.size == 0:
                break
            za = step(za)
            q = xi(za)
            up, down = q >= lam[i + 1], q <= lam[0]
            z[act[up]] = za[up]
            success[act[up]] = True
            keep = ~(up | down)
            act, za = act[keep], za[keep]
        else:
            raise RuntimeError(f"trials from interface {lam[i]} did not finish in {max_trial_steps} steps")
        probs[:, i - 1] = np.bincount(tag[success], minlength=R) / trials
        if np.any(probs[:, i - 1] == 0):
            raise RuntimeError(f"no trial from interface {lam[i]} reached {lam[i + 1]}: add interfaces")
        states, who = z[success], tag[success]
    return [
        ForwardFluxEstimate(
            float(1.0 / (flux[r] * np.prod(probs[r]))),
            float(flux[r]),
            probs[r].tolist(),
            lam.tolist(),
            int(n_cross[r]),
            trials,
        )
        for r in range(R)
    ]


def mean_exit_time_replicas(estimates: ArrayLike, level: float = 0.95) -> ExitTimeEstimate:
    """Combine independent estimates T_r of one mean time (e.g. forward flux runs): geometric mean with the
    Student-t interval of log T_r (the estimates are products of ratios, so log T is close to normal)."""
    from scipy.stats import t as student_t

    T = np.asarray(estimates, dtype=float)
    if T.ndim != 1 or T.size < 2 or np.any(T <= 0):
        raise ValueError("need at least two positive estimates")
    lg = np.log(T)
    half = student_t.ppf((1 + level) / 2, T.size - 1) * lg.std(ddof=1) / np.sqrt(T.size)
    m = float(lg.mean())
    return ExitTimeEstimate(
        float(np.exp(m)),
        float(np.exp(m - half)),
        float(np.exp(m + half)),
        T.size,
        T.size,
        level,
        "geometric mean of independent runs, Student-t interval of log T",
    )


def _as_states(x0: ArrayLike) -> tuple[np.ndarray, bool]:
    x = np.array(x0, dtype=float)
    if x.ndim == 1:
        return x[:, None], True
    if x.ndim != 2:
        raise ValueError(f"x0 must have shape (n,) or (n, d), got {x.shape}")
    return x, False


# ----------------------------------------------------------------------------------------------------
# the two 2-D potentials


@dataclass
class Potential2D:
    """A 2-D potential with its gradient and Hessian (vectorised over leading axes of ``p[..., 2]``), and its
    critical points: ``minima`` (left, right) and ``saddle`` between them."""

    name: str
    V: Callable[[np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray], np.ndarray]
    hessian: Callable[[np.ndarray], np.ndarray]
    minima: tuple[np.ndarray, np.ndarray]
    saddle: np.ndarray
    params: dict[str, float] = field(default_factory=dict)

    def eyring_kramers(self, beta: float) -> float:
        """Eyring-Kramers mean transition time from the left minimum over the saddle."""
        m, s = self.minima[0], self.saddle
        return eyring_kramers(float(self.V(m)), float(self.V(s)), self.hessian(m), self.hessian(s), beta)


def energetic_barrier(height: float = 1.0, stiffness: float = 2.0, bend: float = 0.5) -> Potential2D:
    """Mountain pass: V(x, y) = h(x² − 1)² + k(y − c(1 − x²))².

    Minima (±1, 0) with V = 0; saddle (0, c) with V = h, so the barrier is purely energetic: ΔV = h. The
    valley floor y = c(1 − x²) bends over the pass. Hessian on the valley floor (x, c(1 − x²)):
    [[h(12x² − 4) + 8kc²x², 4kcx], [4kcx, 2k]]."""
    h, k, c = float(height), float(stiffness), float(bend)
    for name, v in (("height", h), ("stiffness", k)):
        if not v > 0:
            raise ValueError(f"{name} must be > 0, got {v}")

    def V(p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        x, y = p[..., 0], p[..., 1]
        return h * (x**2 - 1) ** 2 + k * (y - c * (1 - x**2)) ** 2

    def grad(p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        x, y = p[..., 0], p[..., 1]
        v = y - c * (1 - x**2)  # distance above the valley floor
        g = np.empty(p.shape)
        g[..., 0] = 4 * h * x * (x**2 - 1) + 4 * k * c * x * v
        g[..., 1] = 2 * k * v
        return g

    def hessian(p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        x, y = p[..., 0], p[..., 1]
        g = y - c * (1 - x**2)
        hxx = h * (12 * x**2 - 4) + 2 * k * ((2 * c * x) ** 2 + g * 2 * c)
        hxy = 2 * k * 2 * c * x
        hyy = 2 * k * np.ones_like(x)
        return np.stack([np.stack([hxx, hxy], -1), np.stack([hxy, hyy], -1)], -2)

    return Potential2D(
        "energetic barrier",
        V,
        grad,
        hessian,
        (np.array([-1.0, 0.0]), np.array([1.0, 0.0])),
        np.array([0.0, c]),
        dict(height=h, stiffness=k, bend=c),
    )


def entropic_barrier(
    height: float = 0.1, kappa_well: float = 1.0, kappa_channel: float = 40.0, channel_length: float = 0.2
) -> Potential2D:
    """Wide lakes joined by a narrow river: V(x, y) = a(x² − 1)² + ½κ(x)y²,
    κ(x) = κ_w + (κ_c − κ_w) exp(−x²/(2ℓ²)).

    Critical points: minima (±1, 0) (Hessian ≈ diag(8a, κ_w), wide in y when κ_w is small) and the saddle
    (0, 0) (Hessian diag(−4a, κ_c), narrow when κ_c is large); the energetic barrier a is small. At inverse
    temperature β the channel's half-width is ≈ (βκ_c)^{-1/2} against (βκ_w)^{-1/2} in the lakes, and the
    marginal free energy F(x) = a(x² − 1)² + (2β)⁻¹ log κ(x) has an entropic barrier ≈ (2β)⁻¹ log(κ_c/κ_w)."""
    a, kw, kc, ell = float(height), float(kappa_well), float(kappa_channel), float(channel_length)
    for name, v in (("height", a), ("kappa_well", kw), ("kappa_channel", kc), ("channel_length", ell)):
        if not v > 0:
            raise ValueError(f"{name} must be > 0, got {v}")

    def kappa(x: np.ndarray) -> np.ndarray:
        return kw + (kc - kw) * np.exp(-(x**2) / (2 * ell**2))

    def dkappa(x: np.ndarray) -> np.ndarray:
        return -(kc - kw) * x / ell**2 * np.exp(-(x**2) / (2 * ell**2))

    def d2kappa(x: np.ndarray) -> np.ndarray:
        return (kc - kw) * (x**2 / ell**4 - 1 / ell**2) * np.exp(-(x**2) / (2 * ell**2))

    def V(p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        x, y = p[..., 0], p[..., 1]
        return a * (x**2 - 1) ** 2 + 0.5 * kappa(x) * y**2

    def grad(p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        x, y = p[..., 0], p[..., 1]
        e = (kc - kw) * np.exp(-(x**2) / (2 * ell**2))  # κ(x) = κ_w + e, κ'(x) = −x e/ℓ²
        g = np.empty(p.shape)
        g[..., 0] = 4 * a * x * (x**2 - 1) - 0.5 * x * e / ell**2 * y**2
        g[..., 1] = (kw + e) * y
        return g

    def hessian(p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        x, y = p[..., 0], p[..., 1]
        hxx = a * (12 * x**2 - 4) + 0.5 * d2kappa(x) * y**2
        hxy = dkappa(x) * y
        hyy = kappa(x)
        return np.stack([np.stack([hxx, hxy], -1), np.stack([hxy, hyy], -1)], -2)

    return Potential2D(
        "entropic barrier",
        V,
        grad,
        hessian,
        (np.array([-1.0, 0.0]), np.array([1.0, 0.0])),
        np.array([0.0, 0.0]),
        dict(height=a, kappa_well=kw, kappa_channel=kc, channel_length=ell),
    )


def free_energy_x(V_grid: ArrayLike, y: ArrayLike, beta: float) -> np.ndarray:
    """Marginal free energy along x, F(x_i) = −β⁻¹ log ∫ e^{−βV(x_i, y)} dy, from values ``V_grid[i, j]`` =
    V(x_i, y_j) on a grid (trapezoid rule in y, log-sum-exp for large β)."""
    _check_beta(beta)
    Vg = np.asarray(V_grid, dtype=float)
    y = np.asarray(y, dtype=float)
    if Vg.ndim != 2 or Vg.shape[1] != y.size:
        raise ValueError("V_grid must have shape (n_x, len(y))")
    w = np.empty_like(y)
    dy = np.diff(y)
    w[0], w[-1] = dy[0] / 2, dy[-1] / 2
    w[1:-1] = (dy[:-1] + dy[1:]) / 2
    return -logsumexp(-beta * Vg + np.log(w)[None, :], axis=1) / beta


def fick_jacobs_mfpt(x: ArrayLike, y: ArrayLike, V_grid: ArrayLike, beta: float, a: float, b: float) -> float:
    """Mean first-passage time a → b > a of the x-coordinate, reduced to a 1-D diffusion in the marginal free
    energy (Fick-Jacobs):

        F(x) = −β⁻¹ log ∫ e^{−βV(x, y)} dy,      T ≈ β ∫_a^b e^{βF(z)} ∫_{x₀}^z e^{−βF} dz' dz.

    Exact when the transverse coordinate equilibrates much faster than x moves (and for V separable in x and
    y); otherwise an approximation. ``V_grid[i, j]`` = V(x_i, y_j); ``a`` and ``b`` must lie on the x-grid
    (within half a grid step), and ``x[0]`` plays the role of −∞ (reflecting end).
    """
    x = np.asarray(x, dtype=float)
    F = free_energy_x(V_grid, y, beta)
    h = float(np.min(np.diff(x)))
    ia, ib = int(np.argmin(np.abs(x - a))), int(np.argmin(np.abs(x - b)))
    if abs(x[ia] - a) > h / 2 or abs(x[ib] - b) > h / 2 or not ia < ib:
        raise ValueError(f"a={a} < b={b} must lie on the x-grid [{x[0]}, {x[-1]}]")
    xs = x[: ib + 1].copy()
    xs[ia] = a
    return mfpt_1d_grid(xs, F[: ib + 1], a, beta)
