"""The Parle lab: its particle simulator against exact special cases, and the lab's claim on its numbers."""

import numpy as np
import pytest

from deeprelax.experiments.lab import parle as lab
from deeprelax.pde.hopf_cole import local_entropy_1d
from deeprelax.pde.particles import simulate


def quad_prime(x):
    return 2.0 * (x - 1.0)  # f = (x − 1)²


def test_elastic_with_rho_zero_is_sgd_and_strong_coupling_collapses_the_particles():
    x0 = np.random.default_rng(0).uniform(-2, 2, (8, 5))
    a = simulate("sgd", quad_prime, x0, steps=50, lr=0.05, beta=1e3, rng=np.random.default_rng(1))
    b = simulate(
        "elastic-sgd", quad_prime, x0, steps=50, lr=0.05, beta=1e3, rho=0.0, rng=np.random.default_rng(1)
    )
    assert np.array_equal(a.x, b.x)
    c = simulate(
        "elastic-sgd", quad_prime, x0, steps=200, lr=0.05, beta=np.inf, rho=10.0, rng=np.random.default_rng(1)
    )
    assert np.max(np.std(c.x[-1], axis=1)) < 1e-8 and np.allclose(c.reference[-1], 1.0, atol=1e-6)


def test_noise_free_elastic_mean_follows_gradient_descent_on_a_quadratic():
    # the coupling cancels in the mean: x̄_{k+1} = x̄_k − lr f'(x̄_k) exactly for a quadratic
    x0 = np.random.default_rng(2).uniform(-2, 2, (3, 4))
    run = simulate(
        "elastic-sgd", quad_prime, x0, steps=30, lr=0.1, beta=np.inf, rho=0.7, rng=np.random.default_rng(0)
    )
    xbar = x0.mean(axis=1)
    for k in range(31):
        np.testing.assert_allclose(run.reference[k], 1 + (1 - 0.2) ** k * (xbar - 1), atol=1e-12)


def test_exact_mean_parle_converges_to_a_stationary_point_of_the_local_entropy():
    x0 = np.array([[-0.5], [2.5]])
    run = simulate(
        "parle-exact",
        lab.fprime,
        x0,
        steps=300,
        lr=0.5,
        beta=lab.BETA,
        gamma=1 / lab.T,
        f=lab.f,
        y_grid=lab.Y_GRID,
        rng=np.random.default_rng(0),
    )
    grad = local_entropy_1d(lab.f, run.x[-1], lab.T, lab.BETA, lab.Y_GRID).grad
    assert np.max(np.abs(grad)) < 1e-6


def test_bad_method_is_a_value_error():
    with pytest.raises(ValueError, match="method"):
        simulate("adam", quad_prime, np.zeros((1, 1)), steps=1, lr=0.1, beta=1.0, rng=np.random.default_rng())


def test_the_lab_shows_the_reference_settling_at_the_local_entropy_minimum(tmp_path):
    res = lab.run(tmp_path)
    n = res.numbers
    assert n["argmin_f"] < -1.5 and n["argmin_f_t"] > 1.0  # f prefers the narrow well, f_t the wide one
    assert n["argmin_f_t_short"] < -1.5  # a short PDE time does not smooth enough
    assert n["parle_fraction_wide"] > n["sgd_fraction_wide"] + 0.1
    assert n["parle_fraction_wide"] > n["elastic-sgd_fraction_wide"] + 0.1
    assert n["parle_median_distance_to_argmin_f_t"] < 0.3
    assert n["parle-exact_median_distance_to_argmin_f_t"] < 0.05
    assert n["parle_exact_max_grad_f_t_at_reference"] < 1e-3
    assert (tmp_path / "parle.png").stat().st_size > 10_000
