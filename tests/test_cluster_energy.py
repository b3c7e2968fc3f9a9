"""k-means energy, gradient and the backward-Euler step against independent oracles."""

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.cluster import KMeans

from deeprelax.cluster import assign, backward_euler_step, kmeans_energy, kmeans_gradient
from deeprelax.cluster.energy import cluster_sums, inertia_to_energy


def _three_blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    return np.concatenate([m + rng.standard_normal((n // 3, 2)) for m in means]), means


def _naive_energy(X, C):
    return sum(min(float(np.sum((c - y) ** 2)) for c in C) for y in X) / (2 * len(X))


def _naive_gradient(X, C):
    g = np.zeros_like(C)
    for y in X:
        i = int(np.argmin([np.sum((c - y) ** 2) for c in C]))
        g[i] += C[i] - y
    return g / len(X)


def test_energy_and_gradient_match_naive_loops():
    X, means = _three_blobs()
    C = means + 0.3
    assert kmeans_energy(X, C) == pytest.approx(_naive_energy(X, C), rel=1e-13)
    np.testing.assert_allclose(kmeans_gradient(X, C), _naive_gradient(X, C), rtol=1e-12, atol=1e-14)
    labels, sq = assign(X, C)
    np.testing.assert_allclose(sq, np.min(((X[:, None] - C[None]) ** 2).sum(-1), axis=1), atol=1e-12)


def test_cluster_sums_many_features_path():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 12))  # d > 2: the one-hot matrix-product branch
    labels = rng.integers(0, 4, 50)
    counts, sums = cluster_sums(X, labels, 5)
    np.testing.assert_array_equal(counts, [np.sum(labels == i) for i in range(5)])
    np.testing.assert_allclose(sums, [X[labels == i].sum(0) for i in range(5)], atol=1e-12)


def test_gradient_is_derivative_of_energy():
    X, means = _three_blobs()
    C = means + np.array([[0.2, -0.1], [0.1, 0.3], [-0.2, 0.1]])
    g = kmeans_gradient(X, C)
    h = 1e-6  # the energy is smooth here: no point changes centre within +-h
    num = np.zeros_like(C)
    for i in range(C.shape[0]):
        for k in range(C.shape[1]):
            E = np.zeros_like(C)
            E[i, k] = h
            num[i, k] = (kmeans_energy(X, C + E) - kmeans_energy(X, C - E)) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_energy_is_sklearn_inertia_over_2n():
    X, means = _three_blobs()
    km = KMeans(3, init=means, n_init=1).fit(X)
    assert kmeans_energy(X, km.cluster_centers_) == pytest.approx(km.inertia_ / (2 * len(X)), rel=1e-10)
    assert inertia_to_energy(km.inertia_, len(X)) == pytest.approx(km.inertia_ / (2 * len(X)))


def test_one_inner_step_is_explicit_gradient_step():
    X, means = _three_blobs()
    x = means + 0.5
    y1 = backward_euler_step(X, x, 0.7, n_inner=1, averaging=0.0, batch_size=None)
    np.testing.assert_allclose(y1, x - 0.7 * _naive_gradient(X, x), atol=1e-13)


@pytest.mark.parametrize("averaging", [0.0, 0.75])
def test_full_batch_fixed_point_is_the_proximal_backward_euler_step(averaging):
    """Exact check: the fixed point of y = x - γ∇f(y) equals the proximal step computed independently."""
    X, means = _three_blobs()
    x = means + np.array([[1.0, -0.5], [-0.8, 0.6], [0.4, 1.2]])
    gamma = 0.9  # γ p_i < 1 for every i: the iteration contracts
    y = backward_euler_step(X, x, gamma, n_inner=400, averaging=averaging, batch_size=None)
    # (a) it solves the implicit (backward-Euler) equation
    np.testing.assert_allclose(y, x - gamma * _naive_gradient(X, y), atol=1e-12)
    # (b) closed form for the assignment at y: y_i = (x_i + γ p_i c_i) / (1 + γ p_i)
    labels, _ = assign(X, y)
    for i in range(3):
        p = np.mean(labels == i)
        c = X[labels == i].mean(axis=0)
        np.testing.assert_allclose(y[i], (x[i] + gamma * p * c) / (1 + gamma * p), atol=1e-12)

    # (c) an independent minimisation of the proximal objective f(y) + |y - x|^2 / (2γ) from x
    def F(v):
        v = v.reshape(x.shape)
        f = np.sum(np.min(np.sum((X[:, None, :] - v[None]) ** 2, axis=2), axis=1)) / (2 * len(X))
        return f + np.sum((v - x) ** 2) / (2 * gamma)

    res = minimize(F, x.ravel(), method="Nelder-Mead", options=dict(xatol=1e-10, fatol=1e-14, maxiter=40000))
    np.testing.assert_allclose(y, res.x.reshape(x.shape), atol=1e-6)
    assert F(y.ravel()) <= res.fun + 1e-12
    assert kmeans_energy(X, y) < kmeans_energy(X, x)  # an implicit step descends


def test_minibatch_gradient_step_is_unbiased():
    """E[x - γ∇f_I(x)] = x - γ∇f(x): Monte-Carlo mean within 4 standard errors (400 seeded batches)."""
    X, means = _three_blobs(n=90)
    x = means + 0.4
    draws = np.stack(
        [
            backward_euler_step(X, x, 1.0, n_inner=1, averaging=0.0, batch_size=10, random_state=s)
            for s in range(400)
        ]
    )
    se = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    exact = x - kmeans_gradient(X, x)
    assert np.all(np.abs(draws.mean(axis=0) - exact) <= 4 * se + 1e-12)
    assert np.all(se > 0)  # the batches really are random


def test_backward_euler_step_rejects_bad_arguments():
    X, means = _three_blobs()
    with pytest.raises(ValueError, match="step_size"):
        backward_euler_step(X, means, 0.0)
    with pytest.raises(ValueError, match="n_inner"):
        backward_euler_step(X, means, 1.0, n_inner=0)
    with pytest.raises(ValueError, match="averaging"):
        backward_euler_step(X, means, 1.0, averaging=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        backward_euler_step(X, means, 1.0, batch_size=0)
    with pytest.raises(ValueError, match="x must have shape"):
        backward_euler_step(X, means[:, :1], 1.0)
