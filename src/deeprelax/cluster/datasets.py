r"""Benchmark data for k-means with a *certified* global minimum (seeded generators, numpy only).

``make_separated_blobs`` — the round-1 instances (``blobs8``): ``n_clusters`` truncated Gaussian blobs in
the plane,
means on a jittered :math:`\lceil K/2\rceil \times 2` grid of spacing ``separation``, unequal sizes
(proportions ~ Dirichlet(``size_concentration``); ``None``: equal sizes) and unequal spreads
(:math:`\sigma_g \sim U(\text{spread})`),
each point :math:`\mu_g + \sigma_g \xi` with :math:`\xi \sim N(0, I_2)` conditioned on :math:`|\xi| \le`
``truncate``. Well separated blobs make bad local minima *deep* (two centres sharing one blob while one
centre sits between two blobs is a stable Lloyd fixed point), so random-init EM fails often, and make the
global minimum provable by :func:`deeprelax.cluster.certify.certify_global_minimum`.

``make_gaussian_mixture`` / ``benchmark_family`` — the round-2 benchmark family (K 4-20, dimension 2-50,
separation, imbalance 1:1-1:10, anisotropy, N), split into a training half (for choosing defaults) and a
held-out half (for reporting); see :func:`benchmark_family`.

``make_four_means_three_clusters`` — the seed's picture: 4 means, 3 clusters, one of them a *double*
cluster (two lumps close together); the optimum puts two means in the double cluster.

:data:`BENCHMARKS` records the parameters and the certified values (inertia :math:`E^*` and normalised
energy :math:`f^* = E^*/(2N)`) of the instances used by ``deeprelax kmeans``; ``tests/test_kmeans_data.py``
regenerates them and re-runs the certificate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from deeprelax.cluster.certify import Certificate, certify_global_minimum

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "FamilyMember",
    "KMeansDataset",
    "benchmark_family",
    "make_gaussian_mixture",
    "load_benchmark",
    "make_four_means_three_clusters",
    "make_separated_blobs",
]


@dataclass
class KMeansDataset:
    """Points ``X`` ``(N, 2)``, generating group ``labels``, group ``means`` and the ``n_clusters`` to fit."""

    X: NDArray[np.float64]
    labels: NDArray[np.intp]
    means: NDArray[np.float64]
    n_clusters: int
    params: dict[str, Any]


def _truncated_normal_2d(rng: np.random.Generator, n: int, truncate: float) -> NDArray[np.float64]:
    """``n`` draws of N(0, I_2) conditioned on norm <= truncate (rejection, vectorised in rounds)."""
    out = np.empty((0, 2))
    while len(out) < n:
        xi = rng.standard_normal((2 * (n - len(out)) + 16, 2))
        out = np.vstack([out, xi[np.einsum("ij,ij->i", xi, xi) <= truncate**2]])
    return out[:n]


def _blobs(
    rng: np.random.Generator, means: NDArray, sizes: NDArray, sigmas: NDArray, truncate: float
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    X = np.concatenate(
        [
            m + s * _truncated_normal_2d(rng, int(n), truncate)
            for m, n, s in zip(means, sizes, sigmas, strict=True)
        ]
    )
    labels = np.repeat(np.arange(len(means)), sizes)
    perm = rng.permutation(len(X))
    return X[perm], labels[perm]


def make_separated_blobs(
    n_samples: int = 16000,
    *,
    n_clusters: int = 8,
    separation: float = 26.0,
    spread: tuple[float, float] = (0.6, 1.4),
    size_concentration: float | None = None,
    truncate: float = 3.0,
    random_state: int = 0,
) -> KMeansDataset:
    """The benchmark family (module docstring). Every argument is recorded in ``params``."""
    if n_clusters < 1 or n_samples < n_clusters:
        raise ValueError(
            f"need 1 <= n_clusters <= n_samples, got n_clusters={n_clusters}, n_samples={n_samples}"
        )
    if not 0 < spread[0] <= spread[1]:
        raise ValueError(f"spread must be (low, high) with 0 < low <= high, got {spread!r}")
    if separation <= 0 or truncate <= 0 or (size_concentration is not None and size_concentration <= 0):
        raise ValueError("separation, truncate and size_concentration must be > 0")
    rng = np.random.default_rng(random_state)
    cols = -(-n_clusters // 2)
    grid = np.array([[i, j] for j in range(2) for i in range(cols)], dtype=np.float64)[:n_clusters]
    means = (grid + rng.uniform(-0.1, 0.1, size=grid.shape)) * separation
    if size_concentration is None:
        props = np.full(n_clusters, 1.0 / n_clusters)
    else:
        props = rng.dirichlet(np.full(n_clusters, size_concentration))
    sizes = np.floor(props * n_samples).astype(np.intp)
    sizes[np.argsort(props * n_samples - sizes)[::-1][: n_samples - sizes.sum()]] += 1
    if np.any(sizes < 1):
        raise ValueError("a blob got no points: increase n_samples or size_concentration")
    sigmas = rng.uniform(spread[0], spread[1], size=n_clusters)
    X, labels = _blobs(rng, means, sizes, sigmas, truncate)
    params = dict(
        generator="make_separated_blobs",
        n_samples=n_samples,
        n_clusters=n_clusters,
        separation=separation,
        spread=list(spread),
        size_concentration=size_concentration,
        truncate=truncate,
        random_state=random_state,
        sizes=sizes.tolist(),
        sigmas=sigmas.round(6).tolist(),
        means=means.round(6).tolist(),
    )
    return KMeansDataset(X=X, labels=labels, means=means, n_clusters=n_clusters, params=params)


def make_four_means_three_clusters(
    n_per_lump: int = 150,
    *,
    lump_distance: float = 14.0,
    cluster_distance: float = 40.0,
    sigma: float = 1.0,
    truncate: float = 3.0,
    random_state: int = 0,
) -> KMeansDataset:
    """The seed's example: clusters A and B and a double cluster D = two lumps ``lump_distance`` apart.

    Four groups (A, B, D-left, D-right), ``n_per_lump`` points each, equal spread; fit with 4 means. The
    three clusters sit on a triangle of side ``cluster_distance``. The optimum is one mean per lump (two in
    the double cluster); the classic EM trap is two means in A (or B) and one mean between the two lumps.
    """
    if n_per_lump < 1 or sigma <= 0 or lump_distance <= 0 or cluster_distance <= 0:
        raise ValueError("n_per_lump, sigma, lump_distance and cluster_distance must be positive")
    rng = np.random.default_rng(random_state)
    h = cluster_distance * np.sqrt(3) / 2
    means = np.array(
        [
            [0.0, 0.0],  # A
            [cluster_distance, 0.0],  # B
            [cluster_distance / 2 - lump_distance / 2, h],  # D, left lump
            [cluster_distance / 2 + lump_distance / 2, h],  # D, right lump
        ]
    )
    sizes = np.full(4, n_per_lump, dtype=np.intp)
    X, labels = _blobs(rng, means, sizes, np.full(4, sigma), truncate)
    params = dict(
        generator="make_four_means_three_clusters",
        n_per_lump=n_per_lump,
        lump_distance=lump_distance,
        cluster_distance=cluster_distance,
        sigma=sigma,
        truncate=truncate,
        random_state=random_state,
    )
    return KMeansDataset(X=X, labels=labels, means=means, n_clusters=4, params=params)


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark instance: how to generate it and its certified global minimum."""

    name: str
    description: str
    generator: str
    kwargs: dict[str, Any]
    certified_inertia: float
    certified_energy: float

    def make(self) -> KMeansDataset:
        return _GENERATORS[self.generator](**self.kwargs)

    def certify(self) -> tuple[KMeansDataset, Certificate]:
        data = self.make()
        return data, certify_global_minimum(data.X, data.labels)


