"""The ``convergence`` lab: spectral gap vs observed decay rates, W₂ contraction, gap vs γ, and the library's
EntropySGD inner loop against the exact expected running mean of its chain."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deeprelax.experiments.lab import convergence as lab
from deeprelax.optim import EntropySGD


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    d = tmp_path_factory.mktemp("convergence")
    return lab.run(d, seed=0), d


def test_protocol(result):
    res, d = result
    assert res.name == lab.NAME == "convergence" and lab.TITLE and "Claim" in lab.__doc__
    assert res.figures
    assert all(f.exists() and f.parent == d and f.stat().st_size > 50_000 for f in res.figures)
    json.dumps(res.numbers, allow_nan=False)
    keys = {"spectral_gap", "observed_rate", "w2_rate", "gap_vs_gamma", "inner_error_at_L"}
    assert keys <= res.numbers.keys()
    assert res.summary


def test_spectral_gap_is_the_observed_rate_and_bounds_the_convex_case(result):
    n = result[0].numbers
    sg = n["spectral_gap"]
    assert np.allclose(sg["ou"]["rates"][1:], [1.0, 2.0, 3.0], rtol=1e-3)
    gap = sg["convex"]["gap"]
    assert sg["convex"]["lambda"] < gap < sg["convex"]["upper_bound"]  # Bakry-Émery, Rayleigh
    assert n["observed_rate"]["convex"] == pytest.approx(gap, rel=1e-6)
    assert n["w2_rate"]["convex"] == pytest.approx(gap, rel=1e-4)
    assert n["chi_over_discrete_poincare_bound_max"] <= 1 + 1e-9
    assert n["w2_over_bakry_emery_bound_max"] <= 1 + 1e-3  # W₂(ρ_t, μ) ≤ e^{−λt} W₂(ρ₀, μ)
    dw = sg["double_well"]
    i4 = dw["beta"].index(n["observed_rate"]["double_well_beta"])
    assert n["observed_rate"]["double_well"] == pytest.approx(dw["gap"][i4], rel=1e-4)
    assert n["w2_rate"]["double_well"] == pytest.approx(dw["gap"][i4], rel=1e-3)
    r = np.array(dw["gap_times_mfpt_over_2"])
    assert np.all(np.diff(r) < 0) and r[-1] == pytest.approx(1.0, abs=1e-3)  # λ₁ → 2/T (kramers lab's T)
    ek = np.array(dw["gap_times_ek_over_2"])
    assert np.all(np.abs(ek[2:] - 1) < 0.1) and abs(ek[-1] - 1) < abs(ek[2] - 1)


def test_2d_gap_separable_check_and_fick_jacobs(result):
    t = result[0].numbers["spectral_gap_2d"]
    assert np.allclose(t["separable_rates"], t["separable_kronecker_sum"], rtol=1e-8, atol=1e-10)
    for case in ("original", "hopf_lax"):
        c = t[case]
        # the reduction neglects the finite transverse relaxation: close to, but not equal to, the 2-D gap
        assert 0.85 < c["gap_2d"] / c["gap_fick_jacobs_1d"] < 1.05
        assert 0.8 < c["gap_2d"] / c["two_over_T_fick_jacobs"] < 1.2
    assert t["hopf_lax"]["gap_2d"] > 1.3 * t["original"]["gap_2d"]  # smoothing speeds up the relaxation


def test_gap_vs_gamma_respects_both_bounds(result):
    g = result[0].numbers["gap_vs_gamma"]
    assert np.all(np.array(g["convex"]) >= np.array(g["convex_bound"]) * (1 - 1e-4))
    dwg = np.array(g["double_well"])
    assert np.all(dwg >= np.array(g["double_well_lower"]) * (1 - 1e-4))
    assert np.all(dwg <= np.array(g["double_well_upper"]) * (1 + 1e-6))
    assert np.all(np.diff(dwg) > 0) and dwg[0] < 0.05 and dwg[-1] > 0.9 * g["gamma"][-1]


def test_inner_loop_matches_its_chain_and_the_gap(result):
    n = result[0].numbers
    assert n["inner_bias_max_abs_z"] < 5.0  # simulated E μ_L vs the chain's exact expected running mean
    e = n["inner_error_at_L"]["1-D"]
    # strongly coupled: after 25 steps only the chain's own (ULA) bias is left; weakly coupled: not converged
    g10 = e["gamma=10"]["L=25"]
    assert g10["bias_exact"] < 1.1 * n["inner_ula_bias"]["1-D"]["gamma=10"]
    assert e["gamma=0.5"]["L=100"]["bias_exact"] > 5 * n["inner_ula_bias"]["1-D"]["gamma=0.5"]
    for key in ("gamma=0.5", "gamma=2", "gamma=5", "gamma=10"):
        assert e[key]["L=100"]["bias_exact"] <= e[key]["L=25"]["bias_exact"] * (1 + 1e-9)
        # the chain's relaxation factor per step is ≈ 1 − inner_lr·λ₁(γ) (Euler step of the generator)
        gap = n["inner_gap"][key]
        assert n["inner_chain_second_eigenvalue"][key] == pytest.approx(1 - lab.INNER_LR * gap, abs=0.03)


def test_lr_one_reveals_the_running_mean():
    """The lab's protocol: lr = 1, momentum = 0 makes the outer step land on μ_L. Without noise and L = 1,
    μ₁ = αx + (1 − α)(x − η'∇f(x))."""
    x = torch.tensor([0.3, -1.4, 2.0], dtype=torch.float64)
    y = torch.nn.Parameter(x.clone())
    opt = EntropySGD(
        [y],
        lr=1.0,
        momentum=0.0,
        nesterov=False,
        L=1,
        inner_lr=0.05,
        gamma=2.0,
        scoping=0.0,
        noise=0.0,
        alpha=0.75,
    )

    def closure():
        opt.zero_grad()
        loss = ((y**2 - 1) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    grad = 4 * x * (x**2 - 1)
    assert torch.allclose(y.detach(), x - 0.25 * 0.05 * grad, rtol=0, atol=1e-15)
