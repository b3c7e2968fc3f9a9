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

    \mathrm{gain}_b = \sum_{j \in C_b} w_j d_{1j} - \sum_{\pm} \sum_{j \in C_b^\pm} w_j |y_j - m_\pm|^2
    \quad \text{(the energy saved by two centres } m_\pm \text{ in } C_b\text{)},

with :math:`C_b^\pm` the two halves of :math:`C_b` cut through its mean perpendicular to its principal axis
and :math:`m_\pm` their means (for a Gaussian cluster the cut saves :math:`2/\pi` of its top variance times
its mass; for two merged clusters, about all of their separation). The move that removes :math:`x_a` and
puts :math:`m_\pm` in place of :math:`x_b` changes the energy by
:math:`\Delta_{ab} \approx \mathrm{cost}_a - \mathrm{gain}_b` (exact up to the points of :math:`C_a`
whose second-nearest centre is :math:`x_b`).
:func:`best_swap` returns the move of least :math:`\Delta` when it is negative and the *exact* energy after
it is lower, else ``None``. At a correct solution on separated clusters no move is negative (removing a
centre costs a whole cluster's separation, and cutting a cluster saves at most its top variance times its
mass); at a misplaced pair the pair's move is (on the benchmark families, the sign of the least
:math:`\Delta` told a missed run from a correct one in 240 of 240 runs: ``bench/kmeans_swap_diagnosis.py``).
This is the "remove one centre, divide another" step of I-k-means-+ (Ismkhan, *Pattern Recognition* 79,
2018) and a single-swap local search (Kanungo et al., *Computational Geometry* 28, 2004), with the gain of a
split from its principal axis rather than from trial runs.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from deeprelax.cluster.energy import squared_distances

__all__ = ["best_swap", "swap_scores"]

#: power iterations for the principal axes (from each cluster's farthest point; the cut's gain is exact
#: for the axis reached, so fewer steps only make the move more conservative)
POWER_STEPS = 10


def _onehot(labels: NDArray[np.intp], n_labels: int) -> NDArray[np.float64]:
    """``H[i, j] = 1`` iff row ``j`` has label ``i``: ``H @ A`` sums the rows of ``A`` per label."""
    H = np.zeros((n_labels, len(labels)))
    H[labels, np.arange(len(labels))] = 1.0
    return H


