"""The swap move (deeprelax.cluster.swap) against brute force, and what it does inside ESGDKMeans."""

import numpy as np
import pytest
from sklearn.cluster import KMeans

from deeprelax.cluster import ESGDKMeans, kmeans_energy
from deeprelax.cluster.certify import certify_global_minimum
from deeprelax.cluster.datasets import load_benchmark, make_separated_blobs
from deeprelax.cluster.swap import best_swap, swap_scores


def _sse(Y, C, w=None):
    d = ((Y[:, None, :] - C[None]) ** 2).sum(-1).min(1)
    return float(d.sum() if w is None else w @ d)


def _anisotropic_clusters(rng, K=5, d=3, n=60):
    """K elongated clusters (top variance 9x the others: a clear principal axis) and centres near them."""
    means = rng.normal(scale=12.0, size=(K, d))
    Y = np.concatenate([m + rng.normal(size=(n, d)) * np.r_[3.0, np.ones(d - 1)] for m in means])
    return Y, means + rng.normal(scale=0.3, size=means.shape)


@pytest.mark.parametrize("weighted", [False, True])
def test_cost_is_the_exact_energy_of_removing_each_centre(weighted):
    rng = np.random.default_rng(0)
    Y, x = rng.normal(size=(300, 4)), rng.normal(size=(6, 4))
    w = rng.uniform(0.1, 3.0, size=300) if weighted else None
    cost, _, _ = swap_scores(Y, x, w)
    base = _sse(Y, x, w)
    exact = [_sse(Y, np.delete(x, a, 0), w) - base for a in range(len(x))]
    np.testing.assert_allclose(cost, exact, rtol=1e-10, atol=1e-10)


def test_gain_is_the_exact_energy_saved_by_the_principal_axis_cut():
    """gain_b and m_+- against an explicit cut through the mean perpendicular to the eigh top eigenvector."""
    rng = np.random.default_rng(1)
    Y, x = _anisotropic_clusters(rng)
    cost, gain, halves = swap_scores(Y, x)
    labels = ((Y[:, None] - x[None]) ** 2).sum(-1).argmin(1)
    for b in range(len(x)):
        P = Y[labels == b]
        Q = P - P.mean(0)
        u = np.linalg.eigh(Q.T @ Q)[1][:, -1]
        side = Q @ u > 0
        m = np.stack([P[~side].mean(0), P[side].mean(0)])
        if np.dot(halves[b, 1] - halves[b, 0], m[1] - m[0]) < 0:  # the axis' sign is arbitrary
            m = m[::-1]
        np.testing.assert_allclose(halves[b], m, rtol=0, atol=1e-9)
        split = ((P[~side] - P[~side].mean(0)) ** 2).sum() + ((P[side] - P[side].mean(0)) ** 2).sum()
        assert gain[b] == pytest.approx(((P - x[b]) ** 2).sum() - split, rel=1e-9)


def test_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(2)
    Y, x = _anisotropic_clusters(rng, K=4)
    w = rng.integers(1, 4, size=len(Y)).astype(float)
    a = swap_scores(Y, x, w)
    b = swap_scores(np.repeat(Y, w.astype(int), axis=0), x)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-9)


def test_scores_are_equivariant_under_similarity_transforms():
    rng = np.random.default_rng(3)
    Y, x = _anisotropic_clusters(rng, K=4)
    R, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    c, t = 7.0, np.array([100.0, -5.0, 3.0])
    cost, gain, halves = swap_scores(Y, x)
    cost2, gain2, halves2 = swap_scores(c * Y @ R.T + t, c * x @ R.T + t)
    np.testing.assert_allclose(cost2, c**2 * cost, rtol=1e-8)
    np.testing.assert_allclose(gain2, c**2 * gain, rtol=1e-8)
    np.testing.assert_allclose(halves2, c * halves @ R.T + t, rtol=0, atol=1e-8)


@pytest.fixture(scope="module")
def misplaced_pair():
    """Six separated, certified clusters; centres with two on cluster 0 and one between clusters 4 and 5."""
    data = make_separated_blobs(n_samples=600, n_clusters=6, separation=20.0, random_state=4)
    cert = certify_global_minimum(data.X, data.labels)
    assert cert.certified
    m = data.means
    x = np.array([m[0] - 0.5, m[0] + 0.5, m[1], m[2], m[3], 0.5 * (m[4] + m[5])])
    return data, cert, x


def test_best_swap_repairs_a_misplaced_pair_and_leaves_the_optimum_alone(misplaced_pair):
    data, cert, x = misplaced_pair
    new = best_swap(data.X, x)
    assert new is not None and kmeans_energy(data.X, new) < kmeans_energy(data.X, x)
    lloyd = KMeans(6, init=new, n_init=1).fit(data.X)
    assert lloyd.inertia_ == pytest.approx(cert.inertia, rel=1e-9)  # the swap lands in the optimal basin
    assert KMeans(6, init=x, n_init=1).fit(data.X).inertia_ > 1.5 * cert.inertia  # Lloyd alone is stuck
    assert best_swap(data.X, lloyd.cluster_centers_) is None  # no swap lowers the optimum's energy
    assert best_swap(data.X, x[:1]) is None  # one centre: nothing to swap


