r"""SGD as an Euler-Maruyama scheme (seed 004; REFERENCE §1).

Minibatch SGD on a finite sum f = (1/N) Σ_i f_i with learning rate η,

    θ_{k+1} = θ_k − η ∇f_{I_k}(θ_k),      ∇f_{I}(θ) = (1/|I|) Σ_{i∈I} ∇f_i(θ),  I_k uniform with replacement,

is θ_{k+1} = θ_k − η∇f(θ_k) + η(∇f − ∇f_{I_k})(θ_k): the Euler-Maruyama scheme with time step dt = η for

    dθ = −∇f(θ) dt + √(η Σ(θ)) dB,      Σ = Cov(∇f_I) (the minibatch gradient covariance),

since the noise increment η(∇f − ∇f_I) has covariance η²Σ = (ηΣ)·dt. For Σ = σ I the stationary density of
the SDE is ∝ exp(−2f/(ησ)) (temperature ησ/2). For the quadratic f = ½λθ² the chain is the AR(1) recursion
θ_{k+1} = (1 − ηλ)θ_k + noise, whose stationary variance is ησ/(λ(2 − ηλ)) against ησ/(2λ) for the SDE: the
Euler-Maruyama picture is exact only to first order in η.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from deeprelax.pde.sde import SDEPath

MinibatchGradient = Callable[[np.ndarray, np.ndarray], np.ndarray]


def sgd(
    grad_minibatch: MinibatchGradient,
    x0: ArrayLike,
    *,
    lr: float,
    n_steps: int,
    n_data: int,
    batch_size: int,
    rng: np.random.Generator,
    record_every: int | None = None,
) -> SDEPath:
    """Run independent SGD chains θ_{k+1} = θ_k − η ∇f_{I_k}(θ_k), one minibatch per chain and step.

    ``grad_minibatch(theta, idx)`` gets ``theta`` of shape ``(n_chains, ...)`` and ``idx`` of shape
    ``(n_chains, batch_size)`` (indices into the data, drawn uniformly *with replacement*) and returns the
    minibatch gradients, shape of ``theta``. Records like :func:`deeprelax.pde.sde.euler_maruyama`
    (time t = k·η).
    """
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be > 0, got {lr}")
    for name, v in (("n_data", n_data), ("batch_size", batch_size)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v}")
    if int(n_steps) != n_steps or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer, got {n_steps}")
    if record_every is not None and (int(record_every) != record_every or record_every < 1):
        raise ValueError(f"record_every must be a positive integer or None, got {record_every}")
    theta = np.array(x0, dtype=float)
    n_chains = theta.shape[0]
    ts, xs = [0.0], [theta.copy()]
    for k in range(n_steps):
        idx = rng.integers(0, n_data, size=(n_chains, batch_size))
        theta = theta - lr * grad_minibatch(theta, idx)
        if k + 1 == n_steps or (record_every is not None and (k + 1) % record_every == 0):
            ts.append((k + 1) * lr)
            xs.append(theta.copy())
    return SDEPath(t=np.asarray(ts), x=np.stack(xs))


def sgd_stationary_density(x: ArrayLike, V: ArrayLike, *, lr: float, sigma: float) -> np.ndarray:
    """The SDE's stationary density ρ(x) ∝ exp(−2V(x)/(ησ)) on a uniform grid ``x`` (values ``V``), normalised
    so that its trapezoid integral is 1."""
    if not (lr > 0 and sigma > 0):
        raise ValueError(f"lr and sigma must be > 0, got lr={lr}, sigma={sigma}")
    x = np.asarray(x, dtype=float)
    e = -2.0 * np.asarray(V, dtype=float) / (lr * sigma)
    rho = np.exp(e - e.max())
    return rho / np.trapezoid(rho, x)


def ou_stationary_variance(
    lr: float, sigma: float, curvature: float = 1.0, *, discrete: bool = True
) -> float:
    """Stationary variance of SGD on f = ½λθ² with gradient-noise variance σ:

    discrete chain θ_{k+1} = (1 − ηλ)θ_k − η ξ_k, Var ξ = σ:   ησ / (λ(2 − ηλ))   (needs 0 < ηλ < 2);
    continuum SDE dθ = −λθ dt + √(ησ) dB:                     ησ / (2λ).
    """
    if not (lr > 0 and sigma >= 0 and curvature > 0):
        raise ValueError("need lr > 0, sigma >= 0, curvature > 0")
    if not discrete:
        return lr * sigma / (2 * curvature)
    if not lr * curvature < 2:
        raise ValueError(f"lr*curvature = {lr * curvature} >= 2: the SGD chain is unstable")
    return lr * sigma / (curvature * (2 - lr * curvature))
