"""The relaxation optimizers against the mathematics they approximate.

Oracles:
* the local Gibbs mean ⟨y⟩ under ρ(y; x) ∝ exp(−βf(y) − βγ|x − y|²/2) by quadrature, and the local-entropy
  gradient ∇f_{1/γ}(x) by differentiating f_{1/γ} = −β⁻¹ log ∫ e^{−βf(y) − βγ|x−y|²/2} dy numerically;
* the *exact* law of the discrete inner chain (Euler-Maruyama with step h): its Gaussian transition kernel
  propagated on a fine grid gives E[μ_L] for the finite L and h the optimizer runs, so the Monte-Carlo
  tolerance is only the standard error; the step-size bias of the chain against the continuum ⟨y⟩ is
  computed, not guessed;
* the proximal point / Moreau envelope by direct minimisation on a grid.

The test problem is 1-D; M independent chains run as the M coordinates of one parameter tensor (the loss is
a sum over coordinates, so each coordinate sees its own exact gradient f'(y_i)).
"""

import functools
import math
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp
from scipy.stats import norm

from deeprelax.optim import HJ, EntropySGD, Heat

# f(y) = (y² − 1)²/4 + 0.3 y: a tilted double well, argmin f ≈ −1.125
X0, GAMMA, EPS = 0.5, 1.0, 0.5  # anchor, coupling (PDE time 1/γ = 1), thermal noise ε (β = 1/ε² = 4)
BETA = 1 / EPS**2


def f_np(y):
    return (y**2 - 1) ** 2 / 4 + 0.3 * y


def fprime_np(y):
    return y * (y**2 - 1) + 0.3


def f_torch(y):
    return ((y**2 - 1) ** 2 / 4 + 0.3 * y).sum()


def closure_for(opt, param, loss_fn=f_torch):
    """An exact-gradient closure: the 1-D problem has no minibatches."""

    def closure():
        opt.zero_grad()
        loss = loss_fn(param)
        loss.backward()
        return loss

    return closure


GRID = np.linspace(-4.0, 4.0, 16001)


def gibbs_mean(x, gamma=GAMMA, beta=BETA):
    logw = -beta * f_np(GRID) - beta * gamma * (x - GRID) ** 2 / 2
    w = np.exp(logw - logsumexp(logw))
    return float((w * GRID).sum())


def local_entropy(x, gamma=GAMMA, beta=BETA):
    logw = -beta * f_np(GRID) - beta * gamma * (x - GRID) ** 2 / 2
    return float(-logsumexp(logw) / beta)


@functools.cache
def chain_expectations(x, h, L, gamma=GAMMA, eps=EPS, lo=-3.5, hi=3.5, n=701):
    """E[y_k], k = 0..L, for y_{k+1} = y_k − h(f'(y_k) + γ(y_k − x)) + ε√(2h) ξ, y_0 = x.

    The exact law of the discrete chain, propagated on a grid.
    """
    z = np.linspace(lo, hi, n)
    dz = z[1] - z[0]
    s = eps * math.sqrt(2 * h)

    def kernel(y):  # rows: the transition densities from the points y, normalised on the grid
        m = y - h * (fprime_np(y) + gamma * (y - x))
        k = norm.pdf((z[None, :] - m[:, None]) / s) * dz / s
        return k / k.sum(axis=1, keepdims=True)

    P = kernel(z)
    pi = kernel(np.array([x]))[0]
    means = [x, float(pi @ z)]
    for _ in range(L - 1):
        pi = pi @ P
        means.append(float(pi @ z))
    means = np.array(means)
    means.flags.writeable = False
    return means


def run_inner_loop(opt_cls, L, h, M=20000, seed=0, **kw):
    """One outer step with lr = 1, no momentum: the parameter lands on μ_L (x − lr·(x − μ) = μ)."""
    torch.manual_seed(seed)
    y = torch.full((M,), X0, dtype=torch.float64, requires_grad=True)
    opt = opt_cls(
        [y], lr=1.0, momentum=0.0, nesterov=False, L=L, inner_lr=h, gamma=GAMMA, scoping=0.0, noise=EPS, **kw
    )
    opt.step(closure_for(opt, y))
    mu = y.detach().numpy()
    return mu.mean(), mu.std(ddof=1) / math.sqrt(M)


def test_quadrature_oracle_is_self_consistent():
    # Hopf-Cole identity ∇f_{1/γ}(x) = γ(x − ⟨y⟩), with the derivative taken by central differences
    d = 1e-4
    grad_fd = (local_entropy(X0 + d) - local_entropy(X0 - d)) / (2 * d)
    assert grad_fd == pytest.approx(GAMMA * (X0 - gibbs_mean(X0)), rel=1e-6)


