"""Monotone explicit FD for u_t = -|u_x|^2/2 + u_xx/(2 beta): convergence to Hopf-Cole / Hopf-Lax, CFL."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deeprelax.pde.hamilton_jacobi import cfl_time_step, solve_hamilton_jacobi
from deeprelax.pde.hopf_cole import local_entropy_1d
from deeprelax.pde.hopf_lax import hopf_lax_1d

L = 2 * np.pi
YG = np.linspace(-3 * np.pi, 5 * np.pi, 32001)  # several periods: the exact solution of periodic data


def f_per(x):
    return np.sin(x) + 0.5 * np.cos(2 * x)


def exact(x, t, beta):
    if math.isinf(beta):
        return hopf_lax_1d(f_per, x, t, YG).value
    return local_entropy_1d(f_per, x, t, beta, YG).value


@pytest.mark.parametrize("scheme", ["godunov", "lax-friedrichs"])
@pytest.mark.parametrize("beta", [5.0, math.inf])
def test_first_order_convergence_1d(scheme, beta):
    T = 0.5
    errs = []
    for n in [50, 100, 200, 400]:
        x = np.arange(n) * L / n
        sol = solve_hamilton_jacobi(f_per(x), L / n, T, beta=beta, scheme=scheme)
        assert sol.t == T
        errs.append(np.max(np.abs(sol.u - exact(x, T, beta))))
    errs = np.array(errs)
    orders = np.log2(errs[:-1] / errs[1:])
    assert np.all(np.diff(errs) < 0)
    assert orders[-1] > 0.7, orders  # monotone schemes: first order
    assert errs[-1] < 0.03


@pytest.mark.parametrize("beta", [4.0, math.inf])
def test_2d_separable_data_matches_1d_exact(beta):
    """For f = g(x1) + g(x2) the solution is u1(x1) + u2(x2); check the 2-D solver converges to it."""
    T = 0.4
    errs = []
    for n in [40, 80, 160]:
        x = np.arange(n) * L / n
        X1, X2 = np.meshgrid(x, x, indexing="ij")
        sol = solve_hamilton_jacobi(f_per(X1) + f_per(X2 + 1.0), L / n, T, beta=beta)
        ue = exact(x, T, beta)[:, None] + exact(x + 1.0, T, beta)[None, :]
        errs.append(np.max(np.abs(sol.u - ue)))
    assert errs[2] < errs[1] < errs[0]
    assert np.log2(errs[1] / errs[2]) > 0.7
    assert errs[2] < 0.05


def test_comparison_and_maximum_principle():
    n = 100
    x = np.arange(n) * L / n
    u0 = f_per(x)
    v0 = u0 + 0.2 + 0.1 * np.cos(3 * x) ** 2  # v0 >= u0
    for beta in (2.0, math.inf):
        u = solve_hamilton_jacobi(u0, L / n, 1.0, beta=beta, cfl=1.0).u
        v = solve_hamilton_jacobi(v0, L / n, 1.0, beta=beta, cfl=1.0).u
        assert np.all(u <= v + 1e-13)
        assert u.min() >= u0.min() - 1e-13 and u.max() <= u0.max() + 1e-13


def test_cfl_violation_is_a_value_error_and_automatic_step_respects_it():
    n = 100
    h = L / n
    x = np.arange(n) * h
    u0 = f_per(x)
    lip = float(np.max(np.abs(np.diff(np.append(u0, u0[0])))) / h)
    dt_stable = cfl_time_step([lip], (h,), 3.0)
    assert dt_stable == pytest.approx(1.0 / (lip / h + 1.0 / (3.0 * h**2)))
    with pytest.raises(ValueError, match="CFL"):
        solve_hamilton_jacobi(u0, h, 0.1, beta=3.0, dt=1.01 * dt_stable)
    ok = solve_hamilton_jacobi(u0, h, 0.1, beta=3.0, dt=0.99 * dt_stable)
    auto = solve_hamilton_jacobi(u0, h, 0.1, beta=3.0, cfl=0.5)
    assert auto.cfl_max <= 0.5 * (1 + 1e-12) and ok.cfl_max <= 1.0
    assert np.max(np.abs(ok.u - auto.u)) < 5e-3


def test_extrapolate_boundary_on_linear_data_is_exact():
    # u0 = a x: the exact solution is a x - a^2 t / 2 for both equations; linear ghosts reproduce it
    x = np.linspace(-1, 1, 41)
    for scheme in ("godunov", "lax-friedrichs"):
        h = x[1] - x[0]
        sol = solve_hamilton_jacobi(0.7 * x, h, 0.3, beta=2.0, boundary="extrapolate", scheme=scheme)
        assert np.allclose(sol.u, 0.7 * x - 0.49 * 0.3 / 2, atol=1e-12)


def test_bad_arguments_raise():
    u0 = np.zeros(10)
    with pytest.raises(ValueError, match="scheme"):
        solve_hamilton_jacobi(u0, 0.1, 1.0, scheme="upwind")
    with pytest.raises(ValueError, match="boundary"):
        solve_hamilton_jacobi(u0, 0.1, 1.0, boundary="dirichlet")
    with pytest.raises(ValueError, match="beta"):
        solve_hamilton_jacobi(u0, 0.1, 1.0, beta=0.0)
    with pytest.raises(ValueError, match="h must"):
        solve_hamilton_jacobi(u0, -0.1, 1.0)
    with pytest.raises(ValueError, match="T must"):
        solve_hamilton_jacobi(u0, 0.1, -1.0)
    with pytest.raises(ValueError, match="u0"):
        solve_hamilton_jacobi(np.zeros((2, 2, 2)), 0.1, 1.0)
