r"""Euler-Maruyama for Itô SDEs, vectorised over many paths.

The general equation is

    dX = b(X, t) dt + Σ dW,        X ∈ ℝ^d,  W a standard Brownian motion in ℝ^m,

discretised by the Euler-Maruyama scheme with step h:

    X_{k+1} = X_k + b(X_k, t_k) h + Σ √h ξ_k,      ξ_k ~ N(0, I_m) i.i.d.

Σ may be a scalar σ (isotropic noise σ I), a vector (diagonal noise) or a d×m matrix. States are arrays of
shape ``(n_paths, d)``; a 1-D array of shape ``(n_paths,)`` is treated as ``d = 1`` and returned with the same
shape.

Special cases provided:

* overdamped Langevin dynamics  dX = −∇V(X) dt + √(2β⁻¹) dW  (:func:`langevin`), whose invariant density is
  the Gibbs density ∝ exp(−βV);
* the Entropy-SGD fast-slow system with scale ε (:func:`entropy_sgd_fast_slow`, REFERENCE §1)

      dx = −γ⁻¹ (x − y) ds,
      dy = −ε⁻¹ [∇f(y) + γ⁻¹ (y − x)] ds + √(2β⁻¹/ε) dW.

  Noise convention: the factor √(2β⁻¹/ε) makes the fast generator ε⁻¹[−∇_y H·∇_y + β⁻¹Δ_y] with
  H(x, y) = f(y) + |x − y|²/(2γ), so the fast invariant measure is ρ(y; x) ∝ exp(−βH(x, y)), exactly the local
  Gibbs measure of the Hopf-Cole formula with PDE time t = γ. (Seed 000 writes β^{-1/2}/√ε, for which the same
  measure would be ∝ exp(−2βH); its own proof uses the Gibbs measure exp(−βH), so we use √(2β⁻¹/ε).)
  As ε → 0, x follows the homogenized flow dX = −∇f_γ(X) ds with ∇f_γ(x) = γ⁻¹(x − ⟨y⟩_ρ).

Every function takes an explicit :class:`numpy.random.Generator`; nothing uses global random state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import ArrayLike

Drift = Callable[[np.ndarray, float], np.ndarray]
Gradient = Callable[[np.ndarray], np.ndarray]


@dataclass
class SDEPath:
    """Recorded states of a simulation.

    ``t`` has shape ``(n_rec,)``; ``x`` has shape ``(n_rec, *x0.shape)`` (the initial state is ``x[0]``, the
    final state ``x[-1]``).
    """

    t: np.ndarray
    x: np.ndarray

    @property
    def final(self) -> np.ndarray:
        return self.x[-1]


def _as_paths(x0: ArrayLike) -> tuple[np.ndarray, bool]:
    x = np.array(x0, dtype=float)
    if x.ndim == 1:
        return x[:, None], True
    if x.ndim != 2:
        raise ValueError(f"x0 must have shape (n_paths,) or (n_paths, d), got {x.shape}")
    return x, False


def _noise_matrix(sigma: ArrayLike, d: int) -> tuple[np.ndarray | float, int]:
    """Return (Σ, m): Σ a float (isotropic), a (d,) vector (diagonal) or a (d, m) matrix."""
    s = np.asarray(sigma, dtype=float)
    if not np.all(np.isfinite(s)):
        raise ValueError("sigma must be finite")
    if s.ndim == 0:
        if s < 0:
            raise ValueError(f"sigma must be >= 0, got {float(s)}")
        return float(s), d
    if s.ndim == 1:
        if s.shape[0] != d:
            raise ValueError(f"sigma vector must have length d={d}, got {s.shape[0]}")
        return s, d
    if s.ndim == 2 and s.shape[0] == d:
        return s, s.shape[1]
    raise ValueError(f"sigma must be a scalar, a length-{d} vector or a ({d}, m) matrix, got shape {s.shape}")


def _check_steps(dt: float, n_steps: int, record_every: int | None) -> None:
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be > 0, got {dt}")
    if int(n_steps) != n_steps or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer, got {n_steps}")
    if record_every is not None and (int(record_every) != record_every or record_every < 1):
        raise ValueError(f"record_every must be a positive integer or None, got {record_every}")


def euler_maruyama(
    drift: Drift,
    x0: ArrayLike,
    *,
    dt: float,
    n_steps: int,
    sigma: ArrayLike,
    rng: np.random.Generator,
    record_every: int | None = None,
    t0: float = 0.0,
) -> SDEPath:
    """Simulate dX = b(X, t) dt + Σ dW by X_{k+1} = X_k + b(X_k, t_k) dt + Σ √dt ξ_k for all paths at once.

    Parameters
    ----------
    drift: b(x, t), called with ``x`` of shape ``(n_paths, d)``; returns the same shape.
    x0: initial states, shape ``(n_paths,)`` or ``(n_paths, d)``.
    sigma: Σ — scalar, length-d vector (diagonal) or (d, m) matrix.
    record_every: store the state every this many steps (and always the last one); ``None`` stores only the
        initial and the final state.
    """
    _check_steps(dt, n_steps, record_every)
    x, flat = _as_paths(x0)
    n, d = x.shape
    s, m = _noise_matrix(sigma, d)
    sqdt = np.sqrt(dt)
    ts, xs = [t0], [x.copy()]
    # the normals are drawn in blocks of steps (the same stream as one draw per step, fewer calls)
    block = max(1, min(n_steps, 65536 // (n * m)))
    for k0 in range(0, n_steps, block):
        nb = min(block, n_steps - k0)
        xi = rng.standard_normal((nb, n, m))
        noise = sqdt * (xi @ cast(np.ndarray, s).T if np.ndim(s) == 2 else s * xi)
        for j in range(nb):
            k = k0 + j
            x = x + drift(x, t0 + k * dt) * dt + noise[j]
            if k + 1 == n_steps or (record_every is not None and (k + 1) % record_every == 0):
                ts.append(t0 + (k + 1) * dt)
                xs.append(x.copy())
    xarr = np.stack(xs)
    if flat:
        xarr = xarr[..., 0]
    return SDEPath(t=np.asarray(ts), x=xarr)


def langevin(
    grad_V: Gradient,
    x0: ArrayLike,
    *,
    beta: float,
    dt: float,
    n_steps: int,
    rng: np.random.Generator,
    record_every: int | None = None,
) -> SDEPath:
    """Overdamped Langevin dynamics dX = −∇V(X) dt + √(2β⁻¹) dW by Euler-Maruyama.

    ``grad_V`` maps states of shape ``(n_paths, d)`` to gradients of the same shape (1-D inputs of shape
    ``(n_paths,)`` are passed as ``(n_paths, 1)``).
    """
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be > 0, got {beta}")
    return euler_maruyama(
        lambda x, t: -grad_V(x),
        x0,
        dt=dt,
        n_steps=n_steps,
        sigma=np.sqrt(2.0 / beta),
        rng=rng,
        record_every=record_every,
    )


def first_passage_times(
    drift: Drift,
    x0: ArrayLike,
    hit: Callable[[np.ndarray], np.ndarray],
    *,
    dt: float,
    sigma: ArrayLike,
    rng: np.random.Generator,
    max_steps: int,
) -> np.ndarray:
    """First time τ = min{t_k : hit(X_k)} of Euler-Maruyama paths of dX = b(X, t) dt + Σ dW.

    ``hit`` maps states ``(n, d)`` to a boolean array ``(n,)``. Only paths still running are advanced. Paths
    that have not hit after ``max_steps`` steps get τ = ``inf`` (so the caller sees the censoring instead of a
    biased number). A path that starts inside the target has τ = 0.
    """
    _check_steps(dt, max_steps, None)
    x, _ = _as_paths(x0)
    n, d = x.shape
    s, m = _noise_matrix(sigma, d)
    sqdt = np.sqrt(dt)
    tau = np.full(n, np.inf)
    alive = ~np.asarray(hit(x), dtype=bool)
    tau[~alive] = 0.0
    idx = np.flatnonzero(alive)
    xa = x[idx]
    # Noise is drawn in blocks of steps for the paths alive at the block start; finished paths are dropped at
    # the end of each block (they keep moving, unobserved, until then).
    block = 64
    for k0 in range(0, max_steps, block):
        if idx.size == 0:
            break
        nb = min(block, max_steps - k0)
        xi = rng.standard_normal((nb, idx.size, m))
        noise = sqdt * (xi @ cast(np.ndarray, s).T if np.ndim(s) == 2 else s * xi)
        running = np.ones(idx.size, dtype=bool)
        for j in range(nb):
            xa = xa + drift(xa, (k0 + j) * dt) * dt + noise[j]
            done = np.asarray(hit(xa), dtype=bool) & running
            if done.any():
                tau[idx[done]] = (k0 + j + 1) * dt
                running &= ~done
        idx, xa = idx[running], xa[running]
    return tau


@dataclass
class FastSlowPath:
    """Recorded slow ``x`` and fast ``y`` variables, each ``(n_rec, n_paths, d)`` (or without ``d``)."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray


