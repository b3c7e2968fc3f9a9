r"""k-means by stochastic backward Euler (Entropy-SGD / HJ applied to the k-means energy).

Yin, Pham, Oberman, Osher, *Stochastic backward Euler: an implicit gradient descent algorithm for k-means
clustering* (arXiv 1710.07746). With the energy (see :mod:`deeprelax.cluster.energy`)

.. math::  f(x) = \frac{1}{2N}\sum_{j=1}^N \min_i |x_i - y_j|^2, \qquad
           \nabla_{x_i} f(x) = p_i(x)\,\big(x_i - c_i(x)\big),

one **backward-Euler (implicit) gradient step** of time :math:`\gamma` is

.. math::  x^{k+1} = x^k - \gamma\,\nabla f(x^{k+1})
           \iff x^{k+1} \text{ is a critical point of } f(y) + \tfrac{1}{2\gamma}|y - x^k|^2

(the proximal step; the Hopf-Lax / Moreau-envelope picture of Deep Relaxation with PDE time
:math:`t = \gamma`, i.e. coupling :math:`1/\gamma` in :mod:`deeprelax.optim`'s convention). It is solved by
the **stochastic fixed-point iteration** with a *fresh* mini-batch :math:`I_l` at every inner iteration and an
exponential **average of the fixed-point iterates**:

.. math::

    y^0 = z^0 = x^k, \qquad
    y^{l+1} = x^k - \gamma_k \nabla f_{I_l}(y^l), \qquad
    z^{l+1} = \alpha z^l + (1 - \alpha)\, y^{l+1}, \qquad l = 0, \dots, L-1,

    x^{k+1} = z^L .

**Scoping**: :math:`\gamma_k = \gamma_0 (1 + s)^{-\min(k, T)}` (the coupling :math:`1/\gamma_k` grows as in
Entropy-SGD's scoping :math:`\gamma_0(1+\gamma_1)^t`), from :math:`\gamma_0` down to :math:`\gamma_T` in
:math:`T` exploration steps, then constant while the centres settle. Large early :math:`\gamma` lets the
iteration leave the basin of the current local minimum (for fixed assignments the map
:math:`y \mapsto x - \gamma\nabla f(y)` has slope :math:`-\gamma p_i` per centre, so a centre holding a
large share :math:`p_i > 1/\gamma` of the data
cannot stay put), the shrinking step then settles the centres.

For a fixed assignment the fixed point has the closed form
:math:`x^{k+1}_i = (x^k_i + \gamma p_i c_i)/(1 + \gamma p_i)`, and the full-batch, undamped iteration
(:math:`\alpha = 0`) converges to it geometrically when :math:`\gamma p_i < 1` for all :math:`i`.

Since :math:`z^0 = x^k`, :math:`z^L = \alpha^L x^k + (1-\alpha)\sum_{l=1}^{L}\alpha^{L-l} y^l`: with
:math:`\alpha = 0.5, L = 2` (the defaults) the new centres keep :math:`\alpha^L = 0.25` of the old ones, a
damped outer step towards the average of the fixed-point iterates.

**Preconditioned settling.** After the :math:`T` exploration steps every centre gets its own step
:math:`\gamma_i = \tau/\hat p_i` (:math:`\hat p_i` its share of the inner mini-batch, :math:`\tau` =
``settle_slope`` = 0.5): the implicit step in the metric of the Hessian :math:`\mathrm{diag}(p_i)` of
:math:`f` for a fixed assignment, so every centre's fixed-point map has slope :math:`-\tau`, whatever its
mass (no centre is unstable while settling, light centres settle as fast as heavy ones).

**Seeding.** ``init="k-means++"`` runs greedy k-means++ on a subsample of :math:`\max(3B, 3K)` rows
(``n_seedings`` times, default once; with more, the seeding with the lowest energy on those rows starts the
run: ``MiniBatchKMeans``'s ``n_init`` rule).

**Swaps (round 4).** Every descent ends with the swap search of :mod:`deeprelax.cluster.swap` on the
evaluation batch :math:`E`: while some centre :math:`x_a` costs less to remove than splitting the cluster
of another centre :math:`x_b` along its principal axis saves, and the exact energy on :math:`E` after that
swap is lower, the swap is made, followed by up to 3 Lloyd steps on :math:`E` (at most ``n_swaps`` swaps).
It repairs the *misplaced pairs* (two centres in one cluster, one between two) that the mass-driven
exploration above cannot see; at a correct solution no swap passes the test and the cost is one scoring
pass over :math:`E`.

**Empty centres.** A centre that receives no point in any of the :math:`L` mini-batches of a step has zero
gradient, so :math:`y_i^{l} = x_i^k` and it could never move again. Such a centre is re-seeded at a uniformly
drawn data point (as scikit-learn's ``MiniBatchKMeans`` re-seeds centres with too few points from the batch,
and ``KMeans`` relocates empty clusters). The paper does not say how it treats this case.

**Units.** Every computation runs on standardised data :math:`(X - m)/s` (:math:`m` the weighted mean,
:math:`s` the root-mean-square distance to it per coordinate, computed without squaring numbers of the
size of :math:`X`). The step :math:`\gamma` is dimensionless (:math:`\gamma p_i` is a pure number), so the
method is invariant under translating, rotating and rescaling :math:`X` (tests check each), and data of
any magnitude whose squared distances fit in a float64 is handled; when the *inertia* itself does not fit
(:math:`s^2 \cdot \mathrm{inertia} > 1.8\cdot10^{308}`, e.g. data scaled by :math:`10^{154}`), ``fit`` raises
a ``ValueError`` saying so instead of returning ``nan``.

**Sample weights** define :math:`f(x) = \frac{1}{2W}\sum_j w_j \min_i|x_i - y_j|^2`, :math:`W = \sum_j w_j`;
mini-batches are drawn with probabilities :math:`w_j/W` (so the mini-batch gradient stays unbiased) and the
full-batch iteration uses the weighted sums.

**Stopping.** After the :math:`T` exploration steps, the energy :math:`f_E(x^k)` on a fixed *evaluation
batch* :math:`E` (drawn once) is tracked; the run stops when the best value of the last
``max_no_improvement`` steps does not beat the best value before them by more than the standard deviation
of those recent values (the step-to-step noise of the settling centres).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from deeprelax.cluster.energy import cluster_sums, squared_distances
from deeprelax.cluster.swap import best_swap

__all__ = [
    "ESGDKMeans",
    "Schedule",
    "backward_euler_step",
    "default_schedule",
    "default_step_size",
    "strong_exploration",
]

#: Constants of the ``"auto"`` schedule (dimensionless; see :func:`default_schedule` and docs/kmeans.md).
#: Chosen on the training half of the benchmark family (bench/kmeans_tune.py, docs/kmeans.md).
START_RATIO = 1.0  # gamma_0 p = 1 for a balanced centre (p = 1/K): centres above their fair share unstable
END_RATIO = 0.35  # gamma_T p = 0.35: every centre holding less than 2.9/K of the data is stable
N_EXPLORE = 15  # outer steps of the geometric decay gamma_0 -> gamma_T
N_INNER = 2
AVERAGING = 0.5
SETTLE_SLOPE = 0.5  # settling: gamma_i p_i = 0.5 for every centre (preconditioned step, see Schedule)
N_SEEDINGS = 1  # k-means++ seedings per run (more: the lowest seeding energy is kept; swaps repair seedings)
PATIENCE = 5  # max_no_improvement
N_SWAPS = 10  # cap on the swap moves per run (deeprelax.cluster.swap); at most 4 made on the training halves
SWAP_LLOYD_STEPS = 3  # Lloyd steps on the evaluation batch after each swap (fewer at a fixed point)
REFINE_STEPS = 100  # cap on the settling phase (the stopping rule usually ends it far earlier)
#: k-means++ seeding runs on a random subsample of max(_INIT_SIZE_FACTOR * batch_size, 3K) rows
#: (MiniBatchKMeans's init_size = 3 * batch_size); see ESGDKMeans._seeding_rows.
_INIT_SIZE_FACTOR = 3


@dataclass(frozen=True)
class Schedule:
    r"""The step schedule :math:`\gamma_k = \gamma_0(1+s)^{-\min(k-1,\,T)}` of one run (``k = 1, 2, ...``)."""

    step_size: float  # gamma_0
    final_step_size: float  # gamma_T
    n_explore: int  # T
    n_inner: int  # L
    averaging: float  # alpha
    max_iter: int
    #: settling phase (k > T): per-centre steps gamma_i = settle_slope / p_i (None: gamma_T for all centres)
    settle_slope: float | None = None

    @property
    def scoping(self) -> float:
        """:math:`s = (\\gamma_0/\\gamma_T)^{1/T} - 1` (0 when T = 0; negative for an increasing schedule)."""
        if self.n_explore == 0:
            return 0.0
        return float((self.step_size / self.final_step_size) ** (1.0 / self.n_explore) - 1.0)

    def gamma(self, k: int) -> float:
        """:math:`\\gamma_k` for the outer step ``k >= 1`` (log space: no overflow for any ``k``)."""
        if self.n_explore == 0:
            return self.final_step_size
        t = min(k - 1, self.n_explore) / self.n_explore
        return float(np.exp((1 - t) * np.log(self.step_size) + t * np.log(self.final_step_size)))


def default_step_size(n_clusters: int) -> float:
    r"""``step_size="auto"``: :math:`\gamma_0 = K`, i.e. :math:`\gamma_0 p_i = 1` for a centre with the
    balanced share :math:`p_i = 1/K`.

    The fixed-point map :math:`y \mapsto x - \gamma\nabla f(y)` has slope :math:`-\gamma p_i` per centre, so
    at the start exactly the centres holding more than their fair share :math:`1/K` of the data (e.g. one
    centre on two clusters, :math:`p_i \approx 2/K`) are unstable, and balanced ones are marginal.
    """
    return START_RATIO * n_clusters


def default_schedule(n_clusters: int) -> Schedule:
    r"""The ``"auto"`` schedule: :math:`\gamma_0 = K`, :math:`\gamma_T = 0.35K`, :math:`T = 15`, ``L = 2``,
    :math:`\alpha = 0.5`, settling with the per-centre slope :math:`\gamma_i p_i = 0.5`, at most
    :math:`T + 100` outer steps (the stopping rule usually ends far earlier).

    Only dimensionless quantities enter: :math:`\gamma p_i` with :math:`p_i \approx 1/K` is the slope of
    the fixed-point map (unstable above 1), so :math:`\gamma \propto K` keeps the same dynamics for any
    :math:`K`; the data's scale, offset and orientation never enter (the method runs on standardised data),
    and the number of steps adapts to the problem through the stopping rule. The constants were chosen on
    the training half of the benchmark family (docs/kmeans.md).
    """
    K = int(n_clusters)
    return Schedule(
        step_size=START_RATIO * K,
        final_step_size=END_RATIO * K,
        n_explore=N_EXPLORE,
        n_inner=N_INNER,
        averaging=AVERAGING,
        max_iter=N_EXPLORE + REFINE_STEPS,
        settle_slope=SETTLE_SLOPE,
    )


def strong_exploration(n_clusters: int) -> dict[str, Any]:
    r"""The round-1 schedule as ``ESGDKMeans`` keyword arguments: :math:`\gamma_k = 2.5K \cdot 1.02^{-(k-1)}`
    for ``k = 1 .. 100`` (:math:`2.5K \to 0.35K` in :math:`T = 99` steps), ``L = 5``, :math:`\alpha = 0.9`;
    then, unlike round 1, the settling phase (at :math:`\gamma_T`, as in round 1: ``settle_slope=None``)
    with patience 10 and the polish step; one seeding per run (``n_seedings=1``).

    Every balanced centre is unstable at first (:math:`\gamma_0 p = 2.5`), so it escapes bad (e.g. random)
    initialisations on data with clusters of similar size; it also ejects the centres of large clusters
    (docs/kmeans.md). Since round 4 the swap move at the end of every descent repairs most of that damage
    and lets the defaults escape random initialisations as well, so this schedule is mainly of historical
    and didactic interest (the seed's picture).
    """
    K = int(n_clusters)
    return dict(
        step_size=2.5 * K,
        final_step_size=2.5 * K / 1.02**99,
        n_explore=99,
        n_inner=5,
        averaging=0.9,
        max_no_improvement=10,
        settle_slope=None,
        n_seedings=1,
    )


# ----------------------------------------------------------------------------------------------- kernel
def _augment(X: NDArray) -> NDArray[np.float64]:
    """``[X, 1]``: lets one matrix product give ``y.x_i - |x_i|^2/2`` (argmax = nearest centre)."""
    return np.hstack([np.asarray(X, dtype=np.float64), np.ones((len(X), 1))])


def _labels(B_aug: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.intp]:
    """Nearest centre of every row: :math:`\\arg\\max_i\\, y_i\\cdot b - |y_i|^2/2` (one matrix product)."""
    K, d = y.shape
    W = np.empty((d + 1, K))
    W[:d] = y.T
    W[d] = -0.5 * np.einsum("ij,ij->i", y, y)
    return np.argmax(B_aug @ W, axis=1)


def _minibatch_gradient(
    B_aug: NDArray[np.float64], y: NDArray[np.float64], weights: NDArray[np.float64] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""``(grad, n)``: :math:`\nabla_{y_i} f_I(y) = (n_i y_i - S_i)/|I|` on the augmented batch ``[B, 1]``.

    ``n`` are the counts :math:`n_i` (points of the batch nearest to :math:`y_i`); with ``weights`` the
    weighted counts and sums, divided by the total weight.
    """
    K, d = y.shape
    labels = _labels(B_aug, y)
    if weights is None:
        counts, sums = cluster_sums(B_aug[:, :d], labels, K)
        total: float = len(B_aug)
    else:
        counts = cast(NDArray[np.float64], np.bincount(labels, weights=weights, minlength=K))
        sums = np.stack(
            [np.bincount(labels, weights=weights * B_aug[:, k], minlength=K) for k in range(d)], 1
        )
        total = float(weights.sum())
    return (counts[:, None] * y - sums) / total, counts


def _kmeans_plusplus(
    S: NDArray[np.float64],
    n_clusters: int,
    rs: np.random.RandomState,
    w: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], float]:
    r"""Greedy k-means++ seeding (D² sampling with :math:`2 + \lfloor\ln K\rfloor` local trials per
    centre, the candidate lowering the potential most kept: scikit-learn's ``kmeans_plusplus`` rule).

    Returns ``(centres, energy)``: the seeded centres and their (weighted) energy
    :math:`\frac{1}{2W}\sum_j w_j \min_i|s_j - x_i|^2` on ``S``, which the seeding computes anyway.
    Why not :func:`sklearn.cluster.kmeans_plusplus` plus one energy pass: tried on 1 Dec (held-out family,
    ``bench/kmeans_family.py --split held-out``), its per-call overhead raised the time ratio to
    ``MiniBatchKMeans`` on the small members (m02 1.19 → 1.75, m03 1.59 → 1.87, m11 1.35 → 1.86; the load was
    also higher, ≈ 5 vs 4.5), with the rates unchanged within noise.
    """
    n, d = S.shape
    trials = 2 + int(np.log(n_clusters))
    sq = np.einsum("ij,ij->i", S, S)
    if w is None:
        first = int(rs.randint(n))
    else:
        first = min(int(np.searchsorted(np.cumsum(w), rs.uniform() * w.sum(), side="right")), n - 1)
    centers = np.empty((n_clusters, d))
    centers[0] = S[first]
    closest = np.maximum(sq - 2.0 * (S @ S[first]) + sq[first], 0.0)
    wc = closest if w is None else closest * w
    pot = float(wc.sum())
    for c in range(1, n_clusters):
        r = rs.uniform(size=trials) * pot
        cand = np.minimum(np.searchsorted(np.cumsum(wc), r, side="right"), n - 1)
        D = np.maximum(sq[cand, None] - 2.0 * (S[cand] @ S.T) + sq[None, :], 0.0)
        np.minimum(D, closest[None, :], out=D)
        pots = D.sum(axis=1) if w is None else D @ w
        b = int(np.argmin(pots))
        closest = D[b]
        wc = closest if w is None else closest * w
        pot = float(pots[b])
        centers[c] = S[cand[b]]
    W = float(n if w is None else w.sum())
    return centers, pot / (2.0 * W)


