"""Hopf-Lax / Moreau envelope by the lower envelope of parabolas: brute force, prox relation, closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from deeprelax.pde import hopf_lax as hl_mod
from deeprelax.pde.hopf_lax import hopf_lax_1d, hopf_lax_2d, lower_envelope_of_parabolas


def f_nc(y):
    return 0.25 * (y**2 - 1) ** 2 + 0.1 * y + 0.05 * np.sin(7 * y)


def df_nc(y):
    return (y**2 - 1) * y + 0.1 + 0.35 * np.cos(7 * y)


def brute(c, y, x, t):
    phi = c[..., None, :] + (x[:, None] - y[None, :]) ** 2 / (2 * t)
    return phi.min(axis=-1), phi.argmin(axis=-1)


@pytest.mark.parametrize("rows", [1, 3, 40])  # both the per-row and the row-vectorised sweeps
@pytest.mark.parametrize("n", [1, 2, 5, 200])
def test_envelope_equals_brute_force(rows, n):
    rng = np.random.default_rng(rows * 1000 + n)
    y = np.unique(rng.uniform(-3, 3, n))  # non-uniform nodes
    c = rng.normal(size=(rows, y.size)) * rng.choice([0.01, 1.0, 10.0])
    x = rng.uniform(-5, 5, 300)
    for t in [0.01, 0.5, 30.0]:
        val, idx = lower_envelope_of_parabolas(c, y, x, t)
        bval, bidx = brute(c, y, x, t)
        assert np.allclose(val, bval, rtol=0, atol=1e-12 * (1 + np.abs(bval)))
        # the chosen node attains the minimum (ties may pick another node)
        chosen = np.take_along_axis(c, idx, axis=1) + (x[None, :] - y[idx]) ** 2 / (2 * t)
        assert np.allclose(chosen, bval, rtol=0, atol=1e-12 * (1 + np.abs(bval)))


def test_envelope_with_ties_and_plateaus():
    y = np.linspace(-1, 1, 41)
    c = np.where(np.abs(y) < 0.5, 0.0, 1.0)[None, :]  # flat bottom: many equal minima
    x = np.linspace(-2, 2, 81)
    val, _ = lower_envelope_of_parabolas(np.repeat(c, 20, axis=0), y, x, 0.2)
    bval, _ = brute(c, y, x, 0.2)
    assert np.allclose(val, bval, atol=1e-14)


def test_envelope_many_oscillating_nodes():
    # 4000 nodes, many of them hidden (small t, oscillating c): stresses the pop loop of the sweep
    y = np.linspace(-1, 1, 4000)
    c = np.sin(40 * y)[None, :]
    val, _ = lower_envelope_of_parabolas(c, y, y, 1e-3)
    bval, _ = brute(c, y, y[::40], 1e-3)
    assert np.allclose(val[0, ::40], bval[0], atol=1e-13)


def test_quadratic_closed_form_and_prox():
    # f = a y^2/2: u = a x^2 / (2(1 + a t)), prox = x/(1 + a t), p* = a x/(1 + a t)
    a, t = 3.0, 0.4
    y = np.linspace(-4, 4, 801)
    x = np.linspace(-2, 2, 17)
    r = hopf_lax_1d(lambda s: a * s**2 / 2, x, t, y)
    assert np.allclose(r.value, a * x**2 / (2 * (1 + a * t)), atol=1e-13)
    assert np.allclose(r.prox, x / (1 + a * t), atol=1e-12)
    assert np.allclose(r.grad, a * x / (1 + a * t), atol=1e-11)


def test_prox_gradient_solves_implicit_relation():
    """p* = f'(x - t p*) (backward Euler), to O(h^2) with the sub-grid refinement, O(h) without."""
    t = 0.2
    x = np.linspace(-1.6, 1.6, 33)
    errs = {}
    for n in [2001, 4001]:
        y = np.linspace(-3, 3, n)
        for refine in (False, True):
            r = hopf_lax_1d(f_nc, x, t, y, refine=refine)
            errs[n, refine] = np.max(np.abs(r.grad - df_nc(x - t * r.grad)))
    assert errs[4001, True] < 1e-4
    assert errs[4001, True] < 0.05 * errs[4001, False]
    assert errs[2001, True] / errs[4001, True] > 3.0  # second order
    assert errs[4001, False] < (6.0 / 4000) / t * 2  # one grid cell of prox error, divided by t


