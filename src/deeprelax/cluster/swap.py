r"""The swap move: take a centre from where it is least needed and split the cluster that needs one most.

The characteristic error of a k-means local minimum on touching clusters of unequal size is a *misplaced
pair*: two centres share one cluster while one centre sits between two. The backward-Euler exploration
cannot see it: its instability acts on centres holding a large share :math:`p_i` of the data, and a
centre on a merged pair of small clusters is as light as a correct centre on one big cluster
(docs/kmeans.md, round 2). The swap looks at the energy instead of the masses. For the centres :math:`x`
and data :math:`y_j` (weights :math:`w_j`), with :math:`d_{1j}, d_{2j}` the squared distances of
:math:`y_j` to its nearest and second-nearest centre and :math:`C_i` the points nearest to :math:`x_i`:

.. math::

    \mathrm{cost}_a = \sum_{j \in C_a} w_j (d_{2j} - d_{1j})
    \quad \text{(the energy added by removing } x_a\text{, the other centres fixed)},

    \mathrm{gain}_b = \sum_{j \in C_b} w_j d_{1j} - \min_{\pm} \sum_{j \in C_b} w_j |y_j - m_\pm|^2
    \quad \text{(the energy saved by two centres } m_\pm \text{ in } C_b\text{)},

with :math:`m_\pm` the means of the two halves of :math:`C_b` cut through its mean perpendicular to its
principal axis (the first step of 2-means, :math:`\ge` 2/π of the top variance for a Gaussian, all of
the separation for two merged clusters). The move that removes :math:`x_a` and puts :math:`m_\pm` in
place of :math:`x_b` changes the energy by :math:`\Delta_{ab} \approx \mathrm{cost}_a - \mathrm{gain}_b`
(exact up to the points of :math:`C_a` whose second-nearest centre is :math:`x_b`). :func:`best_swap`
returns the move of least :math:`\Delta` when the *exact* energy after it is lower, else ``None``. At a
correct solution no move lowers the energy (removing a centre costs a whole cluster's separation, and
splitting a Gaussian cluster saves at most its top variance); at a misplaced pair the move of the pair
does. This is the "remove one centre, divide another" step of I-k-means-+ (Ismkhan, *Pattern
Recognition* 79, 2018) and a single-swap local search (Kanungo et al., *Computational Geometry* 28,
2004), with the gain of a split from its principal axis rather than from trial runs.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from deeprelax.cluster.energy import squared_distances

__all__ = ["best_swap", "swap_scores"]


def _onehot(labels: NDArray[np.intp], n_labels: int) -> NDArray[np.float64]:
    """``H[i, j] = 1`` iff row ``j`` has label ``i``: ``H @ A`` sums the rows of ``A`` per label."""
    H = np.zeros((n_labels, len(labels)))
    H[labels, np.arange(len(labels))] = 1.0
    return H


def swap_scores(
    Y: NDArray[np.float64],
    x: NDArray[np.float64],
    w: NDArray[np.float64] | None = None,
    *,
    power_steps: int = 10,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    r"""``(cost, gain, halves)``: :math:`\mathrm{cost}_a`, :math:`\mathrm{gain}_b` (``-inf`` for a cluster
    that cannot be cut) and the two centres :math:`m_\pm` of every cluster's cut, ``(K, 2, d)``.

    ``Y`` the rows ``(n, d)``, ``x`` the centres ``(K, d)`` with ``K >= 2``, ``w`` optional row weights.
    The principal axes of all clusters come from ``power_steps`` power iterations at once, started from
    each cluster's farthest point (vectorised over the clusters: no loop over them).
    """
    K, d = x.shape
    w = np.ones(len(Y)) if w is None else np.asarray(w, dtype=np.float64)
    D = squared_distances(Y, x)
    two = np.argpartition(D, 1, axis=1)[:, :2]
    d12 = np.take_along_axis(D, two, axis=1)
    first = d12[:, 0] <= d12[:, 1]
    labels = np.where(first, two[:, 0], two[:, 1])
    d1, d2 = d12.min(axis=1), d12.max(axis=1)
    cost = np.bincount(labels, weights=w * (d2 - d1), minlength=K)
    sse = np.bincount(labels, weights=w * d1, minlength=K)
    H = _onehot(labels, K)
    W, S = H @ w, H @ (w[:, None] * Y)
    mean = S / np.maximum(W, np.finfo(float).tiny)[:, None]
    Q = Y - mean[labels]
    # power iteration for every cluster's top eigenvector of sum_j w_j q_j q_j^T, from its farthest point
    r2 = np.einsum("ij,ij->i", Q, Q) * (w > 0)
    far = np.zeros(K, dtype=np.intp)
    np.maximum.at(far_r2 := np.full(K, -1.0), labels, r2)
    hit = r2 == far_r2[labels]
    far[labels[hit]] = np.flatnonzero(hit)
    u = Q[far]
    for _ in range(power_steps):
        u = H @ (Q * (w * np.einsum("ij,ij->i", Q, u[labels]))[:, None])
        u /= np.maximum(np.linalg.norm(u, axis=1), np.finfo(float).tiny)[:, None]
    side = (np.einsum("ij,ij->i", Q, u[labels]) > 0).astype(np.intp)
    half = 2 * labels + side
    H2 = _onehot(half, 2 * K)
    Wh, Sh = H2 @ w, H2 @ (w[:, None] * Y)
    ok = Wh > 0
    halves = np.repeat(x[:, None, :], 2, axis=1).reshape(2 * K, d)
    halves[ok] = Sh[ok] / Wh[ok, None]
    # sum_j w_j |y_j - m|^2 over a half = sum_j w_j |y_j - mean_b|^2 - W_half |m - mean_b|^2
    within = np.bincount(labels, weights=w * np.einsum("ij,ij->i", Q, Q), minlength=K)
    shift = np.sum((halves.reshape(K, 2, d) - mean[:, None, :]) ** 2, axis=2)
    split_sse = within - np.sum(Wh.reshape(K, 2) * shift, axis=1)
    cuttable = ok.reshape(K, 2).all(axis=1)
    gain = np.where(cuttable, sse - split_sse, -np.inf)
    return cost, gain, halves.reshape(K, 2, d)


def best_swap(
    Y: NDArray[np.float64], x: NDArray[np.float64], w: NDArray[np.float64] | None = None
) -> NDArray[np.float64] | None:
    r"""The centres after the swap of least :math:`\mathrm{cost}_a - \mathrm{gain}_b` (``a != b``), when that
    is negative and the exact (weighted) energy on ``Y`` after the swap is lower; else ``None``.

    :math:`x_a` and :math:`x_b` are replaced by :math:`m_-` and :math:`m_+`; the other centres keep their
    places (and indices).
    """
    if len(x) < 2:
        return None
    cost, gain, halves = swap_scores(Y, x, w)
    delta = cost[:, None] - gain[None, :]
    np.fill_diagonal(delta, np.inf)
    a, b = np.unravel_index(int(np.argmin(delta)), delta.shape)
    if not delta[a, b] < 0:
        return None
    new = x.copy()
    new[a], new[b] = halves[b]
    ww = np.ones(len(Y)) if w is None else np.asarray(w, dtype=np.float64)
    before = float(ww @ squared_distances(Y, x).min(axis=1))
    after = float(ww @ squared_distances(Y, new).min(axis=1))
    return new if after < before else None
