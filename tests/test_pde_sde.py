"""Euler-Maruyama against closed forms.

Oracles: the Ornstein-Uhlenbeck process dX = −θX dt + σ dW has mean x₀e^{−θt} and variance
σ²(1 − e^{−2θt})/(2θ); its Euler-Maruyama chain is the AR(1) recursion X_{k+1} = (1 − θh)X_k + σ√h ξ_k, whose
mean and variance are known exactly for every step h. Multivariate: the stationary covariance of the EM chain
for dX = −AX dt + Σ dW solves the discrete Lyapunov equation C = (I − hA)C(I − hA)ᵀ + hΣΣᵀ. Monte-Carlo
tolerances are 4 standard errors (false-failure probability < 1e-4 per check, and the seeds are fixed anyway).
"""

import numpy as np
import pytest
from scipy.linalg import solve_discrete_lyapunov

from deeprelax.pde.sde import entropy_sgd_fast_slow, euler_maruyama, first_passage_times, langevin

N = 20000


def _ou_discrete(x0, theta, sigma, h, n):
    a = 1 - theta * h
    mean = x0 * a**n
    var = sigma**2 * h * (1 - a ** (2 * n)) / (1 - a**2)
    return mean, var


def _ou_exact(x0, theta, sigma, t):
    return x0 * np.exp(-theta * t), sigma**2 * (1 - np.exp(-2 * theta * t)) / (2 * theta)


def test_ou_mean_variance_match_discrete_and_continuous_closed_forms():
    theta, sigma, x0, h, n = 1.5, 0.8, 2.0, 0.002, 500
    rng = np.random.default_rng(1)
    path = euler_maruyama(
        lambda x, t: -theta * x, np.full(N, x0), dt=h, n_steps=n, sigma=sigma, rng=rng, record_every=100
    )
    assert path.x.shape == (6, N) and np.allclose(path.t, np.arange(6) * 100 * h)
    xT = path.final
    m_d, v_d = _ou_discrete(x0, theta, sigma, h, n)
    se_mean, se_var = np.sqrt(v_d / N), v_d * np.sqrt(2 / (N - 1))
    assert abs(xT.mean() - m_d) < 4 * se_mean
    assert abs(xT.var(ddof=1) - v_d) < 4 * se_var
    # continuum: the EM bias is O(h); here |m_d - m| ~ 3e-3, well under the allowance
    m_c, v_c = _ou_exact(x0, theta, sigma, n * h)
    assert abs(xT.mean() - m_c) < 4 * se_mean + 2 * theta * h * abs(x0)
    assert abs(xT.var(ddof=1) - v_c) < 4 * se_var + 2 * theta * h * v_c
    # every recorded time, mean against the discrete closed form
    for k, tk in enumerate(path.t):
        m_k, v_k = _ou_discrete(x0, theta, sigma, h, round(tk / h))
        assert abs(path.x[k].mean() - m_k) < 4 * np.sqrt(v_k / N) + 1e-12


def test_langevin_quadratic_is_ou_with_gibbs_variance():
    beta, h = 2.0, 0.01
    rng = np.random.default_rng(2)
    xT = langevin(lambda x: x, np.zeros((N, 1)), beta=beta, dt=h, n_steps=800, rng=rng).final[:, 0]
    _, v_d = _ou_discrete(0.0, 1.0, np.sqrt(2 / beta), h, 800)
    assert abs(xT.var(ddof=1) - v_d) < 4 * v_d * np.sqrt(2 / (N - 1))
    # Gibbs variance 1/beta up to the O(h) EM bias (v_d = 1/(beta(1 - h/2)))
    assert abs(v_d - 1 / beta) < h / beta


def test_matrix_noise_stationary_covariance_solves_discrete_lyapunov():
    A = np.array([[1.0, 0.6], [-0.6, 2.0]])
    S = np.array([[0.5, 0.0, 0.3], [0.2, 0.7, 0.0]])  # d=2, m=3
    h = 0.01
    rng = np.random.default_rng(3)
    xT = euler_maruyama(lambda x, t: -x @ A.T, np.zeros((N, 2)), dt=h, n_steps=1000, sigma=S, rng=rng).final
    B = np.eye(2) - h * A
    C = solve_discrete_lyapunov(B, h * S @ S.T)
    emp = np.cov(xT.T)
    # SE of an empirical covariance entry: sqrt((C_ii C_jj + C_ij^2)/N)
    se = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / N)
    assert np.all(np.abs(emp - C) < 4 * se)
    assert np.all(np.abs(xT.mean(0)) < 4 * np.sqrt(np.diag(C) / N))