class _Sampler:
    """Mini-batch indices, uniform or with probabilities ``w / sum(w)`` (inverse CDF of the weights)."""

    def __init__(self, n: int, weights: NDArray[np.float64] | None) -> None:
        self.n = n
        self.cum = None if weights is None else np.cumsum(weights)

    def __call__(self, rng: np.random.Generator, size: int) -> NDArray[np.intp]:
        if self.cum is None:
            return rng.integers(0, self.n, size=size)
        idx = np.searchsorted(self.cum, rng.random(size) * self.cum[-1], side="right")
        return np.minimum(idx, self.n - 1)


def _backward_euler_step(
    X_aug: NDArray[np.float64],
    x: NDArray[np.float64],
    step_size: float,
    n_inner: int,
    averaging: float,
    batch_size: int | None,
    rng: np.random.Generator,
    sampler: _Sampler | None = None,
    weights: NDArray[np.float64] | None = None,
    slopes: tuple[float, float] = (0.0, np.inf),
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""The step on the augmented data ``[X, 1]``; returns ``(z^L, counts summed over the batches)``.

    ``batch_size=None``: the full (weighted, if ``weights``) data at every inner iteration. ``slopes =
    (lo, hi)``: per-centre steps :math:`\gamma_i = \mathrm{clip}(\gamma\hat p_i, lo, hi)/\hat p_i`
    (:math:`\hat p_i` the centre's share of the inner batch), so that the slope :math:`\gamma_i\hat p_i`
    of every centre lies in ``[lo, hi]``; ``(0, inf)`` is the plain step.
    """
    if batch_size is None:
        batches = None
    else:
        sampler = sampler or _Sampler(len(X_aug), None)
        idx = sampler(rng, n_inner * batch_size)
        batches = np.take(X_aug, idx, axis=0).reshape(n_inner, batch_size, -1)
    y = x
    z = x
    total = np.zeros(len(x))
    lo, hi = slopes
    clip = lo > 0 or hi < np.inf
    for l in range(n_inner):
        if batches is None:
            grad, counts = _minibatch_gradient(X_aug, y, weights)
        else:
            grad, counts = _minibatch_gradient(batches[l], y)
        if clip:
            p = counts / max(float(counts.sum()), 1e-300)
            g = np.full(len(x), step_size)
            nz = p > 0
            g[nz] = np.clip(step_size * p[nz], lo, hi) / p[nz]
            y = x - g[:, None] * grad
        else:
            y = x - step_size * grad  # y^{l+1} = x^k - γ ∇f_I(y^l)
        z = averaging * z + (1.0 - averaging) * y  # z^{l+1} = α z^l + (1 - α) y^{l+1}
        total += counts
    return z, total


def backward_euler_step(
    X: ArrayLike,
    x: ArrayLike,
    step_size: float,
    *,
    n_inner: int = 10,
    averaging: float = 0.75,
    batch_size: int | None = None,
    random_state: int | np.random.Generator | None = None,
) -> NDArray[np.float64]:
    r"""One stochastic backward-Euler step :math:`x^k \mapsto x^{k+1} = z^L` (see the module docstring).

    Args:
        X: data ``(N, d)``.
        x: current centres :math:`x^k`, ``(K, d)``.
        step_size: :math:`\gamma > 0`.
        n_inner: :math:`L`, fixed-point iterations (each on a fresh mini-batch).
        averaging: :math:`\alpha \in [0, 1)` in :math:`z^{l+1} = \alpha z^l + (1-\alpha) y^{l+1}`
            (``0``: return the last iterate :math:`y^L`).
        batch_size: mini-batch size :math:`|I|` (drawn uniformly with replacement); ``None``: the full data
            every iteration (the deterministic fixed-point iteration for
            :math:`x^{k+1} = x^k - \gamma\nabla f(x^{k+1})`).
        random_state: seed or :class:`numpy.random.Generator` for the mini-batches.
    """
    if not step_size > 0:
        raise ValueError(f"step_size must be > 0, got {step_size!r}")
    if not (isinstance(n_inner, numbers.Integral) and n_inner >= 1):
        raise ValueError(f"n_inner must be an integer >= 1, got {n_inner!r}")
    if not 0 <= averaging < 1:
        raise ValueError(f"averaging must be in [0, 1), got {averaging!r}")
    if batch_size is not None and not (isinstance(batch_size, numbers.Integral) and batch_size >= 1):
        raise ValueError(f"batch_size must be None or an integer >= 1, got {batch_size!r}")
    X_aug = _augment(X)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != X_aug.shape[1] - 1:
        raise ValueError(f"x must have shape (n_clusters, {X_aug.shape[1] - 1}), got {x.shape}")
    rng = np.random.default_rng(random_state)
    return _backward_euler_step(X_aug, x, step_size, n_inner, averaging, batch_size, rng)[0]


# ------------------------------------------------------------------------------------------ units / energy
def _standardization(X: NDArray, w: NDArray[np.float64] | None) -> tuple[NDArray[np.float64], float]:
    """``(shift, scale)`` with ``(X - shift) / scale`` of mean 0 and mean squared coordinate 1 (weighted).

    Computed on ``X / max|X|`` so that no square of a number of the size of ``X`` is ever formed (data of
    magnitude 1e154 does not overflow here). ``scale = 1`` for data with no spread at all.
    """
    X = np.asarray(X, dtype=np.float64)
    a = float(np.max(np.abs(X))) if X.size else 1.0
    a = a if a > 0 else 1.0
    Xa = X / a
    if w is None:
        m = Xa.mean(axis=0)
        ms = float(np.mean((Xa - m) ** 2))
    else:
        W = float(w.sum())
        m = (w @ Xa) / W
        ms = float(w @ np.mean((Xa - m) ** 2, axis=1)) / W
    rms = np.sqrt(ms)
    if not rms > 0:
        rms = 1.0
    return a * m, a * rms


def _labels_sq(X: NDArray[np.float64], C: NDArray[np.float64]) -> tuple[NDArray[np.intp], NDArray]:
    """Nearest centre and squared distance to it, computed in chunks (bounded memory)."""
    labels = np.empty(len(X), dtype=np.intp)
    sq = np.empty(len(X))
    step = max(1, 2**20 // max(1, len(C)))
    for i in range(0, len(X), step):
        D = squared_distances(X[i : i + step], C)
        labels[i : i + step] = np.argmin(D, axis=1)
        sq[i : i + step] = D[np.arange(len(D)), labels[i : i + step]]
    return labels, sq


def _polish(
    Xs: NDArray[np.float64], x: NDArray[np.float64], sw: NDArray[np.float64] | None, n_polish: int
) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.float64]]:
    r"""``n_polish`` full-data steps :math:`x_i \leftarrow c_i(x)` (weighted means of the points nearest
    to :math:`x_i`; an empty centre stays), then the assignment.

    This is the backward-Euler step of the module docstring on the full data in the limit
    :math:`\gamma \to \infty` (the fixed point :math:`(x_i + \gamma p_i c_i)/(1 + \gamma p_i) \to c_i`),
    i.e. one Lloyd step: it never increases the energy, and it removes the mini-batch noise of the final
    centres without changing the basin they are in. Returns ``(x, labels, squared distances)``.
    """
    K = len(x)
    labels, sq = _labels_sq(Xs, x)
    for _ in range(n_polish):
        if sw is None:
            counts, sums = cluster_sums(Xs, labels, K)
        else:
            counts = cast(NDArray[np.float64], np.bincount(labels, weights=sw, minlength=K))
            sums = np.stack(
                [np.bincount(labels, weights=sw * Xs[:, k], minlength=K) for k in range(Xs.shape[1])], 1
            )
        x = x.copy()
        nz = counts > 0
        x[nz] = sums[nz] / counts[nz, None]
        previous = labels
        labels, sq = _labels_sq(Xs, x)
        if np.array_equal(labels, previous):  # a fixed point: further steps would change nothing
            break
    return x, labels, sq


def _no_improvement(hist: list[float], W: int) -> bool:
    """The stopping rule: the best of the last ``W`` energies does not beat the best before them by more
    than the standard deviation of those ``W`` values (False while there are ``W`` values or fewer)."""
    if len(hist) <= W:
        return False
    recent, before = np.asarray(hist[-W:]), np.asarray(hist[:-W])
    return bool(recent.min() > before.min() - recent.std())


def _weighted_energy(sq: NDArray[np.float64], w: NDArray[np.float64] | None) -> float:
    """:math:`f = \\frac{1}{2W}\\sum_j w_j d_j^2` from the squared distances ``sq``."""
    if w is None:
        return float(sq.mean() / 2)
    return float(w @ sq / (2 * w.sum()))


class ESGDKMeans(ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, BaseEstimator):
    r"""k-means by stochastic backward Euler / Entropy-SGD (Yin, Pham, Oberman, Osher 2017).

    Outer loop :math:`k = 1, 2, \dots`, each one implicit gradient step on
    :math:`f(x) = \frac{1}{2W}\sum_j w_j \min_i|x_i - y_j|^2` solved by a stochastic fixed point and
    averaged:

    .. math::

        \gamma_k = \gamma_0 (1 + s)^{-\min(k-1, T)}, \quad
        y^{l+1} = x^k - \gamma_k \nabla f_{I_l}(y^l), \quad
        z^{l+1} = \alpha z^l + (1-\alpha) y^{l+1}\ (l < L), \quad
        x^{k+1} = z^L,

    with :math:`y^0 = z^0 = x^k`, :math:`s = (\gamma_0/\gamma_T)^{1/T} - 1` and a fresh mini-batch
    :math:`I_l` of ``batch_size`` points (with replacement, probabilities :math:`w_j/W`) at every inner
    iteration. After the :math:`T` exploration steps the run stops when the energy on a fixed evaluation
    batch stops improving beyond its noise (module docstring), or after ``max_iter`` steps, or when the
    centre shift :math:`|x^{k+1} - x^k|^2 \le \mathrm{tol}\cdot\overline{\mathrm{Var}}(X)`.

    Parameters (scikit-learn names where scikit-learn has the same thing):
        n_clusters: :math:`K`.
        init: ``"random"`` (``K`` distinct data points, drawn with probabilities :math:`w_j/W`, as
            ``KMeans(init="random")``), ``"k-means++"`` (greedy k-means++, scikit-learn's rule, on a random
            subsample of ``max(3 * batch_size, 3 * K)`` rows, as ``MiniBatchKMeans``; ``n_seedings`` of them,
            the lowest energy on those rows kept), an array ``(K, d)`` or a callable
            ``init(X, n_clusters, random_state)``.
        n_seedings: k-means++ seedings per run (default 1); with more, the one with the lowest energy on the
            seeding rows starts the run (``MiniBatchKMeans``'s ``n_init`` rule: only the seeding is repeated).
        n_init: independent runs; the one with the lowest (weighted) energy on the training data is kept.
        max_iter: cap on the outer steps; ``"auto"``: :math:`T` + 100.
        batch_size: mini-batch size :math:`|I|`; ``None`` uses the full (weighted) data (deterministic).
        step_size: :math:`\gamma_0`; ``"auto"`` = :math:`K` (:func:`default_schedule`).
        final_step_size: :math:`\gamma_T`; ``"auto"`` = :math:`0.35K`.
        settle_slope: after the exploration, per-centre steps :math:`\gamma_i = \tau/\hat p_i` with
            :math:`\hat p_i` the centre's share of the inner mini-batch, so that every centre's fixed-point
            map has the same slope :math:`-\tau` (default 0.5; the implicit step in the metric of the
            Hessian :math:`\mathrm{diag}(p_i)`: light and heavy centres settle at the same rate, none is
            unstable). ``None``: :math:`\gamma_T` for every centre (round 2).
        n_explore: :math:`T`, the outer steps of the geometric decay; ``"auto"`` = 15.
        n_inner: :math:`L`, fixed-point iterations per outer step.
        averaging: :math:`\alpha` (weight of the old average; ``0`` = no averaging).
        max_no_improvement: patience of the stopping rule in outer steps; ``None`` runs ``max_iter`` steps.
        eval_size: size of the fixed evaluation batch (``"auto"``: ``min(N, max(batch_size, 256))``; the
            whole data when it is smaller).
        n_swaps: cap on the swap moves at the end of every descent (module docstring and
            :mod:`deeprelax.cluster.swap`; default 10, 0 = none, the round-3 behaviour).
        n_polish: full-data steps :math:`x_i \leftarrow c_i(x)` at the end of every run (the backward-Euler
            step with :math:`\gamma \to \infty` on the full data, i.e. a Lloyd step; never increases the
            energy; removes the mini-batch noise of the final centres). 0: none.
        tol: relative tolerance on the outer centre shift (0: off).
        verbose: print the step size and the energy after every outer step, and why the run stopped.
        random_state: seed for initialisation and mini-batches.

    Attributes:
        cluster_centers_: ``(K, d)`` final centres.
        labels_: nearest centre of every training point (of the last chunk after ``partial_fit``).
        inertia_: :math:`\sum_j w_j \min_i |x_i - y_j|^2` (scikit-learn's convention).
        energy_: :math:`f = \mathrm{inertia}/(2W)`, the normalised energy.
        n_iter_: outer steps taken (best run); n_steps_: mini-batch gradient evaluations; n_swaps_: swaps
        made (best run; after ``partial_fit``: at the stream's convergence).
        schedule_: the :class:`Schedule` used; energy_path_: the evaluation-batch energy after every
        settling step of the best run (original units).
        n_features_in_, feature_names_in_: as in scikit-learn.
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(numbers.Integral, 1, None, closed="left")],
        "init": [StrOptions({"random", "k-means++"}), callable, "array-like"],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_seedings": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "step_size": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="neither")],
        "final_step_size": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="neither")],
        "settle_slope": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "n_explore": [StrOptions({"auto"}), Interval(numbers.Integral, 0, None, closed="left")],
        "n_inner": [Interval(numbers.Integral, 1, None, closed="left")],
        "averaging": [Interval(numbers.Real, 0, 1, closed="left")],
        "max_no_improvement": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "eval_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "n_polish": [Interval(numbers.Integral, 0, None, closed="left")],
        "n_swaps": [Interval(numbers.Integral, 0, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: str | ArrayLike = "k-means++",
        n_init: int = 1,
        n_seedings: int = N_SEEDINGS,
        max_iter: int | str = "auto",
        batch_size: int | None = 1000,
        step_size: float | str = "auto",
        final_step_size: float | str = "auto",
        settle_slope: float | None = SETTLE_SLOPE,
        n_explore: int | str = "auto",
        n_inner: int = N_INNER,
        averaging: float = AVERAGING,
        max_no_improvement: int | None = PATIENCE,
        eval_size: int | str = "auto",
        n_polish: int = 1,
        n_swaps: int = N_SWAPS,
        tol: float = 0.0,
        verbose: int = 0,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.n_seedings = n_seedings
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.step_size = step_size
        self.final_step_size = final_step_size
        self.settle_slope = settle_slope
        self.n_explore = n_explore
        self.n_inner = n_inner
        self.averaging = averaging
        self.max_no_improvement = max_no_improvement
        self.eval_size = eval_size
        self.n_polish = n_polish
        self.n_swaps = n_swaps
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state

    # ---------------------------------------------------------------------------------------- helpers
    def _schedule(self) -> Schedule:
        """The :class:`Schedule` from the parameters (``"auto"`` entries from :func:`default_schedule`)."""
        auto = default_schedule(self.n_clusters)
        g0 = auto.step_size if self.step_size == "auto" else float(self.step_size)
        gT = auto.final_step_size if self.final_step_size == "auto" else float(self.final_step_size)
        if self.final_step_size == "auto" and self.step_size != "auto":
            gT = min(gT, g0)
        T = auto.n_explore if self.n_explore == "auto" else int(self.n_explore)
        max_iter = T + REFINE_STEPS if self.max_iter == "auto" else int(self.max_iter)
        slope = None if self.settle_slope is None else float(self.settle_slope)
        return Schedule(g0, gT, T, int(self.n_inner), float(self.averaging), max_iter, slope)

    def _slopes(self, k: int, sched: Schedule) -> tuple[float, float]:
        r"""Bounds ``(lo, hi)`` on the per-centre slope :math:`\gamma_i\hat p_i` of outer step ``k``.

        Exploration (:math:`k \le T`): ``(0, inf)``, the plain step :math:`\gamma_i = \gamma_k` for every
        centre. Settling: ``(tau, tau)`` with :math:`\tau` = ``settle_slope`` (the preconditioned step
        :math:`\gamma_i = \tau/\hat p_i`), or ``(0, inf)`` when ``settle_slope`` is None. See
        :func:`_backward_euler_step` for how the bounds act; a subclass may override this rule.
        """
        if k > sched.n_explore and sched.settle_slope is not None:
            return (sched.settle_slope, sched.settle_slope)
        return (0.0, np.inf)

    def _seeding_rows(self, n: int) -> int:
        """Rows of the random subsample the k-means++ seeding runs on (``n``: all rows).

        ``max(3 * batch_size, 3 * K)`` as ``MiniBatchKMeans``'s ``init_size``, at most ``n``; all rows when
        ``batch_size`` is None.
        """
        if self.batch_size is None:
            return n
        return min(n, max(_INIT_SIZE_FACTOR * self.batch_size, 3 * self.n_clusters))

    def _check_weights(
        self, X: NDArray, sample_weight: ArrayLike | None
    ) -> tuple[NDArray[np.float64] | None, NDArray[np.float64] | None]:
        """``(weights for the algorithm, weights for the reported inertia)``.

        The first is ``None`` when the weights are absent or all equal (then the problem, the random
        streams and the centres are exactly those of the unweighted fit); the second is ``None`` only when
        they are absent (``inertia_`` is the weighted sum, as scikit-learn's).
        """
        if sample_weight is None:
            return None, None
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if np.all(sw == sw[0]) and sw[0] > 0:
            return None, sw
        if int(np.count_nonzero(sw)) < self.n_clusters:
            raise ValueError(
                f"sample_weight: only {np.count_nonzero(sw)} samples have a positive weight, "
                f"fewer than n_clusters={self.n_clusters}."
            )
        return sw, sw

    def _initial_centers(
        self,
        X: NDArray,
        Xs: NDArray[np.float64],
        sw: NDArray[np.float64] | None,
        rs: np.random.RandomState,
        shift: NDArray,
        scale: float,
    ) -> NDArray[np.float64]:
        """Initial centres in standardised coordinates (``init`` arrays and callables give original units)."""
        K = self.n_clusters
        if isinstance(self.init, str) and self.init == "random":
            if sw is None:
                return Xs[rs.permutation(len(Xs))[:K]].copy()
            return Xs[rs.choice(len(Xs), size=K, replace=False, p=sw / sw.sum())].copy()
        if isinstance(self.init, str) and self.init == "k-means++":
            n = len(Xs)
            m = self._seeding_rows(n)
            if m < n:  # seed on a random subsample, as MiniBatchKMeans does (init_size = 3 * batch_size)
                p = None if sw is None else sw / sw.sum()
                sub = rs.choice(n, size=m, replace=False, p=p) if p is None else rs.choice(n, size=m, p=p)
                S, wS = Xs[sub], None
            else:
                S, wS = Xs, sw
            best: tuple[float, NDArray[np.float64]] | None = None
            for _ in range(self.n_seedings):  # the lowest seeding energy on the seeding rows is kept
                c0, e = _kmeans_plusplus(S, K, rs, wS)
                if best is None or e < best[0]:
                    best = (e, c0)
            if best is None:  # n_seedings >= 1 (parameter validation)
                raise ValueError("n_seedings must be >= 1")
            return best[1]
        centers = self.init(X, K, rs) if callable(self.init) else self.init
        centers = np.array(centers, dtype=np.float64)
        if centers.shape != (K, X.shape[1]):
            raise ValueError(
                f"init should be of shape (n_clusters, n_features) = ({K}, {X.shape[1]}), "
                f"got {centers.shape}."
            )
        if not np.all(np.isfinite(centers)):
            raise ValueError("init contains NaN or infinity.")
        return (centers - shift) / scale

    def _step(
        self,
        X_aug: NDArray[np.float64],
        x: NDArray[np.float64],
        gamma: float,
        k: int,
        sched: Schedule,
        rng: np.random.Generator,
        sampler: _Sampler,
        sw: NDArray[np.float64] | None,
        batch_size: int | None,
    ) -> NDArray[np.float64]:
        """One outer step with the divergence check and the re-seeding of empty centres."""
        slopes = self._slopes(k, sched)
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported just below
            x_new, counts = _backward_euler_step(
                X_aug, x, gamma, sched.n_inner, sched.averaging, batch_size, rng, sampler, sw, slopes
            )
        if not np.all(np.isfinite(x_new)):
            raise FloatingPointError(
                f"ESGDKMeans diverged at outer step {k} (step_size={sched.step_size}): the fixed-point "
                "iteration y <- x - step_size * grad f(y) is unstable when step_size * p_i > 1 for a centre "
                "holding a share p_i of the data; use a smaller step_size or final_step_size."
            )
        empty = counts == 0  # no point in any batch of the step: zero gradient forever -> re-seed
        if np.any(empty):
            x_new[empty] = X_aug[sampler(rng, int(empty.sum())), :-1]
        return x_new

    def _evaluation_batch(
        self,
        X_aug: NDArray[np.float64],
        sw: NDArray[np.float64] | None,
        sampler: _Sampler,
        rng: np.random.Generator,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
        """``(rows, weights)`` of the fixed evaluation batch of the stopping rule, drawn once per run.

        ``eval_size`` rows (``"auto"``: ``min(N, max(batch_size, 256))``) drawn like the mini-batches (so
        unweighted: the weights are in the sampling); the whole data, with its weights, when that is all of it
        (then the recorded energy is exact).
        """
        n = len(X_aug)
        m = (
            min(n, max(self.batch_size or n, 256))
            if self.eval_size == "auto"
            else min(n, cast(int, self.eval_size))
        )
        if m == n:
            return X_aug[:, :-1], sw
        return X_aug[sampler(rng, m), :-1], None

    def _swap_search(
        self, E: NDArray[np.float64], wE: NDArray[np.float64] | None, x: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], int]:
        """Up to ``n_swaps`` swap moves (:func:`deeprelax.cluster.swap.best_swap`) on the rows ``E``, each
        followed by up to ``SWAP_LLOYD_STEPS`` Lloyd steps on them; returns ``(centres, swaps made)``."""
        n = 0
        while n < self.n_swaps:
            new = best_swap(E, x, wE)
            if new is None:
                break
            x = _polish(E, new, wE, SWAP_LLOYD_STEPS)[0]
            n += 1
        return x, n

    def _run_once(
        self,
        X_aug: NDArray[np.float64],
        x0: NDArray[np.float64],
        rng: np.random.Generator,
        sched: Schedule,
        sw: NDArray[np.float64] | None,
        tol_abs: float,
    ) -> tuple[NDArray[np.float64], int, list[float], Schedule, int]:
        """One descent; returns ``(centres, outer steps, evaluation energies, the schedule used, swaps)``.

        The descent ends with the swap search (:meth:`_swap_search`) on the evaluation batch.
        """
        sampler = _Sampler(len(X_aug), sw)
        E, wE = self._evaluation_batch(X_aug, sw, sampler, rng)
        W = self.max_no_improvement
        x = x0
        hist: list[float] = []
        reason = f"max_iter={sched.max_iter} reached"
        k = 0
        for k in range(1, sched.max_iter + 1):
            gamma = sched.gamma(k)
            x_new = self._step(X_aug, x, gamma, k, sched, rng, sampler, sw, self.batch_size)
            shift = float(np.sum((x_new - x) ** 2))
            x = x_new
            settling = k > sched.n_explore
            if settling:
                hist.append(_weighted_energy(_labels_sq(E, x)[1], wE))
            if self.verbose:
                e = f" eval energy={hist[-1]:.6g} (standardised units)" if settling else ""
                print(f"ESGDKMeans step {k}: gamma={gamma:.4g}{e}")
            if W is not None and settling and _no_improvement(hist, W):
                reason = f"no improvement beyond noise in {W} steps"
                break
            if shift <= tol_abs:
                reason = f"centre shift {shift:.3g} <= tol"
                break
        x, swaps = self._swap_search(E, wE, x)
        if self.verbose:
            print(f"ESGDKMeans stopped after {k} outer steps: {reason}; {swaps} swap(s)")
        return x, k, hist, sched, swaps

    def _finish(
        self,
        X: NDArray,
        x: NDArray[np.float64],
        labels: NDArray[np.intp],
        sq: NDArray[np.float64],
        sw: NDArray[np.float64] | None,
    ) -> None:
        """Fitted attributes in original units; a clear error when the inertia is not representable."""
        inertia_s = float(sq.sum() if sw is None else sw @ sq)
        W = float(len(X) if sw is None else sw.sum())
        with np.errstate(over="ignore", invalid="ignore"):
            inertia = inertia_s * self._scale**2
        if not np.isfinite(inertia):
            raise ValueError(
                f"X: the inertia (sum of squared distances) of the fitted centres is {inertia_s:.4g} x "
                f"{self._scale:.4g}**2, which overflows float64 (X's spread is {self._scale:.3g}); "
                "k-means is equivariant under scaling: fit X / c and multiply cluster_centers_ by c."
            )
        self.cluster_centers_ = (self._shift + self._scale * x).astype(X.dtype, copy=False)
        self.labels_ = labels
        self.inertia_ = inertia
        self.energy_ = inertia / (2 * W)

    # -------------------------------------------------------------------------------------------- API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: None = None, sample_weight: ArrayLike | None = None) -> ESGDKMeans:
        """Run ``n_init`` stochastic backward-Euler descents on ``X`` and keep the lowest energy."""
        X = cast(np.ndarray, validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=1))
        n = X.shape[0]
        if n < self.n_clusters:
            raise ValueError(f"n_samples={n} should be >= n_clusters={self.n_clusters}.")
        sw, sw_report = self._check_weights(X, sample_weight)
        self._shift, self._scale = _standardization(X, sw)
        Xs = (np.asarray(X, dtype=np.float64) - self._shift) / self._scale
        X_aug = _augment(Xs)
        sched = self._schedule()
        rs = check_random_state(self.random_state)
        best: tuple[Any, ...] | None = None
        for _ in range(self.n_init):
            x0 = self._initial_centers(X, Xs, sw, rs, self._shift, self._scale)
            rng = np.random.default_rng(rs.randint(np.iinfo(np.int32).max))
            x, n_iter, hist, used, swaps = self._run_once(X_aug, x0, rng, sched, sw, float(self.tol))
            x, labels, sq = _polish(Xs, x, sw, self.n_polish)
            e = _weighted_energy(sq, sw)
            if best is None or e < best[0]:
                best = (e, x, n_iter, hist, used, labels, sq, swaps)
        if best is None:  # n_init >= 1 (parameter validation)
            raise ValueError("n_init must be >= 1")
        _, x, n_iter, hist, sched, labels, sq, swaps = best
        self._x = x
        self._stream: dict[str, Any] | None = None  # a later partial_fit starts a new stream from here
        if hasattr(self, "converged_"):  # a streaming attribute of an earlier partial_fit
            del self.converged_
        self._finish(X, x, labels, sq, sw_report)
        self.n_iter_ = n_iter
        self.n_swaps_ = swaps
        self.n_steps_ = n_iter * sched.n_inner
        self.schedule_ = sched
        with np.errstate(over="ignore"):
            self.energy_path_ = np.asarray(hist) * self._scale**2
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: ArrayLike, y: None = None, sample_weight: ArrayLike | None = None) -> ESGDKMeans:
        r"""Update on the chunk ``X`` (streaming, as ``MiniBatchKMeans.partial_fit``).

        The first call fixes the standardisation (mean and spread of the first chunk) and seeds the centres
        on it. Call ``k = n_iter_ + 1``, while ``converged_`` is False:

        1. once ``k > T``, the energy of the current centres on the chunk is appended to ``energy_path_``
           (the chunk has not been used yet, so this is an unbiased estimate of the energy: the streaming
           counterpart of ``fit``'s fixed evaluation batch) and ``fit``'s stopping rule is applied to
           these values; when it fires, ``converged_`` becomes True and no step is taken;
        2. otherwise one outer step with :math:`\gamma_k` (constant after :math:`T` calls), its ``L`` inner
           mini-batches drawn from the chunk (the whole chunk when it is smaller than ``batch_size``).

        At convergence the swap search (``fit``'s, module docstring) runs on the chunk that stopped the run;
        then the iterate :math:`x^*` is frozen and every chunk (including the one that stopped
        the run) feeds the **streaming polish** (``n_polish >= 1``): ``cluster_centers_`` is the (weighted)
        mean of all the points streamed since convergence that are nearest to each :math:`x^*_i`, i.e.
        ``fit``'s polish step :math:`x_i \leftarrow c_i(x^*)` on the data streamed so far (equal to it after
        one pass over the data set; a centre that has received no point stays at :math:`x^*_i`).
        With ``n_polish=0`` the centres stay at :math:`x^*`; with ``max_no_improvement=None`` the run
        never stops. ``labels_``, ``inertia_`` and ``energy_`` refer to the last chunk.
        """
        first = not hasattr(self, "cluster_centers_")
        X = cast(np.ndarray, validate_data(self, X, dtype=[np.float64, np.float32], reset=first))
        n = X.shape[0]
        sw, sw_report = self._check_weights(X, sample_weight)
        if first:
            if n < self.n_clusters:
                raise ValueError(f"n_samples={n} should be >= n_clusters={self.n_clusters}.")
            self._shift, self._scale = _standardization(X, sw)
            self._random_state = check_random_state(self.random_state)
            self._rng = np.random.default_rng(self._random_state.randint(np.iinfo(np.int32).max))
            self.n_iter_ = 0
            self.n_steps_ = 0
            self.schedule_ = self._schedule()
        elif not hasattr(self, "_rng"):  # partial_fit after fit: continue the same stream
            self._rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31 - 1))
        if getattr(self, "_stream", None) is None:  # streaming state (reset by fit)
            self._stream = dict(path=[], sums=None, counts=None)
            self.converged_: bool = False
            self.n_swaps_ = 0  # swaps of this stream (made at its convergence)
        Xs = (np.asarray(X, dtype=np.float64) - self._shift) / self._scale
        X_aug = _augment(Xs)
        if first:
            self._x = self._initial_centers(X, Xs, sw, self._random_state, self._shift, self._scale)
        sched = self.schedule_
        st = cast(dict[str, Any], self._stream)
        k = self.n_iter_ + 1
        W = self.max_no_improvement
        if not self.converged_ and k > sched.n_explore:
            st["path"].append(_weighted_energy(_labels_sq(Xs, self._x)[1], sw))
            if W is not None and _no_improvement(st["path"], W):
                self.converged_ = True
                self._x, self.n_swaps_ = self._swap_search(Xs, sw, self._x)
                if self.verbose:
                    print(
                        f"ESGDKMeans partial_fit converged after {self.n_iter_} steps: no improvement "
                        f"beyond noise in {W} chunks; streaming polish from now on"
                    )
        with np.errstate(over="ignore"):
            self.energy_path_ = np.asarray(st["path"]) * self._scale**2
        if not self.converged_:
            batch = None if self.batch_size is None or self.batch_size >= n else self.batch_size
            sampler = _Sampler(n, sw)
            self._x = self._step(X_aug, self._x, sched.gamma(k), k, sched, self._rng, sampler, sw, batch)
            self.n_iter_ = k
            self.n_steps_ += sched.n_inner
            x = self._x
        elif self.n_polish >= 1:
            K, d = self._x.shape
            labels = _labels_sq(Xs, self._x)[0]
            if st["sums"] is None:
                st["sums"], st["counts"] = np.zeros((K, d)), np.zeros(K)
            w = np.ones(n) if sw is None else sw
            st["counts"] += np.bincount(labels, weights=w, minlength=K)
            for j in range(d):
                st["sums"][:, j] += np.bincount(labels, weights=w * Xs[:, j], minlength=K)
            x = self._x.copy()
            nz = st["counts"] > 0
            x[nz] = st["sums"][nz] / st["counts"][nz, None]
        else:
            x = self._x
        self._finish(X, x, *_labels_sq(Xs, x), sw_report)
        if self.verbose and not self.converged_:
            print(
                f"ESGDKMeans partial_fit step {k}: gamma={sched.gamma(k):.4g} chunk energy={self.energy_:.6g}"
            )
        return self

    def _standardized(self, X: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        shift = getattr(self, "_shift", 0.0)
        scale = getattr(self, "_scale", 1.0)
        C = (np.asarray(self.cluster_centers_, dtype=np.float64) - shift) / scale
        return (np.asarray(X, dtype=np.float64) - shift) / scale, C

    def predict(self, X: ArrayLike) -> NDArray[np.intp]:
        """Index of the nearest centre of every row of ``X``."""
        Xs, C = self._standardized(X)
        return _labels_sq(Xs, C)[0]

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Euclidean distance of every row of ``X`` to every centre, ``(n_samples, n_clusters)``."""
        Xs, C = self._standardized(X)
        return np.sqrt(squared_distances(Xs, C)) * getattr(self, "_scale", 1.0)

    def score(self, X: ArrayLike, y: None = None, sample_weight: ArrayLike | None = None) -> float:
        """Opposite of the (weighted) inertia of ``X`` for the fitted centres (``KMeans.score``)."""
        Xs, C = self._standardized(X)
        sq = _labels_sq(Xs, C)[1]
        sw = None if sample_weight is None else _check_sample_weight(sample_weight, Xs, dtype=np.float64)
        s = float(sq.sum() if sw is None else sw @ sq)
        with np.errstate(over="ignore"):
            value = s * getattr(self, "_scale", 1.0) ** 2
        if not np.isfinite(value):
            raise ValueError("X: the inertia overflows float64; rescale X (see fit).")
        return -value

    @property
    def _n_features_out(self) -> int:
        return self.n_clusters