def _assign(
    Y: NDArray[np.float64], x: NDArray[np.float64], w: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``(labels, d1, cost, sse)``: nearest centre and squared distance to it per row, cost_a, and the
    energy sum_j w_j d1_j of every cluster about its centre."""
    K = len(x)
    D = squared_distances(Y, x)
    labels = np.argmin(D, axis=1)
    d12 = np.partition(D, 1, axis=1)[:, :2]
    d1, d2 = d12[:, 0], d12[:, 1]
    cost = np.bincount(labels, weights=w * (d2 - d1), minlength=K).astype(np.float64)
    sse = np.bincount(labels, weights=w * d1, minlength=K).astype(np.float64)
    return labels, d1, cost, sse


def _cuts(
    Y: NDArray[np.float64],
    x: NDArray[np.float64],
    w: NDArray[np.float64],
    labels: NDArray[np.intp],
    sse: NDArray[np.float64],
    which: NDArray[np.bool_],
    power_steps: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(gain, halves)`` of the principal-axis cut of the clusters in ``which`` (gain -inf elsewhere)."""
    K, d = x.shape
    gain = np.full(K, -np.inf)
    halves = np.repeat(x[:, None, :], 2, axis=1)
    ids = np.flatnonzero(which)
    if len(ids) == 0:
        return gain, halves
    compact = np.full(K, -1)
    compact[ids] = np.arange(len(ids))
    rows = np.flatnonzero(which[labels] & (w > 0))
    Yr, wr, lr = Y[rows], w[rows], compact[labels[rows]]
    k = len(ids)
    H = _onehot(lr, k)
    W = H @ wr
    mean = (H @ (wr[:, None] * Yr)) / np.maximum(W, np.finfo(float).tiny)[:, None]
    Q = Yr - mean[lr]
    # power iteration for every cluster's top eigenvector of sum_j w_j q_j q_j^T, from its farthest point
    r2 = np.einsum("ij,ij->i", Q, Q)
    far = np.argmax(np.where(H > 0, r2[None, :], -1.0), axis=1)
    u = Q[far]
    for _ in range(power_steps):
        u = H @ (Q * (wr * np.einsum("ij,ij->i", Q, u[lr]))[:, None])
        u /= np.maximum(np.linalg.norm(u, axis=1), np.finfo(float).tiny)[:, None]
    side = (np.einsum("ij,ij->i", Q, u[lr]) > 0).astype(np.intp)
    H2 = _onehot(2 * lr + side, 2 * k)
    Wh = H2 @ wr
    Sh = H2 @ (wr[:, None] * Yr)
    ok = (Wh > 0).reshape(k, 2).all(axis=1)
    m = Sh.reshape(k, 2, d) / np.maximum(Wh, np.finfo(float).tiny).reshape(k, 2, 1)
    # sum_j w_j |y_j - m_side|^2 = sum_j w_j |y_j - mean_b|^2 - sum_side W_side |m_side - mean_b|^2
    within = H @ (wr * r2)
    split = within - np.sum(Wh.reshape(k, 2) * np.sum((m - mean[:, None, :]) ** 2, axis=2), axis=1)
    gain[ids[ok]] = sse[ids[ok]] - split[ok]
    halves[ids[ok]] = m[ok]
    return gain, halves


def swap_scores(
    Y: NDArray[np.float64],
    x: NDArray[np.float64],
    w: NDArray[np.float64] | None = None,
    *,
    power_steps: int = POWER_STEPS,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    r"""``(cost, gain, halves)``: :math:`\mathrm{cost}_a`, :math:`\mathrm{gain}_b` (``-inf`` for a cluster
    that cannot be cut) and the two centres :math:`m_\pm` of every cluster's cut, ``(K, 2, d)``.

    ``Y`` the rows ``(n, d)``, ``x`` the centres ``(K, d)`` with ``K >= 2``, ``w`` optional row weights.
    The principal axes of all clusters come from ``power_steps`` power iterations at once, started from
    each cluster's farthest point (vectorised over the clusters: no loop over them).
    """
    w = np.ones(len(Y)) if w is None else np.asarray(w, dtype=np.float64)
    labels, _, cost, sse = _assign(Y, x, w)
    gain, halves = _cuts(Y, x, w, labels, sse, np.ones(len(x), dtype=bool), power_steps)
    return cost, gain, halves


def best_swap(
    Y: NDArray[np.float64], x: NDArray[np.float64], w: NDArray[np.float64] | None = None
) -> NDArray[np.float64] | None:
    r"""The centres after the swap of least :math:`\mathrm{cost}_a - \mathrm{gain}_b` (``a != b``), when that
    is negative and the exact (weighted) energy on ``Y`` after the swap is lower; else ``None``.

    :math:`x_a` and :math:`x_b` are replaced by :math:`m_-` and :math:`m_+`; the other centres keep their
    places (and indices). Only the clusters that could pay are cut: since :math:`\mathrm{gain}_b \le
    \sum_{j \in C_b} w_j d_{1j}` (a cut cannot save more than the cluster's whole energy), a cluster whose
    energy is below the least removal cost among the other centres is skipped; the result is the same as
    with every cluster cut (tested), and at a well-separated solution no cut is computed at all.
    """
    K = len(x)
    if K < 2:
        return None
    w = np.ones(len(Y)) if w is None else np.asarray(w, dtype=np.float64)
    labels, d1, cost, sse = _assign(Y, x, w)
    a1, a2 = np.argsort(cost, kind="stable")[:2]
    cheapest_other = np.where(np.arange(K) == a1, cost[a2], cost[a1])
    gain, halves = _cuts(Y, x, w, labels, sse, sse > cheapest_other, POWER_STEPS)
    delta = cost[:, None] - gain[None, :]
    np.fill_diagonal(delta, np.inf)
    a, b = np.unravel_index(int(np.argmin(delta)), delta.shape)
    if not delta[a, b] < 0:
        return None
    new = x.copy()
    new[a], new[b] = halves[b]
    after = float(w @ squared_distances(Y, new).min(axis=1))
    return new if after < float(w @ d1) else None
