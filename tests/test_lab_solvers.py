"""The four PDE-solver labs, each run into tmp_path, JSON keys and claims checked."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

MODULES = {
    "local-entropy": "local_entropy",
    "widening": "widening",
    "csgd": "csgd",
    "implicit-gd": "implicit_gd",
}


def _lab(name):
    return importlib.import_module(f"deeprelax.experiments.lab.{MODULES[name]}")


def _run(name, tmp_path):
    lab = _lab(name)
    res = lab.run(tmp_path, seed=0)
    assert res.name == name
    json.dumps(res.numbers)  # JSON-serialisable
    assert res.figures and all(p.exists() and p.stat().st_size > 10_000 for p in res.figures)
    assert res.summary
    assert lab.__doc__ and lab.TITLE
    return res.numbers


def test_lab_metadata():
    for name, order in [("local-entropy", 1), ("widening", 2), ("csgd", 3), ("implicit-gd", 8)]:
        assert _lab(name).NAME == name and _lab(name).ORDER == order


def test_local_entropy_lab(tmp_path):
    n = _run("local-entropy", tmp_path)
    assert {"pde_residual", "grad_max_disagreement", "viscous_to_hopf_lax"} <= n.keys()
    # closed-form (Gibbs-moment) derivatives: residual at round-off; they are the derivatives (FD, O(d²))
    assert n["pde_residual_relative"] < 1e-13 and n["pde_residual"] < 1e-12 * n["u_t_scale"]
    assert n["closed_form_vs_fd"] < 1e-2 * n["u_t_scale"]
    # FD residual: small against |u_t| ~ 15, and shrinking like d^2
    assert n["pde_residual_fd"] < 1e-3 * n["u_t_scale"]
    r = n["pde_residual_steps"]["residual"]
    assert 3.0 < r[0] / r[1] < 5.0 and 3.0 < r[1] / r[2] < 5.0
    assert n["grad_max_disagreement"] < 1e-4 * n["grad_scale"]
    v = n["viscous_to_hopf_lax"]
    assert np.all(np.diff(v["max_abs_diff"]) < 0) and -1.1 < v["slope"] < -0.9
    # the minimiser of f_t moves from the narrow well (-1) to the wide well (+1) as t grows
    assert n["argmin_f_t"]["0.05"] < -0.9 and n["argmin_f_t"]["1"] > 0.9


def test_widening_lab(tmp_path):
    n = _run("widening", tmp_path)
    assert {"t", "bound", "max_uxx_hopf_lax", "max_uxx_viscous"} <= n.keys()
    t, b = np.array(n["t"]), np.array(n["bound"])
    assert np.allclose(b, 1 / (1 / n["C"] + t))
    hl, vi = np.array(n["max_uxx_hopf_lax"]), np.array(n["max_uxx_viscous"])
    # the bound holds (Hopf-Lax attains it at the narrow well's bottom: equal up to discretisation)
    assert np.all(hl <= b * (1 + 1e-4)) and np.all(np.abs(hl / b - 1) < 2e-3)
    assert np.all(vi <= b * (1 + 1e-6)) and np.all(vi[1:] < b[1:])
    assert n["quadratic_max_rel_error"] < 1e-8
    lap = n["laplacian_2d"]
    lb = np.array(lap["bound"])
    assert np.all(np.array(lap["max_lap_hopf_lax"]) <= lb * (1 + 1e-3))
    assert np.all(np.array(lap["max_lap_viscous"]) <= lb * (1 + 1e-3))
    assert lap["quadratic_max_rel_error"] < 1e-8


def test_csgd_lab(tmp_path):
    n = _run("csgd", tmp_path)
    keys = {"E_f_sgd", "E_f_csgd", "control_cost", "value_pde", "value_feynman_kac"}
    assert keys <= n.keys()
    se = n["standard_errors"]
    # three-way agreement: 4 standard errors + 0.005 discretisation allowance (see test_pde_controlled_sgd)
    assert abs(n["value_monte_carlo"] - n["value_pde"]) < 4 * se["value_monte_carlo"] + 5e-3
    assert abs(n["value_feynman_kac"] - n["value_pde"]) < 4 * se["value_feynman_kac"] + 5e-3
    # expected improvement theorem, with a margin of many standard errors
    assert n["E_f_csgd"] <= n["E_f_sgd"] - n["control_cost"]
    assert n["improvement"] > 10 * n["improvement_se"]
    assert n["mass_left_of_barrier"]["csgd"] > 0.8 > 0.2 > n["mass_left_of_barrier"]["sgd"]


def test_implicit_gd_lab(tmp_path):
    n = _run("implicit-gd", tmp_path)
    assert n["explicit_diverged"] == [False, False, True, True, True]
    assert all(np.isfinite(v) for v in n["implicit_final_f"])
    assert n["implicit_final_f"][-1] < 1e-12  # large implicit steps converge fastest
    assert n["descent_min_slack"] >= -1e-12
    assert n["descent_min_slack_seed_form"] < 0  # the 1/tau form is not a theorem for non-convex f
    assert n["prox_vs_hopf_lax_max_diff"] < 1e-6
    g = n["le_sgd"]
    assert g["le_sgd_50_outer_in_wide_basin"] > g["sgd_50_in_wide_basin"] + 0.3
    assert g["exact_le_in_wide_basin"] == 1.0


@pytest.mark.parametrize("name", ["local-entropy", "widening", "csgd", "implicit-gd"])
def test_lab_docstring_states_claim(name):
    doc = _lab(name).__doc__
    assert "Claim" in doc and "seed 000" in doc
