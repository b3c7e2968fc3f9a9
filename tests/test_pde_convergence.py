"""Spectral gap of the Scharfetter-Gummel Fokker-Planck generator, χ- and W₂-distances, the ULA chain:
against the OU closed forms, a dense eigen-solve, Bakry-Émery and the exact MFPT."""

from __future__ import annotations

import numpy as np
import pytest

from deeprelax.pde.convergence import (
    chi2_distance,
    decay_rate,
    generator_spectrum,
    generator_spectrum_2d,
    poincare_upper_bound,
    ula_expected_running_mean,
    ula_stationary,
    ula_transition_matrix,
    wasserstein2_1d,
)
from deeprelax.pde.fokker_planck import FokkerPlanck1D
from deeprelax.pde.metastability import mfpt_1d


@pytest.mark.parametrize("lam,beta", [(1.0, 1.0), (2.0, 0.5), (0.5, 8.0)])
def test_ou_spectrum_is_k_lambda(lam, beta):
    """V = λy²/2: the generator's eigenvalues are exactly 0, λ, 2λ, 3λ (Hermite modes), for every β."""
    sd = 1 / np.sqrt(beta * lam)
    x = np.linspace(-9 * sd, 9 * sd, 1201)
    s = generator_spectrum(x, lambda y: 0.5 * lam * y**2, beta, k=4)
    assert abs(s.rates[0]) < 1e-9 * lam
    assert np.allclose(s.rates[1:], lam * np.arange(1, 4), rtol=2e-4)
    assert s.gap == pytest.approx(lam, rel=1e-4)
    # first mode ∝ y·π (the Hermite polynomial H₁ times the Gibbs density)
    v = s.modes[:, 1]
    h1 = x * s.pi
    assert abs(v @ h1) / (np.linalg.norm(v) * np.linalg.norm(h1)) > 1 - 1e-6
    assert poincare_upper_bound(x, lambda y: 0.5 * lam * y**2, beta) == pytest.approx(lam, rel=1e-6)


def test_tridiagonal_solve_equals_dense_eigenvalues_of_the_generator():
    x = np.linspace(-2.0, 2.0, 121)
    V = lambda y: (y**2 - 1) ** 2 + 0.3 * y  # noqa: E731
    fp = FokkerPlanck1D(x, V, 3.0)
    dense = np.sort(-np.linalg.eigvals(fp.generator()).real)[:5]
    s = generator_spectrum(x, V, 3.0, k=5)
    assert np.allclose(s.rates, dense, rtol=1e-9, atol=1e-9)
    L = fp.generator()
    for j in range(1, 5):  # density-space modes: L v = −λ v
        v = s.modes[:, j]
        assert np.max(np.abs(L @ v + s.rates[j] * v)) < 1e-8 * np.max(np.abs(L)) * np.max(np.abs(v))


@pytest.mark.parametrize("a,c,beta", [(1.0, 0.25, 1.0), (0.5, 1.0, 3.0), (2.0, 0.1, 0.5)])
def test_bakry_emery_lower_and_rayleigh_upper_bound(a, c, beta):
    """f = a y²/2 + c y⁴ has f'' ≥ a: a ≤ λ₁ ≤ β⁻¹/Var(y), both strict for c > 0."""
    x = np.linspace(-6.0, 6.0, 1201)
    f = lambda y: 0.5 * a * y**2 + c * y**4  # noqa: E731
    gap = generator_spectrum(x, f, beta, k=2).gap
    assert a < gap < poincare_upper_bound(x, f, beta)


def test_implicit_euler_contracts_the_chi_distance_at_the_discrete_gap():
    """h Σ(ρ − π)²/π decays by at least 1/(1 + dt λ₁) per step (discrete Poincaré) and asymptotically at
    exactly that factor."""
    x = np.linspace(-2.5, 2.5, 301)
    V = lambda y: 0.5 * (y**2 - 1) ** 2 + 0.2 * y  # noqa: E731
    beta, dt = 2.0, 0.05
    fp = FokkerPlanck1D(x, V, beta)
    s = generator_spectrum(x, V, beta, k=2)
    rho = fp.gibbs() * np.exp(1.5 * np.sin(3 * x))
    rho /= fp.mass(rho)
    t, R = fp.solve(rho, 40.0, 800, save_every=1)
    d = chi2_distance(R, fp.gibbs(), fp.h)
    # up to the eigen-solver's tolerance, which differs between numpy/scipy builds (1e-9 failed on the floors)
    assert np.all(d[1:] <= d[:-1] / (1 + dt * s.gap) * (1 + 1e-6))
    late = t > 20
    assert decay_rate(t[late], d[late], implicit_dt=dt) == pytest.approx(s.gap, rel=1e-6)
    # without the implicit-Euler correction the fitted slope is log(1 + dt λ)/dt < λ
    assert decay_rate(t[late], d[late]) == pytest.approx(np.log1p(dt * s.gap) / dt, rel=1e-6)