def entropy_sgd_fast_slow(
    grad_f: Gradient,
    x0: ArrayLike,
    y0: ArrayLike | None = None,
    *,
    gamma: float,
    beta: float,
    eps: float,
    ds: float,
    n_steps: int,
    rng: np.random.Generator,
    record_every: int | None = None,
) -> FastSlowPath:
    """The Entropy-SGD fast-slow system (REFERENCE §1), Euler-Maruyama with step ds:

        dx = −γ⁻¹ (x − y) ds,
        dy = −ε⁻¹ [∇f(y) + γ⁻¹ (y − x)] ds + √(2β⁻¹/ε) dW.

    The fast variable relaxes on the time scale ε, so ds must resolve it: ``ds`` must satisfy
    ds/(εγ) < 1 (otherwise the coupling term alone makes the scheme oscillate) — violated requests raise
    ``ValueError``. The bias of the scheme in the fast invariant measure is O(ds/ε), so use ds ≪ ε.
    ``y0`` defaults to ``x0``.
    """
    for name, v in (("gamma", gamma), ("beta", beta), ("eps", eps)):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be > 0, got {v}")
    _check_steps(ds, n_steps, record_every)
    if ds / (eps * gamma) >= 1.0:
        raise ValueError(f"ds={ds} too large for eps={eps}, gamma={gamma}: need ds < eps*gamma")
    x, flat = _as_paths(x0)
    y = x.copy() if y0 is None else _as_paths(y0)[0].copy()
    if y.shape != x.shape:
        raise ValueError(f"y0 shape {y.shape} differs from x0 shape {x.shape}")
    noise_scale = np.sqrt(2.0 * ds / (beta * eps))
    ts, xs, ys = [0.0], [x.copy()], [y.copy()]
    for k in range(n_steps):
        dx = -(x - y) / gamma
        dy = -(grad_f(y) + (y - x) / gamma) / eps
        x = x + dx * ds
        y = y + dy * ds + noise_scale * rng.standard_normal(y.shape)
        last = k + 1 == n_steps
        if last or (record_every is not None and (k + 1) % record_every == 0):
            ts.append((k + 1) * ds)
            xs.append(x.copy())
            ys.append(y.copy())
    xarr, yarr = np.stack(xs), np.stack(ys)
    if flat:
        xarr, yarr = xarr[..., 0], yarr[..., 0]
    return FastSlowPath(t=np.asarray(ts), x=xarr, y=yarr)
