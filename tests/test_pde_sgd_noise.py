"""SGD as Euler-Maruyama, minibatch noise of 1-mean k-means, and the out-of-equilibrium 2-D toys.

Oracles: the AR(1) stationary variance ησ/(2 − η) (exact for SGD on a quadratic with additive noise);
the covariance of a minibatch mean computed by enumerating *every* minibatch of a tiny data set (with and
without replacement); fixed points and linearisations of the rotational toy in closed form; the Lyapunov
equation and the divergence-free condition ∇·(j e^{−βΦ}) = 0 for the linear non-isotropic case.
"""

import itertools

import numpy as np
import pytest

from deeprelax.pde.limit_cycles import (
    J,
    grad_double_well,
    linear_current_matrix,
    linear_stationary_covariance,
    linear_stationary_potential,
    rotational_fixed_points,
    rotational_force,
    saddle_eigenvalues,
)
from deeprelax.pde.minibatch_noise import kmeans1_gradient_noise, kmeans1_noise_covariance
from deeprelax.pde.sgd_diffusion import ou_stationary_variance, sgd, sgd_stationary_density

# ---------------------------------------------------------------------------------------------- SGD


@pytest.mark.parametrize("lr", [0.1, 1.0, 1.6])
def test_sgd_on_kmeans_matches_discrete_ou_variance(lr):
    rng = np.random.default_rng(0)
    y = rng.normal(0, 2, 500)
    ybar, b = y.mean(), 4
    sigma = y.var() / b
    p = sgd(
        lambda th, idx: th - y[idx].mean(axis=1),
        np.full(4000, ybar),
        lr=lr,
        n_steps=200,
        n_data=500,
        batch_size=b,
        rng=rng,
    )
    d = p.final - ybar
    v = ou_stationary_variance(lr, sigma)
    # chains independent; the noise is a mean of 4 draws, nearly Gaussian: SE of a variance ~ v*sqrt(2/n)*1.1
    assert abs(np.mean(d**2) - v) < 4 * 1.1 * v * np.sqrt(2 / d.size)
    # and it is NOT the continuum value for lr = 1.6 (ratio 2/(2-1.6) = 5)
    if lr > 1:
        assert np.mean(d**2) > 1.5 * ou_stationary_variance(lr, sigma, discrete=False)


def test_sgd_records_and_validates():
    rng = np.random.default_rng(1)
    p = sgd(
        lambda th, idx: th, np.ones(3), lr=0.5, n_steps=4, n_data=10, batch_size=2, rng=rng, record_every=2
    )
    assert np.allclose(p.t, [0, 1, 2]) and np.allclose(p.x[:, 0], [1, 0.25, 0.0625])
    with pytest.raises(ValueError, match="lr"):
        sgd(lambda th, idx: th, np.ones(3), lr=0, n_steps=1, n_data=1, batch_size=1, rng=rng)
    with pytest.raises(ValueError, match="batch_size"):
        sgd(lambda th, idx: th, np.ones(3), lr=0.1, n_steps=1, n_data=1, batch_size=0, rng=rng)
    with pytest.raises(ValueError, match="unstable"):
        ou_stationary_variance(2.5, 1.0)


def test_stationary_density_is_normalised_gibbs():
    x = np.linspace(-4, 4, 4001)
    rho = sgd_stationary_density(x, 0.5 * x**2, lr=0.1, sigma=2.0)  # Gaussian of variance ησ/2 = 0.1
    assert np.trapezoid(rho, x) == pytest.approx(1.0, abs=1e-12)
    assert np.trapezoid(rho * x**2, x) == pytest.approx(0.1, rel=1e-6)
    assert ou_stationary_variance(0.1, 2.0, discrete=False) == pytest.approx(0.1)


# ------------------------------------------------------------------------------------ minibatch noise


