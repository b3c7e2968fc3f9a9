"""Controlled SGD: the optimal feedback from the backward HJB equation beats SGD in expectation.

Claim (seed 000, "Proof of improvement for modified dynamics", Theorem 11 and the figure "initial density,
final density SGD, final density CSGD"; REFERENCE §1). With SGD dX = −f'(X) ds + σ dW and
CSGD dX = (−f'(X) + α) ds + σ dW, α = −u_x from the backward HJB equation
−u_s = −f' u_x − ½u_x² + (σ²/2) u_xx, u(·, T) = V = f, both started at x₀,

    E f(X_csgd(T)) + ½ E ∫₀ᵀ α² ds  =  u(x₀, 0)  =  −σ² log E_sgd[e^{−f(X_T)/σ²}]  ≤  E f(X_sgd(T)),

so E f(X_csgd(T)) ≤ E f(X_sgd(T)) − ½E∫α² (the expected-improvement theorem). The value is computed three
ways: ``value_pde`` = u(x₀, 0) from the HJB equation (Hopf-Cole linearisation, Scharfetter-Gummel adjoint,
implicit Euler); ``E_f_csgd + control_cost`` from Euler-Maruyama paths of CSGD with the feedback (Monte Carlo
of the CSGD cost); ``value_feynman_kac`` = the soft-min over Euler-Maruyama paths of plain SGD. The same
numbers also come from the forward Fokker-Planck densities (``*_fp`` keys).

Setting: f(x) = ½(x² − 1)² + 0.4x (global minimum near −1, a worse local minimum near +1), far-off start
x₀ = 2.5, σ = 0.4, T = 4. SGD slides into the nearby local minimum; CSGD pays a control cost to carry the
mass over the barrier. The Monte-Carlo numbers are for X₀ = x₀ exactly; the figure's densities start from a
narrow Gaussian around x₀ (as in the seed's figure), the ``*_fp`` numbers from a discrete Dirac at x₀.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deeprelax.experiments.lab import LabResult
from deeprelax.pde.controlled_sgd import csgd_densities, simulate_sgd_and_csgd, solve_csgd_value
from deeprelax.pde.fokker_planck import FokkerPlanck1D

NAME = "csgd"
ORDER = 3
TITLE = "Controlled SGD: E f(X_csgd) + ½E∫α² = u(x₀,0) = Feynman-Kac soft-min ≤ E f(X_sgd)"

SIGMA, T, X0 = 0.4, 4.0, 2.5
X = np.linspace(-3.0, 4.0, 701)
N_PDE_STEPS = 400
N_PATHS, N_EM_STEPS = 10000, 400
S0 = 0.1  # width of the figure's initial Gaussian


def f(x: np.ndarray) -> np.ndarray:
    return 0.5 * (x**2 - 1) ** 2 + 0.4 * x


def df(x: np.ndarray) -> np.ndarray:
    return 2 * x * (x**2 - 1) + 0.4


def run(out: Path, *, seed: int = 0) -> LabResult:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    value = solve_csgd_value(f, f, X, SIGMA, T, N_PDE_STEPS)
    u0 = value.value(X0)
    fp = FokkerPlanck1D(X, f, 1.0)  # only for the helpers (grid, delta)
    dens = csgd_densities(f, f, value, fp.delta(X0))
    rho_g = np.exp(-((X - X0) ** 2) / (2 * S0**2))
    rho_g /= fp.mass(rho_g)
    dens_g = csgd_densities(f, f, value, rho_g)
    mc = simulate_sgd_and_csgd(df, f, value, X0, N_PATHS, N_EM_STEPS, np.random.default_rng(seed))
    h = X[1] - X[0]
    left = {
        "sgd": float(h * dens.rho_sgd[-1][X < 0].sum()),
        "csgd": float(h * dens.rho_csgd[-1][X < 0].sum()),
    }
    improvement = mc.E_V_sgd - mc.E_V_csgd - mc.control_cost
    improvement_se = float(np.sqrt(mc.E_V_sgd_se**2 + mc.cost_csgd_se**2))

    fig, axs = plt.subplots(2, 2, figsize=(12, 8.5))
    ax = axs[0, 0]
    xs = X[(X > -2) & (X < 3)]
    ax.plot(xs, f(xs), "k", lw=2, label="f(x) = ½(x²−1)² + 0.4x")
    ax.axvline(X0, color="C0", ls=":", label=f"start x₀ = {X0:g}")
    for k, s in enumerate((0.0, 1.0, 3.0)):
        n = int(round(s / T * N_PDE_STEPS))
        ax.plot(xs, np.interp(xs, X, value.u[n]), color=f"C{k + 1}", ls="--", label=f"value u(x, s = {s:g})")
    ax.set(
        xlabel="x",
        ylabel="value",
        title="objective f and the HJB value u (terminal u(·, T) = f)",
        ylim=(-1, 3),
    )
    ax.legend(fontsize=8)
    ax = axs[0, 1]
    ax.plot(X, dens_g.rho_sgd[0], "k", label=f"initial density N(x₀, {S0:g}²)")
    ax.plot(X, dens_g.rho_sgd[-1], "C0", lw=2, label=f"final density SGD (T = {T:g})")
    ax.plot(X, dens_g.rho_csgd[-1], "C3", lw=2, label="final density CSGD")
    ax.set(xlabel="x", ylabel="density", title="Fokker-Planck densities (seed 000's figure)", xlim=(-2, 3.2))
    ax.legend(fontsize=8)
    ax = axs[1, 0]
    bins = np.linspace(-2, 3, 81)
    ax.hist(mc.x_sgd, bins=bins, density=True, color="C0", alpha=0.35, label="SGD paths X_T (Euler-Maruyama)")
    ax.hist(mc.x_csgd, bins=bins, density=True, color="C3", alpha=0.35, label="CSGD paths X_T")
    ax.plot(X, dens.rho_sgd[-1], "C0", label="SGD Fokker-Planck, δ start")
    ax.plot(X, dens.rho_csgd[-1], "C3", label="CSGD Fokker-Planck, δ start")
    ax.set(
        xlabel="x", ylabel="density", title=f"{N_PATHS} paths from x₀ vs the forward equations", xlim=(-2, 3)
    )
    ax.legend(fontsize=8)
    ax = axs[1, 1]
    rows = [
        ("value u(x₀, 0), HJB PDE", u0, 0.0, "C2"),
        ("value: E f(X_csgd) + ½E∫α², CSGD paths", mc.cost_csgd, mc.cost_csgd_se, "C3"),
        ("value: Feynman-Kac soft-min, SGD paths", mc.value_feynman_kac, mc.value_feynman_kac_se, "C1"),
        ("E f(X_sgd(T)), SGD paths", mc.E_V_sgd, mc.E_V_sgd_se, "C0"),
        ("E f(X_csgd(T)), CSGD paths", mc.E_V_csgd, mc.E_V_csgd_se, "C3"),
        ("½E∫α² (control cost), CSGD paths", mc.control_cost, mc.control_cost_se, "C3"),
    ]
    for k, (_, v, se, c) in enumerate(rows):
        ax.errorbar(v, k, xerr=1.96 * se, fmt="o", color=c, capsize=5, ms=7)
        ax.annotate(f"{v:.4f}", (v, k), textcoords="offset points", xytext=(8, 6), fontsize=8)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.axhspan(-0.5, 2.5, color="C2", alpha=0.08)
    ax.set(
        xlabel="value (95% CI from the Monte-Carlo standard error)",
        title="the value three ways; SGD is worse",
    )
    ax.grid(axis="x", alpha=0.3)
    ax.margins(x=0.12)
    fig.tight_layout()
    path = out / "csgd.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)

    numbers = {
        "E_f_sgd": mc.E_V_sgd,
        "E_f_csgd": mc.E_V_csgd,
        "control_cost": mc.control_cost,
        "value_pde": u0,
        "value_feynman_kac": mc.value_feynman_kac,
        "value_monte_carlo": mc.cost_csgd,
        "standard_errors": {
            "E_f_sgd": mc.E_V_sgd_se,
            "E_f_csgd": mc.E_V_csgd_se,
            "control_cost": mc.control_cost_se,
            "value_monte_carlo": mc.cost_csgd_se,
            "value_feynman_kac": mc.value_feynman_kac_se,
        },
        "improvement": improvement,
        "improvement_se": improvement_se,
        "E_f_sgd_fp": dens.E_V_sgd,
        "E_f_csgd_fp": dens.E_V_csgd,
        "control_cost_fp": dens.control_cost,
        "mass_left_of_barrier": left,
        "setting": {
            "sigma": SIGMA,
            "T": T,
            "x0": X0,
            "n_paths": N_PATHS,
            "em_steps": N_EM_STEPS,
            "pde_steps": N_PDE_STEPS,
            "h": float(h),
        },
    }
    summary = (
        f"From x₀ = {X0:g} (σ = {SIGMA:g}, T = {T:g}): value u(x₀,0) = {u0:.4f} (HJB), "
        f"{mc.cost_csgd:.4f} ± {mc.cost_csgd_se:.4f} (MC of the CSGD cost = E f(X_csgd) {mc.E_V_csgd:.4f} "
        f"+ ½E∫α² {mc.control_cost:.4f}), {mc.value_feynman_kac:.4f} ± {mc.value_feynman_kac_se:.4f} "
        f"(Feynman-Kac over SGD paths). E f(X_sgd) = {mc.E_V_sgd:.4f}: the improvement "
        f"E f(X_sgd) − E f(X_csgd) − ½E∫α² = {improvement:.3f} ± {improvement_se:.3f} ≥ 0. Mass past the "
        f"barrier (x < 0) at T: SGD {left['sgd']:.2f}, CSGD {left['csgd']:.2f}."
    )
    return LabResult(name=NAME, numbers=numbers, figures=[path], summary=summary)
