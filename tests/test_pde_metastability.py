"""Metastability: the exact MFPT quadrature against independent oracles, Eyring-Kramers asymptotics, the
confidence intervals of simulated exit times, and the two 2-D potentials.

Oracles: (i) the backward equation β⁻¹T'' − V'T' = −1, T'(L) = 0, T(b) = 0 solved by second-order central
finite differences (a differential, not integral, formulation); (ii) the closed form T = β(b² − a²)/2 for free
diffusion reflected at 0; (iii) the Eyring-Kramers formula, to which the exact MFPT must converge with a
relative error O(1/β); (iv) simulated exit times, whose confidence interval must contain the exact MFPT.
"""

import numpy as np
import pytest
from scipy.linalg import solve_banded

from deeprelax.pde.metastability import (
    energetic_barrier,
    entropic_barrier,
    euler_chain_mfpt_1d,
    eyring_kramers,
    eyring_kramers_1d,
    fick_jacobs_mfpt,
    forward_flux_mfpt,
    free_energy_x,
    log_mfpt_1d_grid,
    mean_exit_time,
    mean_exit_time_replicas,
    mfpt_1d,
    mfpt_1d_grid,
    simulate_exit_times,
)


def V_dw(x):
    return (x**2 - 1) ** 2


def dV_dw(x):
    return 4 * x * (x**2 - 1)


def mfpt_backward_fd(dV, a, b, beta, L, n):
    """Solve β⁻¹T'' − V'T' = −1 on [L, b], T'(L) = 0 (ghost point), T(b) = 0; return T(a) (interpolated)."""
    x = np.linspace(L, b, n)
    h = x[1] - x[0]
    m = n - 1  # unknowns T_0..T_{n-2}; T_{n-1} = 0
    lo = 1 / (beta * h**2) + dV(x[:m]) / (2 * h)
    di = -2 / (beta * h**2) * np.ones(m)
    up = 1 / (beta * h**2) - dV(x[:m]) / (2 * h)
    up[0] += lo[0]  # ghost T_{-1} = T_1
    ab = np.zeros((3, m))
    ab[0, 1:] = up[:-1]
    ab[1] = di
    ab[2, :-1] = lo[1:]
    T = np.append(solve_banded((1, 1), ab, -np.ones(m)), 0.0)
    return float(np.interp(a, x, T))


@pytest.mark.parametrize("beta", [1.0, 3.0, 6.0])
def test_mfpt_quadrature_matches_backward_equation_finite_differences(beta):
    L = -2.5
    T_quad = mfpt_1d(V_dw, -1.0, 1.0, beta, left=L, n=20001)
    T_fd = mfpt_backward_fd(dV_dw, -1.0, 1.0, beta, L, 8001)
    assert T_quad == pytest.approx(T_fd, rel=2e-4)
    # the automatic left cut-off gives the same number
    assert mfpt_1d(V_dw, -1.0, 1.0, beta) == pytest.approx(T_quad, rel=1e-5)


def test_mfpt_free_diffusion_closed_form():
    # V = 0 on [0, 1], reflected at 0: T(a -> 1) = beta (1 - a^2) / 2; the trapezoid rule is exact here
    x = np.linspace(0, 1, 101)
    for beta in (0.5, 2.0):
        assert mfpt_1d_grid(x, np.zeros_like(x), 0.0, beta) == pytest.approx(beta / 2, rel=1e-12)
        assert mfpt_1d_grid(x, np.zeros_like(x), x[30], beta) == pytest.approx(
            beta * (1 - x[30] ** 2) / 2, rel=1e-3
        )


