r"""The k-means energy, its (mini-batch) gradient and the nearest-centre assignment (numpy only).

Normalisation used throughout :mod:`deeprelax.cluster` (the seed's "motivating example" normalisation):

.. math::

    f(x) = \frac{1}{2N} \sum_{j=1}^{N} \min_{1 \le i \le K} |x_i - y_j|^2 ,
    \qquad x = (x_1, \dots, x_K) \in \mathbb{R}^{K \times d},

for data :math:`y_1, \dots, y_N`. scikit-learn's ``inertia_`` is the un-normalised sum of squared distances,
so ``inertia = 2 N f``. Away from the (measure-zero) set where a point is equidistant from two centres,
with :math:`C_i(x) = \{j : i = \arg\min_l |x_l - y_j|\}`, :math:`n_i = |C_i|` and :math:`c_i` the mean of
the points of :math:`C_i`,

.. math::

    \nabla_{x_i} f(x) = \frac{1}{N} \sum_{j \in C_i(x)} (x_i - y_j) = p_i\,(x_i - c_i), \qquad p_i = n_i / N .

The mini-batch gradient replaces the data by a mini-batch :math:`I` (drawn uniformly with replacement):
:math:`\nabla_{x_i} f_I(x) = \frac{1}{|I|}\sum_{j \in I \cap C_i(x)} (x_i - y_j)`, an unbiased estimate of
:math:`\nabla f(x)` for every fixed :math:`x`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["assign", "cluster_sums", "kmeans_energy", "kmeans_gradient", "inertia_to_energy"]


def assign(X: NDArray[np.floating], centers: NDArray[np.floating]) -> tuple[NDArray[np.intp], NDArray]:
    """Nearest centre of every row of ``X`` and the squared distance to it.

    Returns ``(labels, sq_dist)`` with ``labels[j] = argmin_i |x_i - y_j|^2`` (ties: lowest index).
    Distances are computed as ``|y|^2 - 2 y.x + |x|^2`` (one matrix product, no loop over points) and
    clipped at 0 against round-off.
    """
    X = np.asarray(X)
    centers = np.asarray(centers)
    cross = X @ centers.T
    half = 0.5 * np.einsum("ij,ij->i", centers, centers)
    labels = np.argmax(cross - half, axis=1)
    sq = np.einsum("ij,ij->i", X, X) - 2.0 * cross[np.arange(len(X)), labels] + 2.0 * half[labels]
    return labels, np.maximum(sq, 0.0)


def squared_distances(X: NDArray[np.float64], C: NDArray[np.float64]) -> NDArray[np.float64]:
    """Squared distances ``(n, K)`` of the rows of ``X`` to the centres ``C`` by ``|y|^2 - 2 y.c + |c|^2``,
    clipped at 0."""
    sq = np.einsum("ij,ij->i", X, X)[:, None] - 2.0 * X @ C.T + np.einsum("ij,ij->i", C, C)[None, :]
    return np.maximum(sq, 0.0)


def cluster_sums(
    X: NDArray[np.floating], labels: NDArray[np.intp], n_clusters: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(n_i, S_i)``: the number of rows with label ``i`` and the sum of those rows, for ``i < n_clusters``.

    Vectorised: :func:`numpy.bincount` per feature for one or two features, otherwise one matrix product
    :math:`S = H X` with the one-hot matrix :math:`H` (:math:`H_{ij} = 1` iff row :math:`j` has label
    :math:`i`; faster for more features); there is no loop over the rows.
    """
    n, d = X.shape
    counts = np.bincount(labels, minlength=n_clusters).astype(np.float64)
    if d <= 2:
        sums = np.empty((n_clusters, d))
        for k in range(d):
            sums[:, k] = np.bincount(labels, weights=X[:, k], minlength=n_clusters)
    else:
        onehot = np.zeros((n_clusters, n))
        onehot[labels, np.arange(n)] = 1.0
        sums = onehot @ X
    return counts, sums


def kmeans_energy(X: ArrayLike, centers: ArrayLike) -> float:
    r"""The normalised energy :math:`f(x) = \frac{1}{2N}\sum_j \min_i |x_i - y_j|^2` (``inertia / (2N)``)."""
    X = np.asarray(X, dtype=np.float64)
    _, sq = assign(X, np.asarray(centers, dtype=np.float64))
    return float(sq.sum() / (2 * len(X)))


def inertia_to_energy(inertia: float, n_samples: int) -> float:
    """Convert scikit-learn's ``inertia_`` (sum of squared distances) to the normalised energy ``f``."""
    return float(inertia) / (2 * int(n_samples))


def kmeans_gradient(X: ArrayLike, centers: ArrayLike) -> NDArray[np.float64]:
    r"""The gradient on the rows of ``X``: :math:`\nabla_{x_i} f(x) = \frac{1}{N}\sum_{j\in C_i(x)}(x_i - y_j)
    = (n_i x_i - S_i)/N`.

    Called with a mini-batch ``X = Y[I]`` this is the mini-batch gradient :math:`\nabla f_I`.
    """
    X = np.asarray(X, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    labels, _ = assign(X, centers)
    counts, sums = cluster_sums(X, labels, len(centers))
    return (counts[:, None] * centers - sums) / len(X)
