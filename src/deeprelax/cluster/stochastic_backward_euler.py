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

**Scoping**: :math:`\gamma_k = \gamma_0 (1 + s)^{-k}` (the coupling :math:`1/\gamma_k` grows as in
Entropy-SGD's scoping :math:`\gamma_0(1+\gamma_1)^t`). Large early :math:`\gamma` lets the iteration leave the
basin of the current local minimum (for fixed assignments the map :math:`y \mapsto x - \gamma\nabla f(y)` has
slope :math:`-\gamma p_i` per centre, so a centre holding a large share :math:`p_i > 1/\gamma` of the data
cannot stay put), the shrinking step then settles the centres.

For a fixed assignment the fixed point has the closed form
:math:`x^{k+1}_i = (x^k_i + \gamma p_i c_i)/(1 + \gamma p_i)`, and the full-batch, undamped iteration
(:math:`\alpha = 0`) converges to it geometrically when :math:`\gamma p_i < 1` for all :math:`i`.

Since :math:`z^0 = x^k`, :math:`z^L = \alpha^L x^k + (1-\alpha)\sum_{l=1}^{L}\alpha^{L-l} y^l`: with
:math:`\alpha = 0.9, L = 5` the new centres keep :math:`\alpha^L \approx 0.59` of the old ones, a damped
outer step towards the average of the fixed-point iterates.

**Empty centres.** A centre that receives no point in any of the :math:`L` mini-batches of a step has zero
gradient, so :math:`y_i^{l} = x_i^k` and it could never move again. Such a centre is re-seeded at a uniformly
drawn data point (as scikit-learn's ``MiniBatchKMeans`` re-seeds centres with too few points from the batch,
and ``KMeans`` relocates empty clusters). The paper does not say how it treats this case.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.cluster import kmeans_plusplus
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from deeprelax.cluster.energy import assign, cluster_sums

__all__ = ["ESGDKMeans", "backward_euler_step", "default_step_size"]


def default_step_size(n_clusters: int) -> float:
    r"""``step_size="auto"``: :math:`\gamma_0 = 2.5K`, i.e. :math:`\gamma_0 p_i = 2.5` for balanced clusters.

    Since :math:`p_i \approx 1/K`, this is the dimensionless choice "2.5 times the largest stable step of a
    balanced configuration"; scoping then brings :math:`\gamma_k p_i` below 1.
    """
    return 2.5 * n_clusters


def _augment(X: NDArray) -> NDArray[np.float64]:
    """``[X, 1]``: lets one matrix product give ``y.x_i - |x_i|^2/2`` (argmax = nearest centre)."""
    return np.hstack([np.asarray(X, dtype=np.float64), np.ones((len(X), 1))])


def _minibatch_gradient(
    B_aug: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""``(grad, n)``: :math:`\nabla_{y_i} f_I(y) = (n_i y_i - S_i)/|I|` on the augmented batch ``[B, 1]``.

    ``n`` are the counts :math:`n_i` (points of the batch nearest to :math:`y_i`).
    """
    K, d = y.shape
    W = np.empty((d + 1, K))
    W[:d] = y.T
    W[d] = -0.5 * np.einsum("ij,ij->i", y, y)
    labels = np.argmax(B_aug @ W, axis=1)  # nearest centre: argmax_i  y_i.b - |y_i|^2 / 2
    counts, sums = cluster_sums(B_aug[:, :d], labels, K)
    return (counts[:, None] * y - sums) / len(B_aug), counts


def _backward_euler_step(
    X_aug: NDArray[np.float64],
    x: NDArray[np.float64],
    step_size: float,
    n_inner: int,
    averaging: float,
    batch_size: int | None,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The step on the augmented data ``[X, 1]``; returns ``(z^L, counts summed over the batches)``."""
    if batch_size is None:
        batches = None
    else:
        idx = rng.integers(0, len(X_aug), size=n_inner * batch_size)
        batches = np.take(X_aug, idx, axis=0).reshape(n_inner, batch_size, -1)
    y = x
    z = x
    total = np.zeros(len(x))
    for l in range(n_inner):
        B = X_aug if batches is None else batches[l]
        grad, counts = _minibatch_gradient(B, y)
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


class ESGDKMeans(ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, BaseEstimator):
    r"""k-means by stochastic backward Euler / Entropy-SGD (Yin, Pham, Oberman, Osher 2017).

    Outer loop :math:`k = 0, 1, \dots` (``max_iter`` steps), each one implicit gradient step on
    :math:`f(x) = \frac{1}{2N}\sum_j \min_i|x_i - y_j|^2` solved by a stochastic fixed point and averaged:

    .. math::

        \gamma_k = \gamma_0 (1 + s)^{-k}, \quad
        y^{l+1} = x^k - \gamma_k \nabla f_{I_l}(y^l), \quad
        z^{l+1} = \alpha z^l + (1-\alpha) y^{l+1}\ (l < L), \quad
        x^{k+1} = z^L,

    with :math:`y^0 = z^0 = x^k` and a fresh mini-batch :math:`I_l` of ``batch_size`` points (uniform, with
    replacement) at every inner iteration. The loop stops early when
    :math:`|x^{k+1} - x^k|^2 \le \mathrm{tol}\cdot\overline{\mathrm{Var}}(X)` (the same relative tolerance as
    scikit-learn's ``KMeans``; ``tol=0`` runs all ``max_iter`` steps).

    Parameters (scikit-learn names where scikit-learn has the same thing):
        n_clusters: :math:`K`.
        init: ``"random"`` (``K`` distinct data points, as ``KMeans(init="random")``), ``"k-means++"``
            (:func:`sklearn.cluster.kmeans_plusplus`), an array ``(K, d)`` or a callable
            ``init(X, n_clusters, random_state)``.
        n_init: independent runs; the one with the lowest energy is kept.
        max_iter: outer (backward-Euler) steps.
        batch_size: mini-batch size :math:`|I|`; ``None`` uses the full data (deterministic).
        step_size: :math:`\gamma_0`, the backward-Euler time step; ``"auto"`` = ``2.5 * n_clusters``
            (:func:`default_step_size`).
        n_inner: :math:`L`, fixed-point iterations per outer step.
        averaging: :math:`\alpha` (weight of the old average; ``0`` = no averaging).
        scoping: :math:`s \ge 0` in :math:`\gamma_k = \gamma_0(1+s)^{-k}`.
        tol: relative tolerance on the outer centre shift (see above).
        verbose: print the energy after every outer step.
        random_state: seed for initialisation and mini-batches.

    The defaults (:math:`\gamma_0 = 2.5K`, :math:`s = 0.02`, ``max_iter=100``, :math:`L = 5`,
    :math:`\alpha = 0.9`: 500 mini-batch gradients, :math:`\gamma` from :math:`2.5K` down to
    :math:`\approx 0.35K`) were chosen by sweeps on the ``blobs8`` benchmark (seed 0) and checked on other
    seeds of the same family; see ``docs/kmeans.md``.

    Attributes:
        cluster_centers_: ``(K, d)`` final centres :math:`x^{k}`.
        labels_: nearest centre of every training point.
        inertia_: :math:`\sum_j \min_i |x_i - y_j|^2` on the training data (scikit-learn's convention).
        energy_: :math:`f = \mathrm{inertia}/(2N)`, the normalised energy.
        n_iter_: outer steps taken (best run).
        n_steps_: mini-batch gradient evaluations, ``n_iter_ * n_inner`` (best run).
        n_features_in_, feature_names_in_: as in scikit-learn.
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(numbers.Integral, 1, None, closed="left")],
        "init": [StrOptions({"random", "k-means++"}), callable, "array-like"],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "step_size": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="neither")],
        "n_inner": [Interval(numbers.Integral, 1, None, closed="left")],
        "averaging": [Interval(numbers.Real, 0, 1, closed="left")],
        "scoping": [Interval(numbers.Real, 0, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: str | ArrayLike = "random",
        n_init: int = 1,
        max_iter: int = 100,
        batch_size: int | None = 1000,
        step_size: float | str = "auto",
        n_inner: int = 5,
        averaging: float = 0.9,
        scoping: float = 0.02,
        tol: float = 0.0,
        verbose: int = 0,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.step_size = step_size
        self.n_inner = n_inner
        self.averaging = averaging
        self.scoping = scoping
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state

    # ----------------------------------------------------------------------------------------------------
    def _initial_centers(self, X: NDArray[np.float64], rs: np.random.RandomState) -> NDArray[np.float64]:
        K = self.n_clusters
        if isinstance(self.init, str) and self.init == "random":
            return X[rs.permutation(len(X))[:K]].copy()
        if isinstance(self.init, str) and self.init == "k-means++":
            centers, _ = kmeans_plusplus(X, K, random_state=rs)
            return np.asarray(centers, dtype=np.float64)
        centers = self.init(X, K, rs) if callable(self.init) else self.init
        centers = np.array(centers, dtype=np.float64)
        if centers.shape != (K, X.shape[1]):
            raise ValueError(
                f"init should be of shape (n_clusters, n_features) = ({K}, {X.shape[1]}), "
                f"got {centers.shape}."
            )
        if not np.all(np.isfinite(centers)):
            raise ValueError("init contains NaN or infinity.")
        return centers

    def _run_once(
        self, X_aug: NDArray[np.float64], x0: NDArray[np.float64], rng: np.random.Generator, tol_abs: float
    ) -> tuple[NDArray[np.float64], int]:
        gamma0 = default_step_size(self.n_clusters) if self.step_size == "auto" else float(self.step_size)
        x = x0
        k = 0
        for k in range(1, self.max_iter + 1):
            gamma_k = gamma0 * (1.0 + self.scoping) ** (-(k - 1))  # γ_k = γ_0 (1 + s)^{-k}
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported just below
                x_new, counts = _backward_euler_step(
                    X_aug, x, gamma_k, self.n_inner, self.averaging, self.batch_size, rng
                )
            if not np.all(np.isfinite(x_new)):
                raise FloatingPointError(
                    f"ESGDKMeans diverged at outer step {k} (step_size={gamma0}): the fixed-point iteration "
                    "y <- x - step_size * grad f(y) is unstable when step_size * p_i > 1 for a centre "
                    "holding a share p_i of the data; use a smaller step_size or a larger scoping."
                )
            empty = counts == 0  # no point in any batch of the step: zero gradient forever -> re-seed
            if np.any(empty):
                x_new[empty] = X_aug[rng.integers(0, len(X_aug), size=int(empty.sum())), :-1]
            shift = float(np.sum((x_new - x) ** 2))
            x = x_new
            if self.verbose:
                print(f"ESGDKMeans step {k}: gamma={gamma_k:.4g} energy={self._energy(X_aug, x):.6g}")
            if shift <= tol_abs:
                break
        return x, k

    @staticmethod
    def _energy(X_aug: NDArray[np.float64], centers: NDArray[np.float64]) -> float:
        _, sq = assign(X_aug[:, :-1], centers)
        return float(sq.sum() / (2 * len(X_aug)))

    def fit(self, X: ArrayLike, y: None = None) -> ESGDKMeans:
        """Run ``n_init`` stochastic backward-Euler descents on ``X`` and keep the lowest energy."""
        self._validate_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=1)
        n = X.shape[0]
        if n < self.n_clusters:
            raise ValueError(f"n_samples={n} should be >= n_clusters={self.n_clusters}.")
        rs = check_random_state(self.random_state)
        X64 = np.asarray(X, dtype=np.float64)
        X_aug = _augment(X64)
        tol_abs = float(self.tol * np.mean(np.var(X64, axis=0)))
        best = None
        for _ in range(self.n_init):
            x0 = self._initial_centers(X64, rs)
            rng = np.random.default_rng(rs.randint(np.iinfo(np.int32).max))
            centers, n_iter = self._run_once(X_aug, x0, rng, tol_abs)
            labels, sq = assign(X64, centers)
            inertia = float(sq.sum())
            if best is None or inertia < best[2]:
                best = (centers, labels, inertia, n_iter)
        centers, labels, inertia, n_iter = best
        self.cluster_centers_ = centers.astype(X.dtype, copy=False)
        self.labels_ = labels
        self.inertia_ = inertia
        self.energy_ = inertia / (2 * n)
        self.n_iter_ = n_iter
        self.n_steps_ = n_iter * self.n_inner
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.intp]:
        """Index of the nearest centre of every row of ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return assign(np.asarray(X, dtype=np.float64), np.asarray(self.cluster_centers_, np.float64))[0]

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Euclidean distance of every row of ``X`` to every centre, ``(n_samples, n_clusters)``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        X64 = np.asarray(X, dtype=np.float64)
        C = np.asarray(self.cluster_centers_, dtype=np.float64)
        sq = np.einsum("ij,ij->i", X64, X64)[:, None] - 2.0 * X64 @ C.T + np.einsum("ij,ij->i", C, C)
        return np.sqrt(np.maximum(sq, 0.0))

    def score(self, X: ArrayLike, y: None = None) -> float:
        """Opposite of the inertia of ``X`` for the fitted centres (scikit-learn's ``KMeans.score``)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        _, sq = assign(np.asarray(X, dtype=np.float64), np.asarray(self.cluster_centers_, np.float64))
        return -float(sq.sum())

    @property
    def _n_features_out(self) -> int:
        return self.n_clusters