def test_mfpt_over_eyring_kramers_tends_to_one():
    betas = [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    ratios = np.array([mfpt_1d(V_dw, -1, 1, b) / eyring_kramers_1d(1.0, 8.0, -4.0, b) for b in betas])
    err = ratios - 1
    assert np.all(err > 0) and np.all(np.diff(err) < 0)
    assert err[-1] < 0.01
    # relative error O(1/beta): beta * err settles to a constant
    c = np.array(betas) * err
    assert abs(c[-1] - c[-2]) < 0.05 * c[-1]


def test_mfpt_large_beta_is_finite_in_log_space():
    beta = 2000.0
    x = np.concatenate([np.linspace(-1.8, -1.0, 100001), np.linspace(-1.0, 1.0, 250001)[1:]])
    logT = log_mfpt_1d_grid(x, V_dw(x), -1.0, beta)
    logEK = np.log(2 * np.pi / np.sqrt(32)) + beta
    assert np.isfinite(logT) and logT == pytest.approx(logEK, abs=2e-3)
    assert mfpt_1d_grid(x, V_dw(x), -1.0, beta) == np.inf


def test_simulated_exit_time_ci_contains_exact_mfpt():
    beta, dt = 3.0, 0.005
    rng = np.random.default_rng(11)
    tau = simulate_exit_times(
        dV_dw, -np.ones(600), lambda x: x[:, 0] >= 1, beta=beta, dt=dt, max_steps=20000, rng=rng
    )
    est = mean_exit_time(tau, censor_time=20000 * dt)
    exact = mfpt_1d(V_dw, -1, 1, beta)
    assert est.ci_low < exact < est.ci_high
    assert est.ci_high - est.ci_low < 0.25 * exact


def test_mean_exit_time_interval_coverage():
    # exponential exit times of mean 10: the 95% interval must cover 10 in about 95% of repetitions,
    # with and without censoring (binomial sd over 300 repetitions: 1.3%)
    rng = np.random.default_rng(12)
    for censor in (None, 12.0):
        hits = 0
        for _ in range(300):
            t = rng.exponential(10.0, 80)
            if censor is not None:
                t[t > censor] = np.inf
            e = mean_exit_time(t, censor_time=censor)
            hits += e.ci_low < 10.0 < e.ci_high
        assert 0.90 < hits / 300 < 0.99
    with pytest.raises(ValueError, match="censor_time"):
        mean_exit_time(np.array([1.0, np.inf]))


def test_eyring_kramers_multid_reduces_to_1d_and_validates():
    # V(x, y) = (x^2-1)^2 + y^2: separable, the y factor cancels in det ratio
    ek2 = eyring_kramers(0.0, 1.0, np.diag([8.0, 2.0]), np.diag([-4.0, 2.0]), 5.0)
    assert ek2 == pytest.approx(eyring_kramers_1d(1.0, 8.0, -4.0, 5.0), rel=1e-12)
    with pytest.raises(ValueError, match="hess_min"):
        eyring_kramers(0, 1, np.diag([-1.0, 1.0]), np.diag([-4.0, 2.0]), 1.0)
    with pytest.raises(ValueError, match="hess_saddle"):
        eyring_kramers(0, 1, np.eye(2), np.diag([-4.0, -2.0]), 1.0)
    with pytest.raises(ValueError, match="beta"):
        eyring_kramers_1d(1.0, 8.0, -4.0, -1.0)
    with pytest.raises(ValueError, match="vpp_saddle"):
        eyring_kramers_1d(1.0, 8.0, 4.0, 1.0)


@pytest.mark.parametrize("pot", [energetic_barrier(), entropic_barrier(), energetic_barrier(2.0, 3.0, -0.3)])
def test_potential_derivatives_and_critical_points(pot):
    rng = np.random.default_rng(0)
    p = rng.uniform(-1.5, 1.5, (50, 2))
    h = 1e-6
    e = np.eye(2)
    fd_grad = np.stack([(pot.V(p + h * e[i]) - pot.V(p - h * e[i])) / (2 * h) for i in range(2)], -1)
    assert np.allclose(pot.grad(p), fd_grad, rtol=1e-6, atol=1e-5)
    fd_hess = np.stack([(pot.grad(p + h * e[i]) - pot.grad(p - h * e[i])) / (2 * h) for i in range(2)], -2)
    assert np.allclose(pot.hessian(p), fd_hess, rtol=1e-5, atol=1e-4)
    for m in pot.minima:
        assert np.allclose(pot.grad(m), 0, atol=1e-12)
        assert np.all(np.linalg.eigvalsh(pot.hessian(m)) > 0)
    assert np.allclose(pot.grad(pot.saddle), 0, atol=1e-12)
    ev = np.linalg.eigvalsh(pot.hessian(pot.saddle))
    assert ev[0] < 0 < ev[1]
    # the saddle is the lowest point of the ridge x = x_saddle... and above both minima
    assert pot.V(pot.saddle) > max(pot.V(m) for m in pot.minima)


def test_energetic_barrier_eyring_kramers_by_hand():
    pot = energetic_barrier(height=1.0, stiffness=2.0, bend=0.5)
    # minima Hessian [[8h + 8kc^2, 4kc], [4kc, 2k]] has det 16hk; saddle diag(-4h, 2k)
    expected = 2 * np.pi / 4.0 * np.sqrt(4.0 * 4.0 / (16 * 2.0)) * np.exp(4.0)
    assert pot.eyring_kramers(4.0) == pytest.approx(expected, rel=1e-12)


def test_entropic_free_energy_closed_form():
    pot = entropic_barrier(height=0.1, kappa_well=1.0, kappa_channel=100.0, channel_length=0.2)
    beta = 10.0
    x = np.linspace(-1.5, 1.5, 61)
    y = np.linspace(-3, 3, 6001)
    X, Y = np.meshgrid(x, y, indexing="ij")
    F = free_energy_x(pot.V(np.stack([X, Y], -1)), y, beta)
    kappa = 1.0 + 99.0 * np.exp(-(x**2) / (2 * 0.2**2))
    exact = 0.1 * (x**2 - 1) ** 2 + np.log(kappa) / (2 * beta)
    assert np.allclose(F - F[30], exact - exact[30], atol=1e-8)
    # the entropic barrier: F(0) - F(±1) = a + log(kappa_c/kappa_w)/(2 beta) (up to the tail of the Gaussian)
    i1 = np.argmin(abs(x - 1))
    assert F[30] - F[i1] == pytest.approx(0.1 + np.log(100 / (1 + 99 * np.exp(-12.5))) / 20, rel=1e-6)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="b > a"):
        mfpt_1d(V_dw, 1.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="confining"):
        mfpt_1d(lambda x: x, -1.0, 1.0, 1.0)  # V -> -inf on the left: never confined
    with pytest.raises(ValueError, match="kappa_channel"):
        entropic_barrier(kappa_channel=0.0)
    with pytest.raises(ValueError, match="height"):
        energetic_barrier(height=-1.0)