def test_values_against_brute_force_and_basic_properties():
    y = np.linspace(-3, 3, 1201)
    x = np.linspace(-2, 2, 101)
    vals = []
    for t in [0.05, 0.3, 1.0]:
        r = hopf_lax_1d(f_nc, x, t, y, refine=False)
        bval, _ = brute(f_nc(y)[None, :], y, x, t)
        assert np.allclose(r.value, bval[0], atol=1e-14)
        assert np.all(r.value <= f_nc(x) + 1e-14)  # u <= f (take y = x)
        vals.append(r.value)
    assert np.all(np.diff(np.array(vals), axis=0) <= 1e-14)  # u non-increasing in t


def test_semigroup_property():
    """Hopf-Lax is a semigroup: u(., s + t) = HL_s(HL_t f) (exact on the same nodes, without refinement)."""
    y = np.linspace(-3, 3, 601)
    u1 = hopf_lax_1d(f_nc, y, 0.3, y, refine=False).value
    u2 = hopf_lax_1d(u1, y, 0.5, y, refine=False).value
    direct = hopf_lax_1d(f_nc, y, 0.8, y, refine=False).value
    inner = np.abs(y) < 2
    # composing minima over the grid twice only adds the grid restriction of the intermediate point
    assert np.max(np.abs(u2 - direct)[inner]) < 1e-4


def test_2d_matches_brute_force_without_refinement():
    rng = np.random.default_rng(1)
    y1, y2 = np.linspace(-2, 2, 31), np.linspace(-1.5, 1.5, 23)
    f = rng.normal(size=(31, 23))
    x1, x2 = np.linspace(-2.5, 2.5, 11), np.linspace(-2, 2, 9)
    t = 0.3
    r = hopf_lax_2d(f, y1, y2, t, x1=x1, x2=x2, refine=False)
    A, B = np.meshgrid(y1, y2, indexing="ij")
    for i, xa in enumerate(x1):
        for j, xb in enumerate(x2):
            phi = f + ((xa - A) ** 2 + (xb - B) ** 2) / (2 * t)
            k = np.unravel_index(phi.argmin(), phi.shape)
            assert r.value[i, j] == pytest.approx(phi.min(), abs=1e-13)
            assert f[np.searchsorted(y1, r.prox[i, j, 0]), np.searchsorted(y2, r.prox[i, j, 1])] + (
                (xa - r.prox[i, j, 0]) ** 2 + (xb - r.prox[i, j, 1]) ** 2
            ) / (2 * t) == pytest.approx(phi[k], abs=1e-13)


def test_2d_refined_quadratic_is_exact_and_vectorised_path_used():
    assert 301 >= hl_mod._VECTORISE_ROWS  # 301 rows: the row-vectorised sweep is the one exercised
    y = np.linspace(-3, 3, 301)
    a, b, c, t = 1.0, 3.0, 0.5, 0.5  # f = (a x^2 + 2 c x y + b y^2)/2, u = x.(A^-1 + t)^-1 x / 2
    r = hopf_lax_2d(lambda p, q: 0.5 * (a * p**2 + 2 * c * p * q + b * q**2), y, y, t)
    A = np.array([[a, c], [c, b]])
    M = np.linalg.inv(np.linalg.inv(A) + t * np.eye(2))
    P, Q = np.meshgrid(y, y, indexing="ij")
    exact = 0.5 * (M[0, 0] * P**2 + 2 * M[0, 1] * P * Q + M[1, 1] * Q**2)
    inner = (np.abs(P) < 2) & (np.abs(Q) < 2)
    assert np.max(np.abs(r.value - exact)[inner]) < 1e-12
    g = np.stack([M[0, 0] * P + M[0, 1] * Q, M[0, 1] * P + M[1, 1] * Q], axis=-1)
    assert np.max(np.abs(r.grad - g)[inner]) < 1e-10


def test_bad_arguments_raise():
    y = np.linspace(-1, 1, 5)
    with pytest.raises(ValueError, match="t must be"):
        hopf_lax_1d(f_nc, y, -1.0, y)
    with pytest.raises(ValueError, match="increasing"):
        lower_envelope_of_parabolas(np.zeros(3), np.array([0.0, 0.0, 1.0]), y, 1.0)
    with pytest.raises(ValueError, match="finite"):
        lower_envelope_of_parabolas(np.array([0.0, np.inf, 1.0]), np.arange(3.0), y, 1.0)
    with pytest.raises(ValueError, match="shape"):
        lower_envelope_of_parabolas(np.zeros(4), np.arange(3.0), y, 1.0)


