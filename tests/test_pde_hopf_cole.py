"""Local entropy by Hopf-Cole quadrature: closed forms, PDE residual, gradient forms, beta -> inf, 2-D."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from deeprelax.pde.hopf_cole import (
    gibbs_mean_1d,
    local_entropy_1d,
    local_entropy_2d,
    local_entropy_derivatives_1d,
)
from deeprelax.pde.hopf_lax import hopf_lax_1d


def f_nc(y):
    """Non-convex test function: a tilted double well with ripples."""
    return 0.25 * (y**2 - 1) ** 2 + 0.1 * y + 0.05 * np.sin(7 * y)


def df_nc(y):
    return (y**2 - 1) * y + 0.1 + 0.35 * np.cos(7 * y)


Y = np.linspace(-6.0, 6.0, 6001)


@pytest.mark.parametrize("beta", [0.5, 3.0, 200.0])
def test_quadratic_closed_form(beta):
    # f = a y^2/2  =>  u = a x^2 / (2 (1 + a t)) + log(1 + a t) / (2 beta),
    #                  u_x = a x / (1 + a t),  u_xx = a / (1 + a t)
    a, t = 2.0, 0.7
    x = np.linspace(-2, 2, 9)
    y = np.linspace(-12, 12, 24001)
    r = local_entropy_1d(lambda s: a * s**2 / 2, x, t, beta, y, grad_f=lambda s: a * s)
    assert np.allclose(r.value, a * x**2 / (2 * (1 + a * t)) + np.log(1 + a * t) / (2 * beta), atol=1e-12)
    assert np.allclose(r.grad, a * x / (1 + a * t), atol=1e-11)
    assert np.allclose(r.grad_avg, a * x / (1 + a * t), atol=1e-11)
    assert np.allclose(r.uxx, a / (1 + a * t), atol=1e-9)
    assert np.allclose(r.gibbs_var, t / (beta * (1 + a * t)), rtol=1e-9)


def test_pde_residual_is_second_order_small():
    """u from quadrature solves u_t = -u_x^2/2 + u_xx/(2 beta): FD residual -> 0 at second order."""
    beta, t = 4.0, 0.5
    x = np.linspace(-1.5, 1.5, 13)

    def residual(d, nu):
        u = {
            (i, j): local_entropy_1d(f_nc, x + i * d, t + j * d, beta, Y).value
            for i, j in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]
        }
        ut = (u[0, 1] - u[0, -1]) / (2 * d)
        ux = (u[1, 0] - u[-1, 0]) / (2 * d)
        uxx = (u[1, 0] - 2 * u[0, 0] + u[-1, 0]) / d**2
        return np.abs(ut + 0.5 * ux**2 - nu * uxx).max()

    r1, r2 = residual(2e-2, 0.5 / beta), residual(1e-2, 0.5 / beta)
    assert r2 < 2e-3
    assert 3.0 < r1 / r2 < 5.0  # O(d^2)
    # negative control: the wrong viscosity (beta^-1 instead of beta^-1/2) leaves an O(1) residual
    assert residual(1e-2, 1.0 / beta) > 50 * r2


@pytest.mark.parametrize("beta", [0.5, 3.0, 200.0])
def test_closed_form_derivatives_quadratic(beta):
    # f = a y²/2: u_t = −a²x²/(2(1 + at)²) + a/(2β(1 + at)), u_x = ax/(1 + at), u_xx = a/(1 + at)
    a, t = 2.0, 0.7
    x = np.linspace(-2, 2, 9)
    y = np.linspace(-12, 12, 24001)
    d = local_entropy_derivatives_1d(lambda s: a * s**2 / 2, x, t, beta, y)
    q = 1 + a * t
    assert np.allclose(d.value, a * x**2 / (2 * q) + np.log(q) / (2 * beta), atol=1e-12)
    assert np.allclose(d.u_x, a * x / q, atol=1e-11)
    assert np.allclose(d.u_xx, a / q, atol=1e-9)
    assert np.allclose(d.u_t, -(a**2) * x**2 / (2 * q**2) + a / (2 * beta * q), atol=1e-9)


def test_closed_form_derivatives_are_the_derivatives_and_solve_the_pde():
    """On the non-convex f: the moment formulas equal finite differences of the value (to O(d²)), agree with
    local_entropy_1d, and their residual is at round-off, far below the FD residual."""
    beta, t, dd = 4.0, 0.5, 1e-3
    x = np.linspace(-1.5, 1.5, 13)
    d = local_entropy_derivatives_1d(f_nc, x, t, beta, Y)
    ref = local_entropy_1d(f_nc, x, t, beta, Y)
    assert np.allclose(d.value, ref.value, atol=1e-13) and np.allclose(d.u_x, ref.grad, atol=1e-12)
    assert np.allclose(d.u_xx, ref.uxx, atol=1e-9)

    def u(dx, dt):
        return local_entropy_1d(f_nc, x + dx, t + dt, beta, Y).value

    ut = (u(0, dd) - u(0, -dd)) / (2 * dd)
    ux = (u(dd, 0) - u(-dd, 0)) / (2 * dd)
    uxx = (u(dd, 0) - 2 * u(0, 0) + u(-dd, 0)) / dd**2
    assert np.allclose(d.u_t, ut, atol=1e-5) and np.allclose(d.u_x, ux, atol=1e-5)
    assert np.allclose(d.u_xx, uxx, atol=1e-4)
    scale = np.abs(d.u_t).max() + np.abs(d.u_x).max() ** 2 + np.abs(d.u_xx).max() / beta
    assert np.abs(d.residual).max() < 1e-13 * scale


@pytest.mark.parametrize("beta", [1.0, 10.0, 1e4])
def test_two_gradient_forms_agree_with_derivative(beta):
    t = 0.3
    x = np.linspace(-1.8, 1.8, 37)
    y = np.linspace(-5, 5, 40001)
    r = local_entropy_1d(f_nc, x, t, beta, y, grad_f=df_nc)
    assert np.max(np.abs(r.grad - r.grad_avg)) < 1e-6
    d = 1e-4
    up = local_entropy_1d(f_nc, x + d, t, beta, y).value
    um = local_entropy_1d(f_nc, x - d, t, beta, y).value
    fd = (up - um) / (2 * d)
    assert np.max(np.abs(fd - r.grad)) < 1e-5 * max(1.0, beta * 1e-3)
    # descent step with learning rate t lands on the Gibbs mean
    assert np.allclose(x - t * r.grad, gibbs_mean_1d(f_nc, x, t, beta, y), atol=1e-12)


def test_gibbs_mean_matches_direct_quadrature():
    x, t, beta = np.array([-1.2, 0.1, 0.9]), 0.4, 7.0
    got = gibbs_mean_1d(f_nc, x, t, beta, Y)
    for xi, g in zip(x, got, strict=True):
        logw = -beta * f_nc(Y) - beta * (xi - Y) ** 2 / (2 * t)
        w = np.exp(logw - logw.max())
        assert g == pytest.approx(np.sum(w * Y) / np.sum(w), abs=1e-12)


def test_large_beta_is_stable_and_tends_to_hopf_lax():
    t = 0.5
    x = np.linspace(-1.5, 1.5, 31)
    y = np.linspace(-4, 4, 80001)
    hl = hopf_lax_1d(f_nc, x, t, y).value
    gaps = []
    for beta in [10.0, 100.0, 1000.0, 1e4]:
        r = local_entropy_1d(f_nc, x, t, beta, y)
        assert np.all(np.isfinite(r.value))
        gaps.append(np.max(np.abs(r.value - hl)))
    gaps = np.array(gaps)
    assert np.all(np.diff(gaps) < 0)
    # u_beta - u_HL = O(log(beta)/beta): each factor 10 in beta shrinks the gap by at least ~5
    assert np.all(gaps[1:] / gaps[:-1] < 0.25)
    # beta = 1e8 neither over- nor underflows (exp(-beta f) alone would)
    r = local_entropy_1d(f_nc, x, t, 1e8, np.linspace(-3, 3, 600001))
    assert np.all(np.isfinite(r.value)) and np.max(np.abs(r.value - hl)) < 1e-3


def test_2d_separable_equals_sum_of_1d():
    t, beta = 0.4, 5.0
    y1 = np.linspace(-4, 4, 321)
    y2 = np.linspace(-3.5, 3.5, 281)
    g2 = lambda s: 0.5 * s**2 + 0.3 * np.cos(3 * s)  # noqa: E731
    x1, x2 = np.linspace(-1, 1, 7), np.linspace(-0.8, 0.8, 5)
    r = local_entropy_2d(
        lambda a, b: f_nc(a) + g2(b),
        y1,
        y2,
        t,
        beta,
        x1=x1,
        x2=x2,
        grad_f=lambda a, b: (df_nc(a), b - 0.9 * np.sin(3 * b)),
    )
    r1 = local_entropy_1d(f_nc, x1, t, beta, y1)
    r2 = local_entropy_1d(g2, x2, t, beta, y2)
    assert np.allclose(r.value, r1.value[:, None] + r2.value[None, :], atol=1e-12)
    assert np.allclose(r.gibbs_mean[..., 0], r1.gibbs_mean[:, None] + 0 * x2, atol=1e-12)
    assert np.allclose(r.gibbs_mean[..., 1], r2.gibbs_mean[None, :] + 0 * x1[:, None], atol=1e-12)
    assert np.max(np.abs(r.grad - r.grad_avg)) < 1e-6


def test_2d_non_separable_matches_brute_force_sum():
    t, beta = 0.3, 6.0
    y1 = np.linspace(-3, 3, 121)
    y2 = np.linspace(-3, 3, 101)
    f = lambda a, b: 0.25 * (a**2 - 1) ** 2 + 0.5 * b**2 + 0.4 * a * b  # noqa: E731
    r = local_entropy_2d(f, y1, y2, t, beta)
    A, B = np.meshgrid(y1, y2, indexing="ij")
    h = (y1[1] - y1[0]) * (y2[1] - y2[0])
    for i, j in [(60, 50), (30, 70), (90, 20)]:
        logw = -beta * f(A, B) - beta * ((y1[i] - A) ** 2 + (y2[j] - B) ** 2) / (2 * t)
        val = -(logsumexp(logw) + np.log(h) - np.log(2 * np.pi * t / beta)) / beta
        w = np.exp(logw - logw.max())
        w /= w.sum()
        assert r.value[i, j] == pytest.approx(val, abs=1e-12)
        assert r.gibbs_mean[i, j, 0] == pytest.approx(np.sum(w * A), abs=1e-12)
        assert r.gibbs_mean[i, j, 1] == pytest.approx(np.sum(w * B), abs=1e-12)


def test_bad_arguments_raise():
    x = np.zeros(3)
    with pytest.raises(ValueError, match="t must be"):
        local_entropy_1d(f_nc, x, 0.0, 1.0, Y)
    with pytest.raises(ValueError, match="beta must be"):
        local_entropy_1d(f_nc, x, 1.0, -1.0, Y)
    with pytest.raises(ValueError, match="y_grid"):
        local_entropy_1d(f_nc, x, 1.0, 1.0, np.array([0.0, 1.0, 3.0]))
    with pytest.raises(ValueError, match="shape"):
        local_entropy_1d(np.zeros(5), x, 1.0, 1.0, Y)
    with pytest.raises(ValueError, match="shape"):
        local_entropy_2d(np.zeros((4, 4)), np.arange(4.0), np.arange(5.0), 1.0, 1.0)