_GENERATORS: dict[str, Callable[..., KMeansDataset]] = {
    "make_separated_blobs": make_separated_blobs,
    "make_four_means_three_clusters": make_four_means_three_clusters,
}

#: The certified instances. The values were produced by ``certify_global_minimum`` on the generated data
#: (``python bench/kmeans_certify.py`` re-derives them and cross-checks with k-means++ restarts) and are
#: re-checked by ``tests/test_kmeans_data.py``.
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark(
            name="blobs8",
            description="8 equal-size truncated Gaussian blobs (2000 points each, sigma ~ U(0.6, 1.4), "
            "truncated at 3 sigma) on a jittered 4x2 grid of spacing 26; N = 16000, K = 8",
            generator="make_separated_blobs",
            kwargs=dict(
                n_samples=16000,
                n_clusters=8,
                separation=26.0,
                spread=(0.6, 1.4),
                size_concentration=None,
                truncate=3.0,
                random_state=0,
            ),
            certified_inertia=29455.76446130607,
            certified_energy=0.9204926394158147,
        ),
        Benchmark(
            name="blobs8-unequal",
            description="as blobs8 but unequal sizes (proportions ~ Dirichlet(8): 1477 to 2969 points)",
            generator="make_separated_blobs",
            kwargs=dict(
                n_samples=16000,
                n_clusters=8,
                separation=26.0,
                spread=(0.6, 1.4),
                size_concentration=8.0,
                truncate=3.0,
                random_state=0,
            ),
            certified_inertia=33935.12394480911,
            certified_energy=1.0604726232752846,
        ),
        Benchmark(
            name="four-means",
            description="the seed's example: 4 means on 3 clusters (A, B and a double cluster of two lumps "
            "14 apart; clusters 40 apart; 150 points per lump, sigma 1); N = 600, K = 4",
            generator="make_four_means_three_clusters",
            kwargs=dict(
                n_per_lump=150,
                lump_distance=14.0,
                cluster_distance=40.0,
                sigma=1.0,
                truncate=3.0,
                random_state=0,
            ),
            certified_inertia=1131.364789164364,
            certified_energy=0.9428039909703034,
        ),
    ]
}


