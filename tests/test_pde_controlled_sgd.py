"""Controlled SGD: value by Hopf-Cole vs closed form, discrete Feynman-Kac duality, expected improvement,
and the three-way agreement (PDE value, Monte-Carlo CSGD cost, Monte-Carlo Feynman-Kac soft-min)."""

from __future__ import annotations

import numpy as np
import pytest

from deeprelax.pde.controlled_sgd import csgd_densities, simulate_sgd_and_csgd, solve_csgd_value
from deeprelax.pde.fokker_planck import FokkerPlanck1D


def f_dw(x):
    return 0.5 * (x**2 - 1) ** 2 + 0.4 * x


def df_dw(x):
    return 2 * x * (x**2 - 1) + 0.4


def ou_value(x0, a, c, sigma, T):
    """u(x0, 0) = -s^2 log E exp(-c X_T^2 / (2 s^2)) for dX = -a X ds + s dW (Gaussian integral)."""
    m = x0 * np.exp(-a * T)
    v = sigma**2 * (1 - np.exp(-2 * a * T)) / (2 * a)
    k = c / (2 * sigma**2)
    return sigma**2 * 0.5 * np.log(1 + 2 * k * v) + sigma**2 * k * m**2 / (1 + 2 * k * v)


def test_linear_quadratic_value_converges_to_closed_form():
    a, c, sigma, T, x0 = 1.0, 3.0, 0.7, 1.0, 1.5
    errs = []
    for n, steps in [(201, 50), (401, 100), (801, 200)]:
        x = np.linspace(-5, 5, n)
        val = solve_csgd_value(lambda s: 0.5 * a * s**2, lambda s: 0.5 * c * s**2, x, sigma, T, steps)
        errs.append(abs(val.value(x0) - ou_value(x0, a, c, sigma, T)))
        # the terminal condition is V itself
        assert np.allclose(val.u[-1], 0.5 * c * x**2)
    assert errs[0] > errs[1] > errs[2]
    assert errs[1] / errs[2] > 1.6  # first order in (h, dt)
    assert errs[2] < 5e-3


def test_discrete_feynman_kac_duality_is_exact():
    """-s^2 log( h sum rho_sgd(T) exp(-V/s^2) ) from the forward SGD density = the backward value u(x0, 0)."""
    x = np.linspace(-3, 4, 351)
    sigma, T = 0.4, 2.0
    val = solve_csgd_value(f_dw, f_dw, x, sigma, T, 100)
    fp = FokkerPlanck1D(x, f_dw, 1.0)
    i0 = int(np.argmin(np.abs(x - 2.5)))
    dens = csgd_densities(f_dw, f_dw, val, fp.delta(x[i0]))
    h = x[1] - x[0]
    fk = -(sigma**2) * np.log(h * np.sum(dens.rho_sgd[-1] * np.exp(-f_dw(x) / sigma**2)))
    assert fk == pytest.approx(val.u[0, i0], abs=1e-10)


def test_expected_improvement_on_fokker_planck_densities():
    x = np.linspace(-3, 4, 701)
    sigma, T, x0 = 0.4, 4.0, 2.5
    val = solve_csgd_value(f_dw, f_dw, x, sigma, T, 400)
    fp = FokkerPlanck1D(x, f_dw, 1.0)
    d = csgd_densities(f_dw, f_dw, val, fp.delta(x0))
    u0 = val.value(x0)
    # E V(csgd) + 1/2 E int alpha^2 = u(x0, 0)  (up to the O(h + dt) discretisation)
    assert d.E_V_csgd + d.control_cost == pytest.approx(u0, abs=5e-3)
    # the theorem: E V(csgd) <= E V(sgd) - 1/2 E int alpha^2, here with a wide margin
    assert d.E_V_csgd <= d.E_V_sgd - d.control_cost - 0.2
    # CSGD carries most of the mass over the barrier to the global minimum, SGD does not
    h = x[1] - x[0]
    assert h * d.rho_csgd[-1][x < 0].sum() > 0.8 > 0.2 > h * d.rho_sgd[-1][x < 0].sum()
    for r in (d.rho_sgd, d.rho_csgd):
        assert np.all(r >= 0) and np.allclose(h * r.sum(axis=1), 1.0, atol=1e-12)


def test_three_way_agreement_within_monte_carlo_error():
    x = np.linspace(-3, 4, 701)
    sigma, T, x0 = 0.4, 4.0, 2.5
    val = solve_csgd_value(f_dw, f_dw, x, sigma, T, 400)
    mc = simulate_sgd_and_csgd(df_dw, f_dw, val, x0, 4000, 400, np.random.default_rng(0))
    u0 = val.value(x0)
    # Tolerance: 4 standard errors plus 0.005 for the O(dt) Euler-Maruyama / O(h + dt) PDE bias
    # (measured: PDE value vs FP cost differ by 0.002; halving the EM step moves the MC cost by < 0.005).
    assert abs(mc.cost_csgd - u0) < 4 * mc.cost_csgd_se + 5e-3
    assert abs(mc.value_feynman_kac - u0) < 4 * mc.value_feynman_kac_se + 5e-3
    # expected improvement, by Monte Carlo: E V(sgd) - E V(csgd) - cost >> its standard error
    gap = mc.E_V_sgd - mc.E_V_csgd - mc.control_cost
    assert gap > 5 * np.sqrt(mc.E_V_sgd_se**2 + mc.cost_csgd_se**2) and gap > 0.2
    # the control interpolation is -u_x
    xs = np.linspace(-1.5, 2.5, 9)
    ux = np.gradient(val.u[0], x)
    assert np.allclose(val.control(xs, 0.0), -np.interp(xs, x, ux), atol=2e-2)


def test_bad_arguments_raise():
    x = np.linspace(-1, 1, 21)
    with pytest.raises(ValueError, match="sigma"):
        solve_csgd_value(f_dw, f_dw, x, 0.0, 1.0, 10)
    with pytest.raises(ValueError, match="T"):
        solve_csgd_value(f_dw, f_dw, x, 1.0, -1.0, 10)
    with pytest.raises(ValueError, match="n_steps"):
        solve_csgd_value(f_dw, f_dw, x, 1.0, 1.0, 0)
    val = solve_csgd_value(f_dw, f_dw, x, 1.0, 1.0, 10)
    with pytest.raises(ValueError, match="rho0"):
        csgd_densities(f_dw, f_dw, val, np.ones(5))
    with pytest.raises(ValueError, match="n_paths"):
        simulate_sgd_and_csgd(df_dw, f_dw, val, 0.0, 1, 10, np.random.default_rng(0))