def test_entropy_sgd_running_mean_matches_gibbs_mean():
    h, L, alpha = 0.05, 400, 0.75
    mean, se = run_inner_loop(EntropySGD, L, h, alpha=alpha)
    # exact expectation of the EMA μ_L = α^L x + Σ_k (1 − α) α^{L−k} y_k of the discrete chain
    ey = chain_expectations(X0, h, L)
    weights = (1 - alpha) * alpha ** (L - np.arange(1, L + 1))
    expected = alpha**L * X0 + (weights * ey[1:]).sum()
    assert abs(mean - expected) < 4 * se

    # the discrete chain's equilibrium mean differs from the continuum ⟨y⟩ by its O(h) step-size bias:
    # halving h halves it (first-order weak error of Euler-Maruyama)
    target = gibbs_mean(X0)
    bias_h = chain_expectations(X0, h, L)[-1] - target
    bias_h2 = chain_expectations(X0, h / 2, 2 * L)[-1] - target
    assert bias_h / bias_h2 == pytest.approx(2.0, rel=0.1)
    assert abs(mean - target) < abs(bias_h) + 4 * se
    # ... and the test is meaningful: ⟨y⟩ is far from the anchor and from argmin f (≈ −1.125)
    assert abs(target - X0) > 50 * se and abs(target - (-1.125)) > 50 * se

    # the outer direction γ(x − μ) estimates the local-entropy gradient ∇f_{1/γ}(x)
    d = 1e-4
    grad = (local_entropy(X0 + d) - local_entropy(X0 - d)) / (2 * d)
    assert abs(GAMMA * (X0 - mean) - grad) < GAMMA * (abs(bias_h) + 4 * se)


def test_heat_uniform_average_matches_gibbs_mean():
    h, L = 0.05, 400
    mean, se = run_inner_loop(Heat, L, h)
    ey = chain_expectations(X0, h, L)
    expected = ey.mean()  # uniform average of y_0 = x, y_1, ..., y_L
    assert abs(mean - expected) < 4 * se
    # the uniform average carries the transient of the chain (started at x); it decays like 1/L
    ey_long = chain_expectations(X0, h, 4 * L)
    stationary = ey_long[-1]
    assert abs(ey_long.mean() - stationary) < 0.3 * abs(expected - stationary)
    assert abs(expected - gibbs_mean(X0)) < 0.05  # 2 % of the spread of ρ at L = 400, h = 0.05


@pytest.mark.parametrize("L", [3, 20])
def test_entropy_sgd_and_heat_agree_with_the_chain_at_short_L(L):
    # the authors' regime (L = 20) and a very short chain, far from equilibrium, where the averaging
    # conventions (which weight is α, whether y_0 = x is averaged) differ by many standard errors
    h = 0.1
    for cls, kw in ((EntropySGD, {"alpha": 0.75}), (Heat, {})):
        mean, se = run_inner_loop(cls, L, h, seed=1, **kw)
        ey = chain_expectations(X0, h, L)
        if cls is Heat:
            expected = ey.mean()
        else:
            w = 0.25 * 0.75 ** (L - np.arange(1, L + 1))
            expected = 0.75**L * X0 + (w * ey[1:]).sum()
        assert abs(mean - expected) < 4 * se


# ---------------------------------------------------------------------------------------------------------
# HJ: the proximal fixed point