def load_benchmark(name: str) -> tuple[KMeansDataset, Benchmark]:
    """Generate the benchmark instance ``name`` (one of :data:`BENCHMARKS`)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown k-means benchmark {name!r}; choose from {sorted(BENCHMARKS)}")
    b = BENCHMARKS[name]
    return b.make(), b


# ------------------------------------------------------------------------------------ the benchmark family
def _truncated_normal(rng: np.random.Generator, n: int, d: int, radius: float) -> NDArray[np.float64]:
    """``n`` draws of N(0, I_d) conditioned on norm <= radius (rejection in vectorised rounds)."""
    out = np.empty((0, d))
    while len(out) < n:
        xi = rng.standard_normal((2 * (n - len(out)) + 16, d))
        out = np.vstack([out, xi[np.einsum("ij,ij->i", xi, xi) <= radius**2]])
    return out[:n]


def make_gaussian_mixture(
    n_samples: int = 8000,
    *,
    n_clusters: int = 8,
    n_features: int = 2,
    separation: float = 4.0,
    imbalance: float = 1.0,
    anisotropy: float = 1.0,
    spread: tuple[float, float] = (0.8, 1.25),
    truncate_quantile: float = 0.999,
    random_state: int = 0,
) -> KMeansDataset:
    r"""A family member: ``n_clusters`` truncated anisotropic Gaussians in ``n_features`` dimensions.

    * **sizes** :math:`n_g \propto \rho^{-g/(K-1)}` with :math:`\rho` = ``imbalance`` (largest / smallest
      cluster; 1 = equal sizes), assigned to the clusters in random order;
    * **shapes** :math:`\Sigma_g = \sigma_g^2 R_g \operatorname{diag}(a^{-k/(d-1)})_{k<d} R_g^\top`: random
      rotations :math:`R_g`, axis variances from :math:`\sigma_g^2` down to :math:`\sigma_g^2/a`
      (:math:`a` = ``anisotropy``), :math:`\sigma_g \sim U(\text{spread})`;
    * **truncation** :math:`y = \mu_g + \Sigma_g^{1/2}\xi`, :math:`\xi \sim N(0, I_d)` conditioned on
      :math:`|\xi|^2 \le \chi^2_d(q)` (``truncate_quantile`` q): bounded support, no outliers;
    * **separation** :math:`s`: means drawn in the unit cube (dart throwing, so no two nearly coincide), then
      scaled so that :math:`\min_{g \ne h} |\mu_g - \mu_h| / (\sigma_g + \sigma_h) = s`; the closest pair's
      means are :math:`s` largest-axis standard deviations (each) apart. :math:`s \approx 2`: barely
      separated (the 1-d projections on the line between the two means touch at 2 sd);
      :math:`s \gtrsim 5`: well separated.
    """
    from scipy.stats import chi2

    K, d = int(n_clusters), int(n_features)
    if K < 1 or n_samples < K or d < 1:
        raise ValueError(f"need 1 <= n_clusters <= n_samples and n_features >= 1, got {K}, {n_samples}, {d}")
    if not (separation > 0 and imbalance >= 1 and anisotropy >= 1 and 0 < spread[0] <= spread[1]):
        raise ValueError(
            "need separation > 0, imbalance >= 1, anisotropy >= 1, spread = (low, high), 0 < low <= high"
        )
    if not 0 < truncate_quantile < 1:
        raise ValueError(f"truncate_quantile must be in (0, 1), got {truncate_quantile!r}")
    rng = np.random.default_rng(random_state)
    expo = np.arange(K) / max(K - 1, 1)
    props = rng.permutation(imbalance ** (-expo))
    props = props / props.sum()
    sizes = np.floor(props * n_samples).astype(np.intp)
    sizes[np.argsort(props * n_samples - sizes)[::-1][: n_samples - sizes.sum()]] += 1
    if np.any(sizes < 1):
        raise ValueError("a cluster got no points: increase n_samples or decrease imbalance")
    sigmas = rng.uniform(spread[0], spread[1], size=K)
    # means: dart throwing in the unit cube with a minimum distance, then the scale that sets the separation
    r0 = 0.5 * K ** (-1.0 / d)
    pts: list[NDArray] = []
    while len(pts) < K:
        cand = rng.uniform(size=d)
        if all(np.linalg.norm(cand - p) >= r0 for p in pts):
            pts.append(cand)
        else:
            r0 *= 0.999  # never stalls
    U = np.array(pts)
    if K > 1:
        dist = np.linalg.norm(U[:, None] - U[None], axis=2)
        ratio = dist / (sigmas[:, None] + sigmas[None, :])
        ratio[np.eye(K, dtype=bool)] = np.inf
        means = U * (separation / ratio.min())
    else:
        means = U
    radius = float(np.sqrt(chi2.ppf(truncate_quantile, d)))
    axis_var = anisotropy ** (-np.arange(d) / max(d - 1, 1))
    blocks = []
    for g in range(K):
        Q, R = np.linalg.qr(rng.standard_normal((d, d)))
        Q = Q * np.sign(np.diag(R))  # a uniformly random rotation (Haar)
        xi = _truncated_normal(rng, int(sizes[g]), d, radius)
        blocks.append(means[g] + (xi * (sigmas[g] * np.sqrt(axis_var))) @ Q.T)
    X = np.concatenate(blocks)
    labels = np.repeat(np.arange(K), sizes)
    perm = rng.permutation(len(X))
    params = dict(
        generator="make_gaussian_mixture",
        n_samples=int(n_samples),
        n_clusters=K,
        n_features=d,
        separation=float(separation),
        imbalance=float(imbalance),
        anisotropy=float(anisotropy),
        spread=list(spread),
        truncate_quantile=float(truncate_quantile),
        random_state=int(random_state),
        sizes=sizes.tolist(),
        sigmas=sigmas.round(6).tolist(),
    )
    return KMeansDataset(X=X[perm], labels=labels[perm], means=means, n_clusters=K, params=params)


@dataclass(frozen=True)
class FamilyMember:
    """One member of :func:`benchmark_family`: generator arguments, the batch size to run at, its split."""

    name: str
    kwargs: dict[str, Any]
    batch_size: int
    split: str  # "train" or "held-out"

    @property
    def equal_sizes(self) -> bool:
        return self.kwargs["imbalance"] == 1.0

    def make(self) -> KMeansDataset:
        return make_gaussian_mixture(**self.kwargs)


def benchmark_family(n_members: int = 24, *, random_state: int = 2026) -> list[FamilyMember]:
    """A seeded sample of the family: half equal-size, half unequal (imbalance 1:2 .. 1:10), split in halves.

    Parameters drawn independently per member: K uniform in 4..20, dimension log-uniform in 2..50,
    separation log-uniform in [2, 16] (barely to very well separated), anisotropy log-uniform in [1, 10], N
    log-uniform in [2000, 20000], batch size from {250, 500, 1000} (at most N / 4). Equal-size and unequal
    members alternate; within each kind, every other member (in drawing order) is held out, so both halves
    have the same mix. The held-out half is never used for choosing the defaults.
    """
    rng = np.random.default_rng(random_state)
    members = []
    for i in range(n_members):
        equal = i % 2 == 0
        K = int(rng.integers(4, 21))
        d = int(np.round(np.exp(rng.uniform(np.log(2), np.log(50)))))
        sep = float(np.round(np.exp(rng.uniform(np.log(2.0), np.log(16.0))), 2))
        aniso = float(np.round(np.exp(rng.uniform(0, np.log(10))), 2))
        n = int(np.round(np.exp(rng.uniform(np.log(2000), np.log(20000))), -2))
        imb = 1.0 if equal else float(np.round(np.exp(rng.uniform(np.log(2), np.log(10))), 2))
        batch = int(min(rng.choice([250, 500, 1000]), n // 4))
        seed = int(rng.integers(0, 2**31 - 1))
        split = "held-out" if (i // 2) % 2 == 1 else "train"
        kwargs = dict(
            n_samples=n,
            n_clusters=K,
            n_features=d,
            separation=sep,
            imbalance=imb,
            anisotropy=aniso,
            random_state=seed,
        )
        name = f"m{i:02d}-K{K}-d{d}-s{sep:g}-r{imb:g}-a{aniso:g}-N{n}"
        members.append(FamilyMember(name=name, kwargs=kwargs, batch_size=batch, split=split))
    return members
