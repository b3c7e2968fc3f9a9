r"""A proof that a given partition is the *global* minimum of the k-means energy (separated discs).

Let the data be split into groups :math:`G_1, \dots, G_K` (the candidate optimal partition, one group per
centre), with means :math:`\mu_g`, :math:`r_y = |y - \mu_g|` for :math:`y \in G_g`, and candidate value

.. math::  E^* = \sum_g \sum_{y \in G_g} |y - \mu_g|^2   \qquad (\text{inertia; } f^* = E^*/(2N)).

**Claim.** If radii :math:`D_g > 0` satisfy

1. :math:`L_g(D_g) := \sum_{y \in G_g} (D_g - r_y)_+^2 > E^*` for every :math:`g`,
2. :math:`|\mu_g - \mu_h| \ge D_g + D_h` for every :math:`g \ne h`,
3. :math:`r_y + D_g \le |y - \mu_h| - D_h` for every :math:`g \ne h` and every :math:`y \in G_g`,

then every set of :math:`K` centres :math:`C` has inertia
:math:`E(C) = \sum_y \min_{c\in C}|y - c|^2 \ge E^*`,
with equality only at :math:`C = \{\mu_g\}`. So :math:`E^*` is the global minimum and the means are the unique
global minimiser.

*Proof.* Let :math:`E(C) \le E^*`. (i) If no centre lay in the open disc :math:`B_g = B(\mu_g, D_g)`, every
:math:`y \in G_g` would be at distance :math:`\ge D_g - r_y` from every centre, so
:math:`E(C) \ge L_g(D_g) > E^*`; hence every :math:`B_g` holds a centre. (ii) The :math:`K` open discs are
pairwise disjoint by 2, and there are :math:`K` centres, so each disc holds exactly one, :math:`c_g`.
(iii) For :math:`y \in G_g`: :math:`|y - c_g| < r_y + D_g \le |y - \mu_h| - D_h < |y - c_h|` by 3, so every
point of :math:`G_g` is nearest to :math:`c_g` and :math:`E(C) = \sum_g\sum_{y\in G_g}|y - c_g|^2
= E^* + \sum_g |G_g|\,|c_g - \mu_g|^2 \ge E^*`. :math:`\square`

The radii are the smallest that satisfy 1 (:math:`L_g` is continuous and increasing; root by
:func:`scipy.optimize.brentq`, then enlarged by a relative :math:`10^{-9}` and 1 re-checked), and 2-3 are
checked exactly on every point (vectorised). The certificate is sufficient, not necessary: it needs groups
that are far apart compared with their spread (about :math:`2 r_{\max} + D_g + D_h`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

__all__ = ["Certificate", "certify_global_minimum", "brute_force_kmeans"]


@dataclass
class Certificate:
    """Outcome of :func:`certify_global_minimum`.

    ``certified`` is True only if all three conditions hold; ``inertia`` (:math:`E^*`) and ``energy``
    (:math:`f^* = E^*/(2N)`) are the candidate's values (the global minimum when certified); ``radii`` are the
    :math:`D_g`; ``disc_margin`` = :math:`\\min_{g\\ne h} |\\mu_g-\\mu_h| - D_g - D_h` and ``point_margin`` =
    :math:`\\min_{g \\ne h, y\\in G_g} |y-\\mu_h| - D_h - r_y - D_g` (both must be :math:`\\ge 0`).
    """

    certified: bool
    inertia: float
    energy: float
    centers: NDArray[np.float64]
    radii: NDArray[np.float64]
    disc_margin: float
    point_margin: float
    reasons: list[str] = field(default_factory=list)


def certify_global_minimum(X: ArrayLike, labels: ArrayLike) -> Certificate:
    """Try to prove that the partition ``labels`` of ``X`` is the global k-means minimum (module docstring).

    ``labels`` must take the values ``0 .. K-1``, each at least once; ``K`` is the number of centres.
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    if X.ndim != 2 or labels.shape != (len(X),):
        raise ValueError(f"X must be 2-D and labels 1-D of the same length, got {X.shape} and {labels.shape}")
    K = int(labels.max()) + 1
    if labels.min() < 0 or np.any(np.bincount(labels, minlength=K) == 0):
        raise ValueError("labels must take every value 0 .. K-1 at least once")
    centers = np.stack([X[labels == g].mean(axis=0) for g in range(K)])
    r = np.linalg.norm(X - centers[labels], axis=1)
    E_star = float(np.sum(r**2))
    reasons: list[str] = []

    radii = np.empty(K)
    for g in range(K):
        rg = r[labels == g]

        def excess(D: float, rg: NDArray = rg) -> float:
            return float(np.sum(np.maximum(D - rg, 0.0) ** 2)) - E_star

        hi = rg.max() + np.sqrt(E_star / len(rg)) + 1.0  # L_g(hi) >= |G_g| (hi - r_max)^2 > E*
        D = brentq(excess, 0.0, hi, xtol=1e-12) if excess(0.0) <= 0 else 0.0
        D = D * (1 + 1e-9) + 1e-12
        radii[g] = D
        if not excess(D) > 0:  # condition 1, strict
            reasons.append(f"condition 1 fails for group {g}")

    dist_means = np.linalg.norm(centers[:, None, :] - centers[None, :, :], axis=2)
    off = ~np.eye(K, dtype=bool)
    disc_margin = float(np.min((dist_means - radii[:, None] - radii[None, :])[off])) if K > 1 else np.inf
    if disc_margin < 0:
        reasons.append(f"condition 2 fails: discs overlap by {-disc_margin:.4g}")

    # condition 3: |y - mu_h| - D_h - r_y - D_g >= 0 for all h != g(y)
    dist_pts = np.linalg.norm(X[:, None, :] - centers[None, :, :], axis=2)
    slack = dist_pts - radii[None, :] - (r + radii[labels])[:, None]
    slack[np.arange(len(X)), labels] = np.inf
    point_margin = float(slack.min()) if K > 1 else np.inf
    if point_margin < 0:
        reasons.append(f"condition 3 fails: a point is {-point_margin:.4g} too close to another group's disc")

    return Certificate(
        certified=not reasons,
        inertia=E_star,
        energy=E_star / (2 * len(X)),
        centers=centers,
        radii=radii,
        disc_margin=disc_margin,
        point_margin=point_margin,
        reasons=reasons,
    )


