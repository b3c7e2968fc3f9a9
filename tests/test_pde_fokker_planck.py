"""Scharfetter-Gummel Fokker-Planck: mass, positivity, exact discrete Gibbs steady state, OU closed form."""

from __future__ import annotations

import numpy as np
import pytest

from deeprelax.pde.fokker_planck import FokkerPlanck1D, bernoulli


def V_dw(x):
    return 0.25 * (x**2 - 1) ** 2 + 0.2 * x + 0.1 * np.sin(5 * x)


def test_bernoulli_function():
    z = np.array([-800.0, -30.0, -1e-9, 0.0, 1e-9, 1.0, 30.0, 800.0])
    b = bernoulli(z)
    assert np.all(np.isfinite(b)) and np.all(b >= 0)
    assert b[3] == 1.0
    assert np.allclose(bernoulli(-z), b + z, rtol=1e-12, atol=1e-12)  # B(-z) = B(z) + z
    assert b[-1] == 0.0 and b[0] == pytest.approx(800.0)


@pytest.mark.parametrize("beta", [0.5, 5.0, 200.0])
def test_gibbs_density_is_an_exact_steady_state(beta):
    x = np.linspace(-2.5, 2.5, 301)
    fp = FokkerPlanck1D(x, V_dw, beta)
    g = fp.gibbs()
    assert fp.mass(g) == pytest.approx(1.0, abs=1e-14)
    L = fp.generator()
    assert np.max(np.abs(L @ g)) <= 1e-12 * np.max(np.abs(L)) * np.max(g)
    rho = g.copy()
    for _ in range(50):
        rho = fp.step(rho, 0.0, 10.0)
    # round-off only (amplified by the condition number of I - dt L, ~1e5 here); a merely consistent
    # scheme would drift by O(h^2) ~ 1e-4 away from the discrete Gibbs density.
    assert np.max(np.abs(rho - g)) <= 1e-10 * g.max()


def test_mass_conserved_and_positive_with_time_dependent_drift():
    x = np.linspace(-3, 3, 400)
    fp = FokkerPlanck1D(x, V_dw, 50.0, drift=lambda xf, t: 3.0 * np.sin(4 * t) * np.cos(2 * xf))
    rho = fp.delta(-2.9)  # a spike next to the wall, the hardest case for positivity
    m0 = fp.mass(rho)
    t = 0.0
    for dt in [1e-4, 1e-2, 0.3, 5.0] * 10:
        rho = fp.step(rho, t, dt)
        t += dt
        assert np.min(rho) >= 0.0
        assert fp.mass(rho) == pytest.approx(m0, rel=1e-13)
    colsum = fp.generator(0.7).sum(axis=0)
    assert np.max(np.abs(colsum)) < 1e-9 * np.max(np.abs(fp.generator(0.7)))


def test_relaxes_to_gibbs_from_any_start():
    x = np.linspace(-2.5, 2.5, 201)
    fp = FokkerPlanck1D(x, V_dw, 2.0)
    _, rhos = fp.solve(fp.delta(1.8), T=60.0, n_steps=300)
    assert np.max(np.abs(rhos[-1] - fp.gibbs())) < 1e-6


def test_ornstein_uhlenbeck_moments_converge_first_order_in_dt():
    """V = x^2/2, b = c: X_t ~ N(c + (m0 - c) e^{-t}, s0^2 e^{-2t} + beta^{-1}(1 - e^{-2t}))."""
    beta, m0, s0, c, T = 2.0, 1.0, 0.3, 0.4, 0.8
    x = np.linspace(-5, 6, 2201)
    rho0 = np.exp(-((x - m0) ** 2) / (2 * s0**2)) / np.sqrt(2 * np.pi * s0**2)
    fp = FokkerPlanck1D(x, lambda s: 0.5 * s**2, beta, drift=lambda xf, t: np.full_like(xf, c))
    mean_ex = c + (m0 - c) * np.exp(-T)
    var_ex = s0**2 * np.exp(-2 * T) + (1 - np.exp(-2 * T)) / beta
    errs = []
    for n in [20, 40, 80]:
        _, r = fp.solve(rho0, T, n)
        rho = r[-1]
        mean = fp.h * np.sum(x * rho)
        var = fp.h * np.sum((x - mean) ** 2 * rho)
        errs.append(abs(mean - mean_ex) + abs(var - var_ex))
    assert errs[0] > errs[1] > errs[2]
    assert 1.6 < errs[1] / errs[2] < 2.4  # implicit Euler: first order in dt
    assert errs[2] < 5e-3


def test_adjoint_step_gives_exact_discrete_duality():
    """sum rho(T) g = sum rho(0) w(0) where w solves the backward equation -w_t = L^T w, w(T) = g."""
    x = np.linspace(-2, 2, 150)
    fp = FokkerPlanck1D(x, V_dw, 3.0, drift=lambda xf, t: np.cos(3 * t) * xf)
    n, T = 40, 1.0
    dt = T / n
    rng = np.random.default_rng(0)
    rho = rng.uniform(size=x.size)
    g = rng.normal(size=x.size)
    rho0 = rho.copy()
    for k in range(n):
        rho = fp.step(rho, k * dt, dt)
    w = g.copy()
    for k in range(n, 0, -1):
        w = fp.step_adjoint(w, k * dt, dt)
    assert np.dot(rho, g) == pytest.approx(np.dot(rho0, w), rel=1e-12)


def test_bad_arguments_raise():
    x = np.linspace(0, 1, 11)
    with pytest.raises(ValueError, match="beta"):
        FokkerPlanck1D(x, np.zeros(11), 0.0)
    with pytest.raises(ValueError, match="V"):
        FokkerPlanck1D(x, np.zeros(10), 1.0)
    with pytest.raises(ValueError, match="x"):
        FokkerPlanck1D(np.array([0.0, 0.1, 0.5]), np.zeros(3), 1.0)
    fp = FokkerPlanck1D(x, np.zeros(11), 1.0, drift=lambda xf, t: np.zeros(3))
    with pytest.raises(ValueError, match="drift"):
        fp.step(np.ones(11), 0.0, 0.1)
    with pytest.raises(ValueError, match="dt"):
        FokkerPlanck1D(x, np.zeros(11), 1.0).step(np.ones(11), 0.0, -0.1)
    with pytest.raises(ValueError, match="rho0"):
        FokkerPlanck1D(x, np.zeros(11), 1.0).solve(-np.ones(11), 1.0, 10)
