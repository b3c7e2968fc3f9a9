r"""Minibatch gradient noise of the 1-mean k-means energy (seed 000, "Derivation of Stochastic Gradient").

For data y_1, …, y_N and f(x) = (1/2N) Σ_i |x − y_i|², the full and minibatch gradients are

    ∇f(x) = x − ȳ,      ∇f_mb(x) = x − ȳ_I,      ȳ_I = (1/|I|) Σ_{i∈I} y_i,

so the gradient noise ∇f(x) − ∇f_mb(x) = ȳ_I − ȳ does not depend on x. With I drawn uniformly *with
replacement* it has mean 0 and covariance exactly Σ_y/|I| (Σ_y the population covariance of the data, ddof =
0), and by the central limit theorem it is ≈ N(0, σ²/|I|). Drawn *without replacement* the covariance
carries the finite-population factor (N − |I|)/(N − 1).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _data(y: ArrayLike) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] < 2:
        raise ValueError("data must have shape (N,) or (N, d) with N >= 2")
    return y


def kmeans1_gradient_noise(
    y: ArrayLike,
    batch_size: int,
    n_draws: int,
    rng: np.random.Generator,
    *,
    replace: bool = True,
) -> np.ndarray:
    """Samples of ∇f(x) − ∇f_mb(x) = ȳ_I − ȳ for ``n_draws`` independent minibatches I of size ``batch_size``.

    Returns shape ``(n_draws, d)`` (``(n_draws,)`` for 1-D data).
    """
    flat = np.asarray(y).ndim == 1
    Y = _data(y)
    n = Y.shape[0]
    if int(batch_size) != batch_size or batch_size < 1 or (not replace and batch_size > n):
        raise ValueError(
            f"batch_size must be an integer in [1, N={n}] (any >= 1 with replacement), got {batch_size}"
        )
    if int(n_draws) != n_draws or n_draws < 1:
        raise ValueError(f"n_draws must be a positive integer, got {n_draws}")
    if replace:
        idx = rng.integers(0, n, size=(n_draws, batch_size))
    else:
        # a uniformly random subset per draw: the batch_size smallest of N i.i.d. uniform keys
        idx = np.argpartition(rng.random((n_draws, n)), batch_size - 1, axis=1)[:, :batch_size]
    noise = Y[idx].mean(axis=1) - Y.mean(axis=0)
    return noise[:, 0] if flat else noise


def kmeans1_noise_covariance(y: ArrayLike, batch_size: int, *, replace: bool = True) -> np.ndarray:
    """Exact covariance of ȳ_I − ȳ: Σ_y/|I| with replacement, Σ_y/|I| · (N − |I|)/(N − 1) without.

    Σ_y is the population covariance (ddof = 0). Returns a scalar variance for 1-D data, a d×d matrix
    otherwise.
    """
    flat = np.asarray(y).ndim == 1
    Y = _data(y)
    n = Y.shape[0]
    if batch_size < 1 or (not replace and batch_size > n):
        raise ValueError(f"batch_size must be in [1, N={n}], got {batch_size}")
    c = np.atleast_2d(np.cov(Y.T, ddof=0)) / batch_size
    if not replace:
        c = c * (n - batch_size) / (n - 1)
    return c[0, 0] if flat else c