def brute_force_kmeans(X: ArrayLike, n_clusters: int) -> tuple[float, NDArray[np.intp]]:
    """Exact global k-means minimum by enumerating all ``n_clusters ** N`` labelings (tiny ``N`` only).

    Returns ``(inertia, labels)``: the minimum over all partitions of the within-group sum of squared
    distances to the group means (empty groups allowed; they never help), which is the k-means optimum.
    """
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if n_clusters**n > 5_000_000:
        raise ValueError(f"brute force over {n_clusters}**{n} labelings is too large")
    sq = np.einsum("ij,ij->i", X, X)
    best: tuple[float, NDArray[np.intp] | None] = (np.inf, None)
    # fix the first point's label to 0 (symmetry) and enumerate the rest in chunks
    for head in itertools.product(range(n_clusters), repeat=min(3, n - 1)):
        tail_n = n - 1 - len(head)
        tails = np.array(list(itertools.product(range(n_clusters), repeat=tail_n)), dtype=np.intp)
        tails = tails.reshape(-1, tail_n)
        lab = np.concatenate(
            [np.zeros((len(tails), 1), np.intp), np.broadcast_to(head, (len(tails), len(head))), tails],
            axis=1,
        )
        onehot = lab[:, :, None] == np.arange(n_clusters)  # (M, n, K)
        counts = onehot.sum(axis=1)  # (M, K)
        sums = np.einsum("mnk,nd->mkd", onehot, X)
        sumsq = np.einsum("mnk,n->mk", onehot, sq)
        with np.errstate(invalid="ignore", divide="ignore"):
            within = sumsq - np.where(counts > 0, np.einsum("mkd,mkd->mk", sums, sums) / counts, 0.0)
        total = within.sum(axis=1)
        i = int(np.argmin(total))
        if total[i] < best[0]:
            best = (float(total[i]), lab[i].copy())
    if best[1] is None:  # unreachable: every enumerated labeling has a finite inertia
        raise RuntimeError("brute force found no labeling")
    return best[0], best[1]