def test_fick_jacobs_exact_for_separable_potential():
    # V(x, y) = (x^2-1)^2 + y^2/2 * k: the x-marginal free energy is V1(x) + const, so the reduction is exact
    beta = 3.0
    x = np.linspace(-2.5, 1.0, 3501)
    y = np.linspace(-3, 3, 301)
    X, Y = np.meshgrid(x, y, indexing="ij")
    T_fj = fick_jacobs_mfpt(x, y, V_dw(X) + 2.0 * Y**2, beta, -1.0, 1.0)
    assert T_fj == pytest.approx(mfpt_1d(V_dw, -1.0, 1.0, beta, left=-2.5, n=3501), rel=1e-6)
    with pytest.raises(ValueError, match="x-grid"):
        fick_jacobs_mfpt(x, y, V_dw(X), beta, -1.0, 5.0)


def test_fick_jacobs_vs_simulation_entropic_barrier():
    # The reduction neglects the finite transverse relaxation time, so it is an approximation: measured
    # ~10-15 % below the simulated mean at these parameters. The check guards against gross errors
    # (a wrong beta or a missing factor would be off by far more).
    pot = entropic_barrier()
    beta = 10.0
    x = np.linspace(-2, 1.5, 351)
    y = np.linspace(-1.5, 1.5, 241)
    X, Y = np.meshgrid(x, y, indexing="ij")
    T_fj = fick_jacobs_mfpt(x, y, pot.V(np.stack([X, Y], -1)), beta, -1.0, 1.0)
    rng = np.random.default_rng(3)
    tau = simulate_exit_times(
        pot.grad,
        np.tile([-1.0, 0.0], (200, 1)),
        lambda p: p[:, 0] >= 1.0,
        beta=beta,
        dt=0.005,
        max_steps=40000,
        rng=rng,
    )
    est = mean_exit_time(tau, censor_time=200.0)
    assert 0.9 < est.mean / T_fj < 1.4
    # and Eyring-Kramers, whose asymptotics need beta*a >> 1 (here beta*a = 1), is off by a factor ~2
    assert pot.eyring_kramers(beta) / est.mean > 1.5


def test_euler_chain_mfpt_tends_to_the_exact_mfpt_at_first_order():
    """The Euler chain's MFPT (its kernel on a grid) → the exact T as dt → 0, with an O(dt) bias."""
    beta = 5.0
    exact = mfpt_1d(V_dw, -1.0, 1.0, beta)
    dts = (0.02, 0.01, 0.005)
    bias = [euler_chain_mfpt_1d(dV_dw, -1.0, 1.0, beta, dt, left=-2.2) / exact - 1 for dt in dts]
    assert abs(bias[-1]) < 0.01 and abs(bias[0]) > abs(bias[1]) > abs(bias[2])
    assert 1.6 < bias[0] / bias[1] < 2.4 and 1.6 < bias[1] / bias[2] < 2.4


def test_forward_flux_sampling_recovers_the_exact_mfpt():
    """FFS on the 1-D double well at β = 5 (T ≈ 180): independent runs combine to an interval around the
    exact MFPT (up to sampling error and the O(dt) bias of the chain)."""
    beta = 5.0
    exact = mfpt_1d(V_dw, -1.0, 1.0, beta)
    lam = [-1.0, -0.8, -0.6, -0.4, -0.2, 0.0, 1.0]
    runs = forward_flux_mfpt(
        dV_dw,
        -np.ones(40),
        lambda x: x[:, 0],
        lam,
        beta=beta,
        dt=0.01,
        flux_steps=2000,
        trials=1500,
        rng=np.random.default_rng(5),
        replicas=8,
    )
    assert len(runs) == 8 and all(0 < p <= 1 for r in runs for p in r.probabilities)
    est = mean_exit_time_replicas([r.mfpt for r in runs])
    assert est.ci_low < est.mean < est.ci_high
    assert abs(est.mean / exact - 1) < 0.1
    s = np.std(np.log([r.mfpt for r in runs]), ddof=1) / np.sqrt(8)
    assert abs(np.log(est.mean / exact)) < 4 * s + 0.02  # sampling error plus the O(dt) Euler bias
    with pytest.raises(ValueError, match="in A"):
        forward_flux_mfpt(
            dV_dw,
            np.zeros(4),
            lambda x: x[:, 0],
            lam,
            beta=beta,
            dt=0.01,
            flux_steps=10,
            trials=10,
            rng=np.random.default_rng(0),
        )
    with pytest.raises(ValueError, match="increasing"):
        forward_flux_mfpt(
            dV_dw,
            -np.ones(4),
            lambda x: x[:, 0],
            [0.0, -1.0, 1.0],
            beta=beta,
            dt=0.01,
            flux_steps=10,
            trials=10,
            rng=np.random.default_rng(0),
        )