def test_polish_prox_reaches_continuous_minimiser():
    """Envelope picks the basin on a coarse grid; Newton polishing then matches a fine brute-force minimum."""
    from deeprelax.pde.hopf_lax import polish_prox

    def f(a, b):
        return 0.25 * (a**2 - 1) ** 2 + 0.5 * b**2 + 0.3 * a * b + 0.1 * np.sin(3 * b)

    def grad(a, b):
        return (a * (a**2 - 1) + 0.3 * b, b + 0.3 * a + 0.3 * np.cos(3 * b))

    def hess(a, b):
        return [[3 * a**2 - 1, 0.3 + 0 * a], [0.3 + 0 * a, 1 - 0.9 * np.sin(3 * b)]]

    g = np.linspace(-2, 2, 41)
    t = 0.3
    r = hopf_lax_2d(f, g, g, t, refine=False)
    xs = np.array([[0.3, -0.2], [1.2, 0.4], [-0.7, 0.9]])
    idx = [(np.argmin(np.abs(g - p)), np.argmin(np.abs(g - q))) for p, q in xs]
    xg = np.array([[g[i], g[j]] for i, j in idx])
    y0 = np.array([r.prox[i, j] for i, j in idx])
    y, val = polish_prox(f, grad, hess, xg, y0, t)
    gy = np.stack(grad(*y.T), axis=1) + (y - xg) / t
    assert np.max(np.abs(gy)) < 1e-10  # stationary (round-off of |y - x|/t)
    fine = np.linspace(-2, 2, 2001)
    A, B = np.meshgrid(fine, fine, indexing="ij")
    for k, (p, q) in enumerate(xg):
        phi = f(A, B) + ((p - A) ** 2 + (q - B) ** 2) / (2 * t)
        assert val[k] <= phi.min() + 1e-12  # no worse than the fine grid
        assert val[k] == pytest.approx(phi.min(), abs=1e-5)
        assert val[k] <= r.value[idx[k]] + 1e-15  # never worse than the coarse grid value


# ---- implicit (proximal) gradient descent --------------------------------------------------------------


def test_explicit_and_implicit_gd_on_a_quadratic():
    from deeprelax.pde.implicit_gd import explicit_gd, implicit_gd

    lam = np.array([1.0, 50.0])
    f = lambda z: 0.5 * float(np.sum(lam * z**2))  # noqa: E731
    g = lambda z: lam * z  # noqa: E731
    x0 = np.array([1.0, 1.0])
    k = np.arange(11)[:, None]
    for tau in (0.01, 0.03):  # stable: tau < 2/50
        assert np.allclose(explicit_gd(g, x0, tau, 10), x0 * (1 - tau * lam) ** k, atol=1e-14)
    div = explicit_gd(g, x0, 0.05, 200)  # unstable: |1 - 0.05*50| = 1.5
    assert np.isnan(div[-1]).all() and np.isfinite(div[0]).all()
    for tau in (0.05, 1.0, 100.0):  # backward Euler: x_k = x0 / (1 + tau lam)^k, stable for every tau
        assert np.allclose(implicit_gd(f, g, x0, tau, 10), x0 / (1 + tau * lam) ** k, rtol=1e-7, atol=1e-12)


def test_implicit_step_is_the_hopf_lax_prox_and_descends():
    from deeprelax.pde.implicit_gd import descent_slack, implicit_gd, proximal_step

    f1 = lambda z: float(f_nc(z[0]))  # noqa: E731
    g1 = lambda z: np.array([df_nc(z[0])])  # noqa: E731
    y = np.linspace(-3, 3, 6001)
    for x, tau in [(1.7, 0.1), (-1.6, 0.2), (0.4, 0.05)]:
        # small tau: the proximal objective is convex, so the local minimiser is the global prox
        p = proximal_step(f1, g1, np.array([x]), tau)[0]
        assert p == pytest.approx(hopf_lax_1d(f_nc, x, tau, y).prox, abs=1e-6)
    rng = np.random.default_rng(3)
    worst, worst_seed = np.inf, np.inf
    for _ in range(10):
        for tau in (0.3, 1.0, 5.0):
            xs = implicit_gd(f1, g1, rng.uniform(-0.5, 0.5, 1), tau, 15)
            s, s_seed = descent_slack(f1, xs, tau)
            worst, worst_seed = min(worst, s.min()), min(worst_seed, s_seed.min())
    assert worst >= -1e-12  # f(x_k+1) <= f(x_k) - |dx|^2/(2 tau): always
    assert worst_seed < 0  # the 1/tau form needs convexity: it fails through the concave hump


def test_implicit_gd_bad_arguments():
    from deeprelax.pde.implicit_gd import explicit_gd, implicit_gd

    with pytest.raises(ValueError, match="tau"):
        explicit_gd(lambda z: z, [1.0], 0.0, 3)
    with pytest.raises(ValueError, match="n_steps"):
        implicit_gd(lambda z: 0.0, lambda z: z, [1.0], 0.1, -1)
