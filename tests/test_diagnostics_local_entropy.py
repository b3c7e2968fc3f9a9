"""Local entropy and local energy against closed forms (quadratic) and the Hopf-Cole quadrature (1-D)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from deeprelax.diagnostics import (
    Objective,
    local_energy,
    local_entropy_langevin,
    local_entropy_mc,
    local_entropy_quadratic,
)
from deeprelax.pde import hopf_cole


class Point(nn.Module):
    """A 'network' whose output is its parameter vector: the loss then is any f(w)."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=torch.float64).clone())

    def forward(self, x):
        return self.w.expand(len(x), -1)


def objective(f, w):
    return Objective(Point(w), lambda out, _t: f(out[0]), [(torch.zeros(1, 1), torch.zeros(1))])


H = np.array([0.5, 1.0, 3.0])
A = np.array([0.2, -0.1, 0.3])
W = A + np.array([0.3, 0.2, -0.1])


def quad(w):
    return 0.5 * (torch.as_tensor(H) * (w - torch.as_tensor(A)) ** 2).sum()


def double_well(w):
    return (w[0] ** 2 - 1) ** 2 / 4 + 0.1 * w[0]


def test_closed_form_of_the_quadratic_agrees_with_hopf_cole():
    # the oracle itself, checked in 1-D against the quadrature of deeprelax.pde
    h, a, w, beta, gamma = 2.0, 0.3, 0.8, 3.0, 1.5
    y = np.linspace(-8, 8, 8001)
    hc = hopf_cole.local_entropy_1d(lambda z: 0.5 * h * (z - a) ** 2, np.array([w]), 1 / gamma, beta, y)
    exact = local_entropy_quadratic([h], gamma, beta, [w - a])
    assert float(hc.value[0]) - 0.5 * h * (w - a) ** 2 == pytest.approx(exact, rel=1e-8)


@pytest.mark.parametrize("gamma", [1.0, 4.0])
def test_monte_carlo_local_entropy_of_a_quadratic(gamma):
    beta = 2.0
    (est,) = local_entropy_mc(objective(quad, W), [gamma], beta, n_samples=4000, seed=0)
    exact = local_entropy_quadratic(H, gamma, beta, W - A)
    assert est.method == "mc" and est.param == gamma
    assert 0 < est.stderr < 0.05 * abs(exact) + 0.01
    assert abs(est.value - exact) < 4 * est.stderr


def test_langevin_local_entropy_of_a_quadratic():
    beta, gamma = 2.0, 2.0
    (est,) = local_entropy_langevin(
        objective(quad, W),
        [gamma],
        beta,
        n_lambda=3,
        n_steps=400,
        burn_in=20,
        n_chains=3,
        step_size=0.03,
        seed=1,
    )
    exact = local_entropy_quadratic(H, gamma, beta, W - A)
    assert est.method == "langevin"
    # error bar + O(step) bias of the unadjusted Langevin step (a few % here)
    assert abs(est.value - exact) < 4 * est.stderr + 0.05 * abs(exact)


def test_both_estimators_match_hopf_cole_on_a_non_convex_1d_function():
    beta, gamma, w = 4.0, 2.0, 0.8
    y = np.linspace(-6, 6, 6001)
    fy = lambda z: (z**2 - 1) ** 2 / 4 + 0.1 * z  # noqa: E731
    hc = hopf_cole.local_entropy_1d(fy, np.array([w]), 1 / gamma, beta, y)
    oracle = float(hc.value[0]) - fy(w)
    obj = objective(double_well, [w])
    (mc,) = local_entropy_mc(obj, [gamma], beta, n_samples=2000, seed=2)
    assert abs(mc.value - oracle) < 4 * mc.stderr
    (lv,) = local_entropy_langevin(
        obj, [gamma], beta, n_lambda=3, n_steps=1000, burn_in=20, n_chains=4, step_size=0.03, seed=3
    )
    # the Langevin estimate is noisier (correlated chains): its error bar is ~4 % here; the tolerance also
    # allows the O(step) bias of the unadjusted step. (Sampling ρ_1 at every λ-node instead of ρ_λ reads
    # 0.041 ± 0.0014 against 0.0485 and fails this.)
    assert lv.stderr < 0.1 * oracle
    assert abs(lv.value - oracle) < 3 * lv.stderr + 0.03 * abs(oracle)
    # a sharper valley (larger curvature) has a larger local entropy gap: the estimator sees width
    (sharp,) = local_entropy_mc(objective(lambda v: 10 * double_well(v), [w]), [gamma], beta, n_samples=500)
    assert sharp.value > mc.value + 4 * (sharp.stderr + mc.stderr)


def test_local_entropy_is_deterministic_given_the_seed():
    obj = objective(quad, W)
    a = local_entropy_mc(obj, [1.0, 2.0], 2.0, n_samples=50, seed=7)
    assert a == local_entropy_mc(obj, [1.0, 2.0], 2.0, n_samples=50, seed=7)
    assert a != local_entropy_mc(obj, [1.0, 2.0], 2.0, n_samples=50, seed=8)
    kw = dict(n_lambda=2, n_steps=5, burn_in=1, step_size=0.05)
    assert local_entropy_langevin(obj, [1.0], 2.0, seed=1, **kw) == local_entropy_langevin(
        obj, [1.0], 2.0, seed=1, **kw
    )


def test_local_energy_of_a_quadratic():
    # f(w + σ z⊙s) − f(w) has mean ½ σ² Σ h_i s_i² (the cross term has mean 0)
    obj = objective(quad, W)
    sigma = 0.3
    (e,) = local_energy(obj, [sigma], n_samples=4000, seed=0)
    exact = 0.5 * sigma**2 * np.sum(H * W**2)
    assert abs(e.value - exact) < 4 * e.stderr
    assert e.method == "local-energy-elementwise"


def test_filter_local_energy_uses_the_filter_rms():
    torch.manual_seed(0)
    Wm = torch.randn(3, 4, dtype=torch.float64)
    model = nn.Linear(4, 3, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(Wm)
    X = torch.eye(4, dtype=torch.float64)
    obj = Objective(model, lambda out, t: 0.5 * (out**2).sum(1).mean(), [(X, torch.zeros(4))])
    # f(W) = ‖W‖_F² / 8, so δE = σ²/8 · Σ_f n_f rms_f² = σ²/8 ‖W‖_F² for both modes (in expectation)
    sigma = 0.2
    (ef,) = local_energy(obj, [sigma], n_samples=3000, mode="filter", seed=1)
    assert abs(ef.value - sigma**2 / 8 * float((Wm**2).sum())) < 4 * ef.stderr


def test_bad_arguments():
    obj = objective(quad, W)
    with pytest.raises(ValueError, match="gammas"):
        local_entropy_mc(obj, [0.0], 1.0)
    with pytest.raises(ValueError, match="beta"):
        local_entropy_mc(obj, [1.0], -1.0)
    with pytest.raises(ValueError, match="n_chains"):
        local_entropy_langevin(obj, [1.0], 1.0, n_chains=1)
    with pytest.raises(ValueError, match="step_size"):
        local_entropy_langevin(obj, [10.0], 1.0, step_size=0.5)
    with pytest.raises(ValueError, match="mode"):
        local_energy(obj, [0.1], mode="layer")
    with pytest.raises(ValueError, match="sigmas"):
        local_energy(obj, [math.nan])