def test_diagonal_noise_and_time_dependent_drift():
    rng = np.random.default_rng(4)
    # dX = cos(t) dt + diag(0, 1) dW: first coordinate is deterministic sin(T) up to the Riemann-sum error
    h, n = 0.001, 1000
    xT = euler_maruyama(
        lambda x, t: np.cos(t) + 0 * x, np.zeros((N, 2)), dt=h, n_steps=n, sigma=[0.0, 1.0], rng=rng
    ).final
    assert np.allclose(xT[:, 0], np.sum(np.cos(np.arange(n) * h)) * h)
    assert abs(xT[:, 0][0] - np.sin(1.0)) < h
    assert abs(xT[:, 1].var(ddof=1) - 1.0) < 4 * np.sqrt(2 / N)


def test_brownian_exit_time_from_interval():
    # dX = σ dW from 0, exit from (-1, 1): E τ = 1/σ². Discrete monitoring overshoots the barrier by about
    # 0.5826 σ√h (Broadie-Glasserman-Kou correction), so the discrete mean is ≈ (1 + 0.5826σ√h)²/σ².
    sigma, h, n = 1.0, 1e-4, 3000
    rng = np.random.default_rng(5)
    tau = first_passage_times(
        lambda x, t: 0 * x,
        np.zeros(n),
        lambda x: np.abs(x[:, 0]) >= 1,
        dt=h,
        sigma=sigma,
        rng=rng,
        max_steps=10**6,
    )
    assert np.all(np.isfinite(tau))
    corrected = (1 + 0.5826 * sigma * np.sqrt(h)) ** 2 / sigma**2
    se = tau.std(ddof=1) / np.sqrt(n)
    assert abs(tau.mean() - corrected) < 4 * se
    # censoring is reported as inf, and starting inside the target gives 0
    tau2 = first_passage_times(
        lambda x, t: 0 * x,
        np.array([0.0, 5.0]),
        lambda x: np.abs(x[:, 0]) >= 1,
        dt=h,
        sigma=0.0,
        rng=rng,
        max_steps=10,
    )
    assert tau2[0] == np.inf and tau2[1] == 0.0


def test_fast_slow_linear_mean_and_homogenized_limit():
    # f(y) = a y²/2: ⟨y⟩ = x/(1 + aγ), so the homogenized flow is X' = -a X/(1 + aγ).
    a, gamma, beta, x0, T = 2.0, 0.5, 5.0, 1.5, 1.0
    rng = np.random.default_rng(6)
    errs = []
    for eps in (0.05, 0.005):
        ds = eps / 50
        n = round(T / ds)
        p = entropy_sgd_fast_slow(
            lambda y: a * y, np.full(2000, x0), gamma=gamma, beta=beta, eps=eps, ds=ds, n_steps=n, rng=rng
        )
        # exact mean of the (linear) EM chain: z_{k+1} = (I + ds M) z_k
        M = np.array([[-1 / gamma, 1 / gamma], [1 / (eps * gamma), -(a + 1 / gamma) / eps]])
        mean = np.linalg.matrix_power(np.eye(2) + ds * M, n) @ np.array([x0, x0])
        sd = p.x[-1].std(ddof=1)
        assert abs(p.x[-1].mean() - mean[0]) < 4 * sd / np.sqrt(2000) + 1e-12
        errs.append(np.sqrt(np.mean((p.x[-1] - x0 * np.exp(-a * T / (1 + a * gamma))) ** 2)))
    # homogenization: the error shrinks with eps (strong error ~ sqrt(eps): a factor ~3 for eps/10)
    assert errs[1] < errs[0] / 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dt=0.0), "dt"),
        (dict(n_steps=-1), "n_steps"),
        (dict(sigma=-1.0), "sigma"),
        (dict(sigma=[1.0, 2.0, 3.0]), "sigma"),
        (dict(record_every=0), "record_every"),
    ],
)
def test_invalid_arguments(kwargs, match):
    base = dict(dt=0.1, n_steps=3, sigma=1.0, rng=np.random.default_rng(0))
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        euler_maruyama(lambda x, t: x, np.zeros((2, 2)), **base)


def test_invalid_fast_slow_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="ds"):
        entropy_sgd_fast_slow(
            lambda y: y, np.zeros(2), gamma=1.0, beta=1.0, eps=0.01, ds=0.02, n_steps=1, rng=rng
        )
    with pytest.raises(ValueError, match="beta"):
        langevin(lambda x: x, np.zeros(2), beta=0.0, dt=0.1, n_steps=1, rng=rng)