def test_esgd_escapes_the_four_means_trap_only_with_swaps():
    """The crafted EM trap of docs/kmeans.md (two means in one cluster, one between two lumps): the default
    schedule without swaps stays in it (measured 5/5 stuck), with swaps it reaches the certified minimum."""
    data, bench = load_benchmark("four-means")
    A, B, D1, D2 = data.means
    init = np.array([A + [-0.5, 0.0], A + [0.5, 0.0], 0.5 * (D1 + D2), B])
    for seed in range(5):
        stuck = ESGDKMeans(4, init=init, batch_size=100, n_swaps=0, random_state=seed).fit(data.X)
        assert stuck.energy_ > 5 * bench.certified_energy and stuck.n_swaps_ == 0
        est = ESGDKMeans(4, init=init, batch_size=100, random_state=seed).fit(data.X)
        assert est.energy_ == pytest.approx(bench.certified_energy, rel=1e-9)
        assert est.n_swaps_ >= 1


def test_swaps_are_capped_by_n_swaps():
    """Two misplaced pairs (two centres on each of clusters 0 and 1, one on each of the merged pairs (4, 5)
    and (6, 7) of a 4 x 2 grid): the search makes exactly two swaps, and n_swaps=1 stops after one."""
    data = make_separated_blobs(n_samples=800, n_clusters=8, separation=20.0, random_state=4)
    m = data.means
    x = np.array(
        [m[0] - 0.5, m[0] + 0.5, m[1] - 0.5, m[1] + 0.5, m[2], m[3], (m[4] + m[5]) / 2, (m[6] + m[7]) / 2]
    )
    both, n = ESGDKMeans(8)._swap_search(data.X, None, x)
    one, n1 = ESGDKMeans(8, n_swaps=1)._swap_search(data.X, None, x)
    assert (n, n1) == (2, 1)
    lloyd = KMeans(8, init=m, n_init=1).fit(data.X).inertia_ / (2 * len(data.X))
    assert kmeans_energy(data.X, both) == pytest.approx(lloyd, rel=1e-9)  # the generating partition
    assert kmeans_energy(data.X, one) > 5 * lloyd


def test_random_inits_reach_the_certified_minimum_with_the_defaults():
    """Default schedule from random centres on 8 separated blobs: measured 20/20 with swaps, 4/20 without."""
    data = make_separated_blobs(n_samples=800, n_clusters=8, separation=26.0, random_state=1)
    cert = certify_global_minimum(data.X, data.labels)
    found = [
        ESGDKMeans(8, init="random", batch_size=100, random_state=s).fit(data.X).energy_
        <= cert.energy * (1 + 1e-9)
        for s in range(20)
    ]
    without = [
        ESGDKMeans(8, init="random", batch_size=100, n_swaps=0, random_state=s).fit(data.X).energy_
        <= cert.energy * (1 + 1e-9)
        for s in range(20)
    ]
    assert sum(found) >= 19 and sum(without) <= 8


def test_partial_fit_swaps_when_the_stream_converges():
    data, bench = load_benchmark("four-means")
    A, B, D1, D2 = data.means
    init = np.array([A + [-0.5, 0.0], A + [0.5, 0.0], 0.5 * (D1 + D2), B])
    rng = np.random.default_rng(0)
    est = ESGDKMeans(4, init=init, batch_size=100, random_state=0)
    for _ in range(60):
        order = rng.permutation(len(data.X))
        for chunk in np.array_split(data.X[order], 10):
            est.partial_fit(chunk)
        if est.converged_:
            break
    for chunk in np.array_split(data.X, 10):  # one full pass of the streaming polish
        est.partial_fit(chunk)
    assert est.converged_ and est.n_swaps_ >= 1
    assert kmeans_energy(data.X, est.cluster_centers_) <= bench.certified_energy * (1 + 1e-3)


def test_swap_search_is_swaps_each_followed_by_lloyd_steps(misplaced_pair):
    """``_swap_search``: the swap, then up to SWAP_LLOYD_STEPS Lloyd steps on the same rows, until no swap."""
    from deeprelax.cluster.stochastic_backward_euler import SWAP_LLOYD_STEPS, _polish

    data, cert, x = misplaced_pair
    est = ESGDKMeans(6)
    found, n = est._swap_search(data.X, None, x)
    expected = _polish(data.X, best_swap(data.X, x), None, SWAP_LLOYD_STEPS)[0]
    assert n == 1
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-12)
    assert kmeans_energy(data.X, found) == pytest.approx(cert.energy, rel=1e-9)
    same, n0 = ESGDKMeans(6, n_swaps=0)._swap_search(data.X, None, x)
    assert n0 == 0 and same is x


def _best_swap_unfiltered(Y, x, w=None):
    """best_swap's rule with every cluster cut (no skipping): the reference for the skipping rule."""
    cost, gain, halves = swap_scores(Y, x, w)
    delta = cost[:, None] - gain[None, :]
    np.fill_diagonal(delta, np.inf)
    a, b = np.unravel_index(np.argmin(delta), delta.shape)
    if not delta[a, b] < 0:
        return None
    new = x.copy()
    new[a], new[b] = halves[b]
    return new if _sse(Y, new, w) < _sse(Y, x, w) else None


@pytest.mark.parametrize("seed", range(12))
def test_skipping_clusters_that_cannot_pay_changes_nothing(seed):
    """Random data and centres (swaps often pay) and separated clusters near their optimum (they never
    do): best_swap equals the rule applied with every cluster cut."""
    rng = np.random.default_rng(seed)
    K = int(rng.integers(2, 9))
    if seed % 2:
        Y, x = rng.normal(size=(200, 3)), rng.normal(size=(K, 3))
    else:
        Y, x = _anisotropic_clusters(rng, K=K, n=40)
    w = rng.uniform(0.5, 2.0, size=len(Y)) if seed % 3 == 0 else None
    got, want = best_swap(Y, x, w), _best_swap_unfiltered(Y, x, w)
    assert (got is None) == (want is None)
    if got is not None:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
