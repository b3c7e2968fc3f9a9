r"""n coupled particles on a 1-D landscape: SGD, Elastic-SGD and Parle side by side (numpy, vectorised).

Each of R independent runs has n particles x_a. Per outer step (η the outer step, β the inverse
temperature, ξ ~ N(0, 1) independent):

* SGD (independent Langevin particles):     x_a ← x_a − η f'(x_a) + √(2η/β) ξ
* Elastic-SGD:                              x_a ← x_a − η (f'(x_a) + ρ (x_a − x̄)) + √(2η/β) ξ
* Parle (L inner Langevin steps around x_a, exponential running mean μ_a, then the outer step)::

      y ← y − η' (f'(y) + γ (y − x_a)) + √(2η'/β) ξ,   μ ← α μ + (1 − α) y      (L times, y = μ = x_a first)
      x_a ← x_a − η_out ((x_a − μ_a) + ρ (x_a − x̄))

* Parle with the exact Gibbs mean: μ_a = ⟨y⟩ under ρ(y; x_a) ∝ exp(−β f(y) − βγ (y − x_a)²/2), by quadrature
  (:func:`deeprelax.pde.hopf_cole.gibbs_mean_1d`) — gradient descent on
  Σ_a f_{1/γ}(x_a) + (ρ/2) Σ_a |x_a − x̄|².

x̄ = (1/n) Σ_b x_b is the reference (what the replicas communicate). The same update rules as
``deeprelax.optim.ElasticSGD`` / ``Parle`` with momentum 0, written for many small problems at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from deeprelax.pde.hopf_cole import gibbs_mean_1d

Array = np.ndarray


@dataclass
class ParticleRun:
    """Trajectories: ``x`` of shape (steps + 1, R, n); the reference is ``x.mean(axis=2)``."""

    method: str
    x: Array

    @property
    def reference(self) -> Array:
        return self.x.mean(axis=2)


def simulate(
    method: str,
    fprime: Callable[[Array], Array],
    x0: Array,
    *,
    steps: int,
    lr: float,
    beta: float,
    rho: float = 0.0,
    gamma: float = 1.0,
    L: int = 20,
    inner_lr: float = 0.05,
    alpha: float = 0.75,
    f: Callable[[Array], Array] | None = None,
    y_grid: Array | None = None,
    rng: np.random.Generator,
) -> ParticleRun:
    """Run ``method`` ∈ {"sgd", "elastic-sgd", "parle", "parle-exact"} from ``x0`` of shape (R, n)."""
    if method not in ("sgd", "elastic-sgd", "parle", "parle-exact"):
        raise ValueError(f"method must be sgd, elastic-sgd, parle or parle-exact, got {method!r}")
    if method == "parle-exact" and (f is None or y_grid is None):
        raise ValueError("parle-exact needs f and y_grid (the quadrature of the Gibbs mean)")
    x = np.array(x0, dtype=float)
    traj = [x.copy()]
    noise, inner_noise = np.sqrt(2 * lr / beta), np.sqrt(2 * inner_lr / beta)
    for _ in range(steps):
        xbar = x.mean(axis=1, keepdims=True)
        if method == "sgd":
            x = x - lr * fprime(x) + noise * rng.standard_normal(x.shape)
        elif method == "elastic-sgd":
            x = x - lr * (fprime(x) + rho * (x - xbar)) + noise * rng.standard_normal(x.shape)
        else:
            if method == "parle":
                y, mu = x.copy(), x.copy()
                for _k in range(L):
                    y = (
                        y
                        - inner_lr * (fprime(y) + gamma * (y - x))
                        + inner_noise * rng.standard_normal(x.shape)
                    )
                    mu = alpha * mu + (1 - alpha) * y
            else:
                mu = gibbs_mean_1d(f, x, 1.0 / gamma, beta, y_grid)  # type: ignore[arg-type]
            x = x - lr * ((x - mu) + rho * (x - xbar))
        traj.append(x.copy())
    return ParticleRun(method, np.stack(traj))