def test_minibatch_covariance_by_enumeration():
    y = np.array([0.0, 1.0, 5.0, -2.0, 3.5])
    n, b = y.size, 3
    with_rep = np.array([np.mean(y[list(i)]) - y.mean() for i in itertools.product(range(n), repeat=b)])
    without = np.array([np.mean(y[list(i)]) - y.mean() for i in itertools.combinations(range(n), b)])
    assert np.mean(with_rep) == pytest.approx(0, abs=1e-12)
    assert np.mean(with_rep**2) == pytest.approx(kmeans1_noise_covariance(y, b), rel=1e-12)
    assert np.mean(without**2) == pytest.approx(kmeans1_noise_covariance(y, b, replace=False), rel=1e-12)
    # 2-D data: covariance matrix
    Y = np.stack([y, y**2], 1)
    emp = np.array([np.mean(Y[list(i)], 0) - Y.mean(0) for i in itertools.product(range(n), repeat=2)])
    assert np.allclose(emp.T @ emp / len(emp), kmeans1_noise_covariance(Y, 2))


def test_minibatch_noise_samples():
    rng = np.random.default_rng(2)
    y = rng.exponential(1.0, 300)
    for replace in (True, False):
        z = kmeans1_gradient_noise(y, 30, 10000, rng, replace=replace)
        v = kmeans1_noise_covariance(y, 30, replace=replace)
        assert abs(z.mean()) < 4 * np.sqrt(v / z.size)
        assert abs(np.mean(z**2) / v - 1) < 4 * np.sqrt(2.2 / z.size)
    # without replacement a batch of the whole data set has no noise
    assert np.allclose(kmeans1_gradient_noise(y, 300, 5, rng, replace=False), 0)
    with pytest.raises(ValueError, match="batch_size"):
        kmeans1_gradient_noise(y, 301, 5, rng, replace=False)


# ------------------------------------------------------------------------------------- limit cycles


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.99, 1.5])
def test_rotational_toy_fixed_points_and_saddle(lam):
    F = rotational_force(lam)
    pts = rotational_fixed_points(lam)
    assert np.allclose(F(pts), 0, atol=1e-12)
    assert len(pts) == (3 if lam < 1 else 1)
    ev = np.sort_complex(saddle_eigenvalues(lam))
    if lam < 1:
        assert np.allclose(ev, [-np.sqrt(1 - lam**2), np.sqrt(1 - lam**2)])
    else:
        assert np.allclose(ev.real, 0) and np.allclose(np.abs(ev.imag), np.sqrt(lam**2 - 1))
    # the rotation is the non-gradient part: F + grad f = lam J x, whose curl is 2 lam
    x = np.array([[0.3, -0.7]])
    assert np.allclose(F(x) + grad_double_well(x), lam * x @ J.T)


def test_linear_nonisotropic_noise_potential_and_current():
    beta = 2.0
    H = np.diag([1.0, 3.0])
    R = np.array([[1.0, -1.0], [1.0, 1.0]]) / np.sqrt(2)
    D = R @ np.diag([1.8, 0.2]) @ R.T
    C = linear_stationary_covariance(H, D, beta)
    assert np.allclose(H @ C + C @ H.T, 2 / beta * D)
    A = linear_current_matrix(H, D, beta)
    # div(A x rho) = rho (tr A - x^T A^T C^{-1} x) = 0 for all x  <=>  tr A = 0 and A^T C^{-1} antisymmetric
    M = A.T @ np.linalg.inv(C)
    assert abs(np.trace(A)) < 1e-12 and np.allclose(M + M.T, 0, atol=1e-12)
    assert np.abs(A).max() > 0.1  # non-isotropic noise: a genuine current, Phi != f
    assert not np.allclose(linear_stationary_potential(H, D, beta), H)
    # isotropic noise: Phi = f, no current; commuting non-isotropic noise: no current, but P = H D^{-1}
    for Dc in (np.eye(2), np.diag([0.5, 2.0])):
        P = linear_stationary_potential(H, Dc, beta)
        assert np.allclose(linear_current_matrix(H, Dc, beta), 0, atol=1e-12)
        assert np.allclose(P, H @ np.linalg.inv(Dc))
    with pytest.raises(ValueError, match="H must be stable"):
        linear_stationary_covariance(-H, D, beta)
