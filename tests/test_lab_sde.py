"""The SDE/metastability labs: each runs (seed 0) into a temporary directory, writes its figure(s), returns
JSON-serialisable numbers with the documented keys, and the numbers support the lab's claim."""

import json

import numpy as np
import pytest

from deeprelax.experiments.lab import labs

MY_LABS = ["homogenization", "kramers", "barriers", "sgd-diffusion", "minibatch-noise", "limit-cycles"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    reg = labs()
    out = {}
    for name in MY_LABS:
        d = tmp_path_factory.mktemp(name.replace("-", "_"))
        out[name] = (reg[name].run(d, seed=0), d)
    return out


@pytest.mark.parametrize("name", MY_LABS)
def test_lab_protocol(results, name):
    res, d = results[name]
    mod = labs()[name]
    assert res.name == name == mod.NAME and isinstance(mod.ORDER, int) and mod.TITLE
    assert res.summary and mod.__doc__ and "Claim" in mod.__doc__
    assert res.figures and all(f.exists() and f.suffix == ".png" and f.parent == d for f in res.figures)
    json.dumps(res.numbers, allow_nan=False)  # plain JSON


def test_kramers_claims(results):
    n = results["kramers"][0].numbers
    for key in ("beta", "exact_mfpt", "eyring_kramers", "ratio", "simulated_mean"):
        assert key in n
    assert {4.0, 6.0, 10.0} <= set(n["beta"])
    r = np.array(n["ratio"])
    assert np.all(np.diff(r) < 0) and np.all(r > 1) and r[-1] < 1.02  # ratio -> 1 from above
    z = [v for v in n["simulated_z"] if v is not None]
    assert len(z) >= 2 and max(abs(v) for v in z) < 3.5  # simulation agrees with the exact MFPT
    # forward flux sampling up to β = 10: z of log T from 16 independent runs, point estimates within 10 %
    zf = [v for v in n["ffs_z"] if v is not None]
    assert 10.0 in n["ffs_beta"] and len(zf) == len(n["ffs_beta"]) and max(abs(v) for v in zf) < 3.5
    for b, m, lo, hi in zip(n["beta"], n["ffs_mean"], n["ffs_ci_low"], n["ffs_ci_high"], strict=True):
        if m is not None:
            e = n["exact_mfpt"][n["beta"].index(b)]
            assert abs(m / e - 1) < 0.1 and (hi - lo) / e < 0.2
    assert all(abs(v) < 0.02 for v in n["euler_bias"].values())  # dt = 0.01 is not what limits the test


def test_homogenization_claims(results):
    n = results["homogenization"][0].numbers
    err = np.array(n["sup_rms_error"])
    assert np.all(np.diff(err) < 0) and err[-1] < 0.1 * err[0] and n["slope_rms"] > 0.5
    assert abs(n["x_T_mean_smallest_eps"] - n["X_T_homogenized"]) < 0.03
    assert abs(n["x_T_gradient_flow_on_f"] - n["X_T_homogenized"]) > 0.5  # plain GD stalls elsewhere
    assert n["grad_forms_max_disagreement"] < 1e-8
    # separated errors: the bias against the discretised scheme's own limit falls at the theorem's O(ε),
    # above its statistical error; the time-discretisation error is an ε-independent floor
    assert 0.8 < n["slope_bias_vs_scheme_limit"] < 1.2 and n["slope_bias_vs_scheme_limit"] > n["slope_rms"]
    assert 1e-3 < n["time_discretisation_error"] < 0.02
    assert n["sup_bias_vs_scheme_limit"][-1] > 4 * n["bias_standard_error"][-1]
    # at the end, near the minimum of f_γ, x_ε sits at the scheme's limit, not at the exact X
    gap = abs(n["X_T_homogenized"] - n["X_T_scheme_limit"])
    assert abs(n["x_T_mean_smallest_eps"] - n["X_T_scheme_limit"]) < 0.5 * gap


def test_barriers_claims(results):
    n = results["barriers"][0].numbers
    hl = "Hopf-Lax (β_LE = ∞)"
    rw, lw = n["river_width"]["entropic"], n["lake_width"]["entropic"]
    assert rw[hl] / rw["original"] > 2.0 and lw[hl] / lw["original"] < 1.1  # the river widens, not the lakes
    assert n["river_curvature_yy"][hl] == pytest.approx(n["river_curvature_bound"], rel=0.02)
    assert n["speedup"]["entropic"][hl] > 1.3 and n["speedup"]["energetic"][hl] < 1.0
    assert n["crossings_in_path"]["energetic"] >= 2 and n["crossings_in_path"]["entropic"] >= 2
    # simulated exit times: Fick-Jacobs exact for the separable control (within 3.5 standard errors), a fair
    # approximation on the two barriers, and the simulated speed-up confirms the Fick-Jacobs one
    c = n["separable_control"]
    se = (c["ci_high"] - c["ci_low"]) / (2 * 1.96)
    assert abs(c["mean"] - c["fick_jacobs"]) < 3.5 * se and c["n_exited"] > 0.8 * c["n_paths"]
    for per in n["fick_jacobs_over_simulated"].values():
        assert all(0.75 < v < 1.15 for v in per.values())
    assert n["simulated_speedup"]["entropic"] > 1.3 and n["simulated_speedup"]["energetic"] < 1.1


def test_sgd_diffusion_claims(results):
    n = results["sgd-diffusion"][0].numbers
    assert n["ou_max_rel_err_vs_discrete"] < 0.05
    i = n["ou_lr"].index(1.0)
    assert n["ou_var_sgd"][i] / n["ou_var_continuum"][i] > 1.8  # ησ/(2−η) = 2 × ησ/2 at η = 1
    tv = n["double_well_tv_distance"]
    assert tv[0] < 0.04 and tv[1] > tv[0]


def test_minibatch_noise_claims(results):
    n = results["minibatch-noise"][0].numbers
    assert n["loglog_slope"] == pytest.approx(-1.0, abs=0.02)
    assert max(abs(z) for z in n["z_with_replacement"]) < 4
    ks = n["ks_distance_from_normal"]
    assert ks[0] > 0.1 and ks[-1] < 0.04


def test_limit_cycles_claims(results):
    n = results["limit-cycles"][0].numbers
    z0, z15 = n["z_vs_gibbs"][0], n["z_vs_gibbs"][2]
    assert max(abs(v) for v in z0.values()) < 4  # lambda = 0: Gibbs e^{-beta f}
    assert z15["p_saddle"] > 10  # lambda = 1.5: mass piles up at the saddle of f
    assert n["linear_cov_rel_err_vs_lyapunov"] < 0.05 < 0.2 < n["linear_cov_rel_err_vs_gibbs_f"]