def test_wasserstein2_shift_gaussians_and_symmetry():
    x = np.linspace(-8.0, 8.0, 1601)
    h = x[1] - x[0]
    g = np.exp(-0.5 * ((x + 1.0) / 0.7) ** 2)
    for k in (1, 7, 150):
        assert wasserstein2_1d(x, g, np.roll(g, k)) == pytest.approx(k * h, rel=1e-9)
    assert wasserstein2_1d(x, g, g) == 0.0
    g2 = np.exp(-0.5 * ((x - 1.5) / 1.3) ** 2)
    exact = np.sqrt(2.5**2 + 0.6**2)  # W₂² = (m₁ − m₂)² + (s₁ − s₂)² for Gaussians
    assert wasserstein2_1d(x, g, g2) == pytest.approx(exact, rel=1e-4)
    assert wasserstein2_1d(x, g2, g) == pytest.approx(wasserstein2_1d(x, g, g2), rel=1e-12)
    with pytest.raises(ValueError):
        wasserstein2_1d(x, -g, g2)


def test_double_well_gap_is_twice_the_inverse_mfpt():
    """Symmetric double well: λ₁ ≈ 2/T (sum of the two Kramers rates), up to exponentially small terms."""
    V = lambda y: (y**2 - 1) ** 2  # noqa: E731
    x = np.linspace(-2.2, 2.2, 1101)
    r = [generator_spectrum(x, V, b, k=2).gap * mfpt_1d(V, -1.0, 1.0, b) / 2 for b in (4.0, 8.0, 12.0)]
    assert r[0] > r[1] > r[2] > 1.0
    assert r[2] < 1.0001


def test_ula_chain_on_a_quadratic_is_an_ar1():
    """H = c y²/2: y_k = (1 − ηc) y_{k−1} + √(2η/β) ξ, so E y_k = (1 − ηc)^k y₀ and the stationary variance is
    (2η/β)/(1 − (1 − ηc)²) = 1/(βc(1 − ηc/2)) — not the Gibbs 1/(βc): ULA's discretisation bias."""
    c, beta, eta, y0, alpha = 3.0, 2.0, 0.1, 1.2, 0.75
    y = np.linspace(-4.0, 4.0, 1601)
    P = ula_transition_matrix(lambda v: c * v, y, beta, eta)
    assert np.allclose(P.sum(axis=1), 1.0)
    ey, em = ula_expected_running_mean(P, y, y0, alpha, 30)
    r = 1 - eta * c
    k = np.arange(31)
    assert np.allclose(ey, y0 * r**k, atol=1e-8)
    mu = np.empty(31)
    mu[0] = y0
    for j in range(1, 31):
        mu[j] = alpha * mu[j - 1] + (1 - alpha) * y0 * r**j
    assert np.allclose(em, mu, atol=1e-8)
    p = ula_stationary(P)
    var = p @ y**2 - (p @ y) ** 2
    assert var == pytest.approx(1 / (beta * c * (1 - eta * c / 2)), rel=1e-6)
    assert abs(p @ y) < 1e-10
    with pytest.raises(ValueError, match="resolve"):
        ula_transition_matrix(lambda v: c * v, np.linspace(-4, 4, 41), beta, eta)


def test_2d_generator_of_a_separable_potential_is_the_kronecker_sum():
    """V = V₁(x) + V₂(y): the 2-D Scharfetter-Gummel operator is S₁ ⊗ I + I ⊗ S₂, so its rates are the sums
    λ_i + μ_j of the 1-D ones (to round-off); a coupling term changes them."""
    x, y = np.linspace(-2.0, 2.0, 61), np.linspace(-1.5, 1.5, 41)
    V1 = lambda s: (s**2 - 1) ** 2  # noqa: E731
    V2 = lambda s: 0.5 * s**2 + 0.1 * s**4  # noqa: E731
    lam = generator_spectrum_2d(x, y, lambda X, Y: V1(X) + V2(Y), 3.0, k=4)
    a, b = generator_spectrum(x, V1, 3.0, k=4).rates, generator_spectrum(y, V2, 3.0, k=4).rates
    sums = np.sort((a[:, None] + b[None, :]).ravel())[:4]
    assert np.allclose(lam, sums, rtol=1e-8, atol=1e-10)
    coupled = generator_spectrum_2d(x, y, lambda X, Y: V1(X) + V2(Y) + 0.5 * X * Y, 3.0, k=2)
    assert abs(coupled[1] - lam[1]) > 1e-3 * lam[1]