def prox(x, gamma):
    """argmin_y f(y) + γ|x − y|²/2 by grid search then bounded refinement."""
    g = np.linspace(-4, 4, 80001)
    y0 = g[np.argmin(f_np(g) + gamma * (x - g) ** 2 / 2)]
    r = minimize_scalar(
        lambda y: f_np(y) + gamma * (x - y) ** 2 / 2,
        bounds=(y0 - 1e-3, y0 + 1e-3),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return r.x


def moreau(x, gamma):
    y = prox(x, gamma)
    return f_np(y) + gamma * (x - y) ** 2 / 2


def hj_direction(xs, gamma, L, damping=0.75, **kw):
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    opt = HJ([x], lr=1.0, momentum=0.0, nesterov=False, L=L, gamma=gamma, scoping=0.0, damping=damping, **kw)
    opt.step(closure_for(opt, x))
    return np.asarray(xs) - x.detach().numpy(), opt  # p_L = x − x_new


@pytest.mark.parametrize("gamma", [2.0, 5.0])
def test_hj_converges_to_moreau_gradient(gamma):
    xs = [-1.5, -0.4, 0.0, 0.5, 1.3]
    p, opt = hj_direction(xs, gamma, L=300)
    for xi, pi in zip(xs, p):
        y = prox(xi, gamma)
        assert pi == pytest.approx(gamma * (xi - y), abs=1e-7)  # ∇u = γ(x − prox) = p*
        assert pi == pytest.approx(fprime_np(xi - pi / gamma), abs=1e-7)  # p* = ∇f(x − p*/γ)
        d = 1e-5  # ... and p* is the gradient of the Moreau envelope (Hopf-Lax solution at t = 1/γ)
        assert pi == pytest.approx((moreau(xi + d, gamma) - moreau(xi - d, gamma)) / (2 * d), abs=1e-5)
    first, last = opt.last_residuals
    assert last < 1e-9 * first


def test_hj_weight_decay_is_folded_into_the_fixed_point():
    # with weight decay the fixed point is the proximal gradient of f + wd|y|²/2, and the outer step
    # (lr = 1, no momentum) is x − p: weight decay is not added a second time
    wd, gamma = 0.4, 3.0
    xs = [-0.8, 0.2, 1.1]
    p, _ = hj_direction(xs, gamma, L=300, weight_decay=wd)
    g = np.linspace(-4, 4, 400001)
    for xi, pi in zip(xs, p):
        y = g[np.argmin(f_np(g) + wd * g**2 / 2 + gamma * (xi - g) ** 2 / 2)]
        assert pi == pytest.approx(gamma * (xi - y), abs=gamma * 2e-5)  # grid spacing 2e-5
        w = xi - pi / gamma
        assert pi == pytest.approx(fprime_np(w) + wd * w, abs=1e-7)


@pytest.mark.parametrize("curvature", [20.0, -3.0])  # above 7γ, and below −γ
def test_hj_warns_when_the_fixed_point_cannot_contract(curvature):
    x = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    opt = HJ([x], lr=1.0, momentum=0.0, nesterov=False, L=20, gamma=1.0, scoping=0.0)

    # f = c y²/2: the damped map has slope 0.75 − 0.25c/γ, outside (−1, 1)
    closure = closure_for(opt, x, lambda v: (curvature * v**2 / 2).sum())

    with pytest.warns(RuntimeWarning, match="not contracting"):
        opt.step(closure)
    first, last = opt.last_residuals
    assert last > 1e3 * first


def test_hj_does_not_warn_when_contracting():
    x = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    opt = HJ([x], lr=1.0, momentum=0.0, nesterov=False, L=20, gamma=1.0, scoping=0.0)

    closure = closure_for(opt, x, lambda v: (5.0 * v**2 / 2).sum())  # slope 0.75 − 1.25 = −0.5: contracts

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step(closure)


@pytest.mark.parametrize("cls", [EntropySGD, Heat])
@pytest.mark.parametrize(
    "wd,m,nesterov", [(0.0, 0.0, False), (0.05, 0.0, False), (0.05, 0.5, False), (0.0, 0.6, True)]
)
def test_noise_free_inner_loop_is_the_documented_recursion(cls, wd, m, nesterov):
    # ε = 0: g_k = f'(y_k) + wd·y_k, b_k = m b_{k−1} + g_k (b_1 = g_1), ĝ_k = g_k + m b_k (Nesterov) or b_k,
    # y_{k+1} = y_k − h(ĝ_k + γ(y_k − x)), μ_k = w_k μ_{k−1} + (1 − w_k) y_k, μ_0 = x, with w_k = α
    # (Entropy-SGD: the newest sample weighted 1 − α) or k/(k+1) (HEAT: uniform over y_0..y_L);
    # outer step (lr = 1, no momentum): x ← x − ((x − μ_L) + wd·x)
    xs = np.array([-1.0, 0.5, 1.5])
    h, L, alpha = 0.1, 7, 0.75
    kw = {"alpha": alpha} if cls is EntropySGD else {}
    y = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    opt = cls(
        [y],
        lr=1.0,
        momentum=0.0,
        nesterov=False,
        L=L,
        inner_lr=h,
        gamma=GAMMA,
        scoping=0.0,
        noise=0.0,
        weight_decay=wd,
        inner_momentum=m,
        inner_nesterov=nesterov,
        **kw,
    )
    opt.step(closure_for(opt, y))
    yk, mu, b = xs.copy(), xs.copy(), None
    for k in range(1, L + 1):
        g = fprime_np(yk) + wd * yk
        if m:
            b = g.copy() if b is None else m * b + g
            g = g + m * b if nesterov else b
        yk = yk - h * (g + GAMMA * (yk - xs))
        w = alpha if cls is EntropySGD else k / (k + 1)
        mu = w * mu + (1 - w) * yk
    np.testing.assert_allclose(y.detach().numpy(), mu - wd * xs, rtol=0, atol=1e-14)


def test_noise_scaling_gives_inverse_temperature_eps_squared():
    # one Langevin step from x: y_1 = x − h∇H(x) + ε√(2h)ξ, so Var(y_1) = 2hε² (β⁻¹ = ε²); with L = 1 and
    # α = 0, μ_1 = y_1
    M, h = 200_000, 0.05
    torch.manual_seed(3)
    y = torch.full((M,), X0, dtype=torch.float64, requires_grad=True)
    opt = EntropySGD(
        [y],
        lr=1.0,
        momentum=0.0,
        nesterov=False,
        L=1,
        inner_lr=h,
        gamma=GAMMA,
        scoping=0.0,
        noise=EPS,
        alpha=0.0,
    )
    opt.step(closure_for(opt, y))
    var = y.detach().var().item()
    # sample variance of a Gaussian: relative standard error √(2/(M − 1))
    assert var == pytest.approx(2 * h * EPS**2, rel=4 * math.sqrt(2 / (M - 1)))
    assert y.detach().mean().item() == pytest.approx(X0 - h * fprime_np(X0), abs=4 * math.sqrt(var / M))


@pytest.mark.parametrize("cls", [EntropySGD, Heat])
def test_langevin_stability_line_is_checked_at_construction(cls):
    # flat directions: y − x is multiplied by 1 − h(γ + wd) per inner step, unstable iff h(γ + wd) >= 2
    params = [torch.zeros(3, requires_grad=True)]
    cls(params, inner_lr=0.1, gamma=19.9)
    cls(params, inner_lr=0.1, gamma=1.0, gamma_max=19.9)
    cls(params, inner_lr=0.1, gamma=50.0, L=0)  # no inner loop: nothing to destabilise
    for kw, name in [
        (dict(gamma=20.0), "gamma"),
        (dict(gamma=1.0, gamma_max=20.0), "gamma_max"),
        (dict(gamma=19.6, weight_decay=0.5), "gamma"),
    ]:
        with pytest.raises(ValueError, match=f"{name}=.*unstable"):
            cls(params, inner_lr=0.1, **kw)


@pytest.mark.parametrize("cls", [EntropySGD, Heat])
def test_scoped_gamma_crossing_the_stability_line_warns_once_at_that_step(cls):
    # h·γ_t = 0.5·1.5^t: 0.5, 0.75, 1.125, 1.69, 2.53 — the loop becomes unstable at outer step t = 4
    y = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    opt = cls([y], lr=0.01, L=3, inner_lr=0.5, gamma=1.0, scoping=0.5, noise=0.0)
    closure = closure_for(opt, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(4):
            opt.step(closure)
    with pytest.warns(RuntimeWarning, match=r"unstable from outer step 4 .*gamma_max < 4"):
        opt.step(closure)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step(closure)  # said once
        capped = cls([y], lr=0.01, L=3, inner_lr=0.5, gamma=1.0, scoping=0.5, gamma_max=3.9, noise=0.0)
        closure = closure_for(capped, y)
        for _ in range(10):
            capped.step(closure)
    assert capped.gammas == [3.9]


def test_hj_minibatch_outliers_are_not_reported_as_divergence():
    # a contracting problem (curvature 1, γ = 1) whose minibatch gradients are mostly tiny, with one batch in
    # ten holding a "hard example" (a spike): single steps show the residual growing 10-1000x, but the
    # growth is not persistent, so no warning (the per-step test gave 24 false alarms in these 300 steps)
    torch.manual_seed(0)
    y = torch.zeros(20, dtype=torch.float64, requires_grad=True)
    opt = HJ([y], lr=0.1, L=5, gamma=1.0, scoping=0.0)

    def noisy(v):
        spike = 30.0 if torch.rand(()) < 0.1 else 0.0
        noise = 0.01 * torch.randn(20, dtype=torch.float64) + spike * torch.randn(20, dtype=torch.float64)
        return ((v - 1.0) ** 2 / 2).sum() + (noise * v).sum()

    closure = closure_for(opt, y, noisy)
    single_step_growths = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(300):
            opt.step(closure)
            first, last = opt.last_residuals
            single_step_growths.append(last / first)
    assert max(single_step_growths) > 10  # the per-step ratio alone would have raised alarms


def test_hj_warns_when_divergence_sets_in_during_training():
    x = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    opt = HJ([x], lr=0.0, momentum=0.0, nesterov=False, L=20, gamma=1.0, scoping=0.0)
    curvature = [5.0]  # contracting first, then 20 (slope −4.25: diverges)
    closure = closure_for(opt, x, lambda v: (curvature[0] * v**2 / 2).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(20):
            opt.step(closure)
    curvature[0] = 20.0
    with pytest.warns(RuntimeWarning, match="not contracting"):
        for _ in range(5):
            opt.step(closure)
