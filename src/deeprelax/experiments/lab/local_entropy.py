"""Local entropy is the viscous Hamilton-Jacobi regularisation of f, and it favours wide valleys.

Claim (seed 000, "PDE interpretation of local entropy", "Hopf-Cole transformation"; REFERENCE §1).
The local entropy f_t(x) = −β⁻¹ log (G_{t/β} ∗ e^{−βf})(x), computed by log-sum-exp quadrature,

1. solves u_t = −½|u_x|² + (β⁻¹/2) u_xx. The quadrature solution is a finite sum of heat kernels under
   Hopf-Cole, hence an exact solution for the discretised datum, and its derivatives are moments of the
   discrete Gibbs weights, u_x = ⟨x − y⟩/t, u_xx = 1/t − βVar(y)/t², u_t = 1/(2βt) − ⟨(x − y)²⟩/(2t²):
   with them the residual is at round-off (``pde_residual``, relative to the size of the terms
   ``pde_residual_relative``). A second, independent check differentiates the computed values by central
   differences of step d = 5·10⁻⁴ in x and t (``pde_residual_fd``: O(d²), as the steps d = 2, 1, 0.5 (×10⁻³)
   show for the steepest case, ``pde_residual_steps``), and the closed-form derivatives agree with those
   differences to O(d²) (``closed_form_vs_fd``);
2. has one gradient with three expressions, (x − ⟨y⟩)/t = ⟨f'(y)⟩ = d f_t/dx (finite difference), where
   ⟨·⟩ is the mean under ρ(y; x) ∝ exp(−βf(y) − β(x − y)²/(2t)) (``grad_max_disagreement``: the largest
   difference between the three over x, t and β);
3. tends to the Hopf-Lax (Moreau envelope) solution min_y f(y) + (x − y)²/(2t) of u_t = −½|u_x|² as
   β → ∞, at the rate O(1/β) (``viscous_to_hopf_lax``).

The test function has a narrow deep well at x = −1 and a wide, shallower one at x = +1: as t grows, the
minimum of f_t (β = 5) jumps to the wide well (the reason Entropy-SGD prefers wide minima); the Hopf-Lax
solution (β = ∞) keeps min f_t = min f, so the preference is an entropic (viscous) effect.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deeprelax.experiments.lab import LabResult
from deeprelax.pde.hopf_cole import local_entropy_1d, local_entropy_derivatives_1d
from deeprelax.pde.hopf_lax import hopf_lax_1d

NAME = "local-entropy"
ORDER = 1
TITLE = "Local entropy = viscous HJ solution (Hopf-Cole); three gradient forms agree; β → ∞ gives Hopf-Lax"

Y = np.linspace(
    -5.5, 5.5, 4401
)  # quadrature grid, h = 2.5e-3, wide enough that rho(.; x) never feels its end
X = np.linspace(-2.0, 2.0, 241)
X_CHECK = np.linspace(-2.0, 2.0, 81)
TIMES = (0.05, 0.2, 0.5, 1.0)
BETAS = (2.0, 20.0, 100.0)
BETA_SWEEP = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
T_SWEEP = 0.2
BETA_FIG = 5.0
FD_STEP = 5e-4


def f(x: np.ndarray) -> np.ndarray:
    """Narrow deep well at -1, wide well at +1, a weak confinement and small ripples."""
    return (
        0.05 * x**2
        - 1.3 * np.exp(-((x + 1) ** 2) / (2 * 0.1**2))
        - np.exp(-((x - 1) ** 2) / (2 * 0.5**2))
        + 0.05 * np.sin(10 * x)
    )


def df(x: np.ndarray) -> np.ndarray:
    return (
        0.1 * x
        + 1.3 * (x + 1) / 0.1**2 * np.exp(-((x + 1) ** 2) / (2 * 0.1**2))
        + (x - 1) / 0.5**2 * np.exp(-((x - 1) ** 2) / (2 * 0.5**2))
        + 0.5 * np.cos(10 * x)
    )


def fd_derivatives(t: float, beta: float, x: np.ndarray, d: float = FD_STEP) -> tuple[np.ndarray, ...]:
    """(u_t, u_x, u_xx) of the quadrature solution by central differences of step d."""
    u = {
        (i, j): local_entropy_1d(f, x + i * d, t + j * d, beta, Y).value
        for i, j in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]
    }
    ut = (u[0, 1] - u[0, -1]) / (2 * d)
    ux = (u[1, 0] - u[-1, 0]) / (2 * d)
    uxx = (u[1, 0] - 2 * u[0, 0] + u[-1, 0]) / d**2
    return ut, ux, uxx


def pde_residual(t: float, beta: float, x: np.ndarray, d: float = FD_STEP) -> float:
    """max_x |u_t + u_x^2/2 - u_xx/(2 beta)| of the quadrature solution, central differences of step d."""
    ut, ux, uxx = fd_derivatives(t, beta, x, d)
    return float(np.max(np.abs(ut + 0.5 * ux**2 - uxx / (2 * beta))))


def closed_form_residual(t: float, beta: float, x: np.ndarray) -> tuple[float, float, float]:
    """(max_x |residual|, the same relative to max(|u_t| + ½u_x² + |u_xx|/(2β)), max difference between the
    closed-form derivatives and their central differences)."""
    d = local_entropy_derivatives_1d(f, x, t, beta, Y)
    scale = float(np.max(np.abs(d.u_t) + 0.5 * d.u_x**2 + np.abs(d.u_xx) / (2 * beta)))
    res = float(np.max(np.abs(d.residual)))
    fd = fd_derivatives(t, beta, x)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip((d.u_t, d.u_x, d.u_xx), fd, strict=True))
    return res, res / scale, diff


def run(out: Path, *, seed: int = 0) -> LabResult:  # noqa: ARG001 (deterministic lab)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    # 1. PDE residual, several (t, beta)
    xr = X_CHECK
    cases = [(t, b) for t in (0.05, 0.5) for b in (2.0, 20.0)]
    residuals = {f"t={t:g},beta={b:g}": pde_residual(t, b, xr) for t, b in cases}
    res_max = max(residuals.values())
    closed = {f"t={t:g},beta={b:g}": closed_form_residual(t, b, xr) for t, b in cases}
    cf_max = max(v[0] for v in closed.values())
    cf_rel = max(v[1] for v in closed.values())
    cf_vs_fd = max(v[2] for v in closed.values())
    steps = [4 * FD_STEP, 2 * FD_STEP, FD_STEP]  # O(d^2): halving d divides the residual by ~4
    res_steps = [pde_residual(0.05, 20.0, xr, d) for d in steps]
    ut_scale = float(np.max(np.abs(local_entropy_1d(f, xr, 0.05, 20.0, Y).value - f(xr)))) / 0.05

    # 2. the three gradient forms
    disagreement = 0.0
    worst = ""
    for t in TIMES:
        for b in BETAS:
            r = local_entropy_1d(f, X_CHECK, t, b, Y, grad_f=df)
            if r.grad_avg is None:  # set whenever grad_f is given
                raise RuntimeError("local_entropy_1d returned no grad_avg")
            up = local_entropy_1d(f, X_CHECK + 1e-4, t, b, Y).value
            fd = (up - local_entropy_1d(f, X_CHECK - 1e-4, t, b, Y).value) / 2e-4
            dis = float(max(np.max(np.abs(r.grad - r.grad_avg)), np.max(np.abs(r.grad - fd))))
            if dis > disagreement:
                disagreement, worst = dis, f"t={t:g}, beta={b:g}"
    grad_scale = float(np.max(np.abs(df(X_CHECK))))

    # 3. beta -> infinity
    hl = hopf_lax_1d(f, X, T_SWEEP, Y)
    diffs = [
        float(np.max(np.abs(local_entropy_1d(f, X, T_SWEEP, b, Y).value - hl.value))) for b in BETA_SWEEP
    ]
    slope = float(np.polyfit(np.log(BETA_SWEEP[2:]), np.log(diffs[2:]), 1)[0])

    # minimiser of f_t moves from the narrow to the wide well
    argmins = {f"{t:g}": float(X[np.argmin(local_entropy_1d(f, X, t, BETA_FIG, Y).value)]) for t in TIMES}

    fig, axs = plt.subplots(2, 2, figsize=(12, 8.5))
    ax = axs[0, 0]
    ax.plot(X, f(X), "k", lw=2, label="f (t = 0)")
    for k, t in enumerate(TIMES):
        u = local_entropy_1d(f, X, t, BETA_FIG, Y).value
        ax.plot(X, u, color=f"C{k}", label=f"f_t, t = {t:g}")
        i = np.argmin(u)
        ax.plot(X[i], u[i], "v", color=f"C{k}", ms=8)
    ax.set(
        xlabel="x",
        ylabel="value",
        title=f"viscous smoothing f_t (β = {BETA_FIG:g}); ▼ = minimiser of f_t",
    )
    ax.legend(fontsize=8)
    ax = axs[0, 1]
    ax.plot(X, f(X), color="0.6", lw=1, label="f")
    for k, b in enumerate((1.0, 5.0, 50.0)):
        ax.plot(X, local_entropy_1d(f, X, T_SWEEP, b, Y).value, color=f"C{k}", label=f"viscous, β = {b:g}")
    ax.plot(X, hl.value, "k--", lw=2, label="Hopf-Lax (β = ∞)")
    ax.set(xlabel="x", ylabel="value", title=f"t = {T_SWEEP:g}: viscous solutions → Hopf-Lax as β → ∞")
    ax.legend(fontsize=8)
    ax = axs[1, 0]
    r = local_entropy_1d(f, X, T_SWEEP, BETA_FIG, Y, grad_f=df)
    fd = (
        local_entropy_1d(f, X + 1e-4, T_SWEEP, BETA_FIG, Y).value
        - local_entropy_1d(f, X - 1e-4, T_SWEEP, BETA_FIG, Y).value
    ) / 2e-4
    ax.plot(X, df(X), color="0.75", lw=1, label="f'(x)")
    ax.plot(X, r.grad, "C0", lw=3, alpha=0.6, label="(x − ⟨y⟩)/t")
    ax.plot(X, r.grad_avg, "C1--", lw=2, label="⟨f'(y)⟩")
    ax.plot(X[::6], fd[::6], "k.", label="finite difference of f_t")
    ax.set(
        xlabel="x",
        ylabel="gradient",
        title=f"∇f_t three ways (t = {T_SWEEP:g}, β = {BETA_FIG:g}); largest gap, all t, β: "
        f"{disagreement:.1e}",
        ylim=(-4, 4),
    )
    ax.legend(fontsize=8)
    ax = axs[1, 1]
    ax.loglog(BETA_SWEEP, diffs, "ko-", label="max over x of |f_t (viscous, β) − f_t (Hopf-Lax)|")
    bb = np.array(BETA_SWEEP)
    ax.loglog(bb, diffs[-1] * bb[-1] / bb, "C3:", label="∝ 1/β")
    ax.set(xlabel="β", ylabel="sup difference", title=f"β → ∞ (t = {T_SWEEP:g}): log-log slope {slope:.2f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "local_entropy.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)

    numbers = {
        "pde_residual": cf_max,
        "pde_residual_relative": cf_rel,
        "pde_residual_closed_form_by_case": {k: v[0] for k, v in closed.items()},
        "closed_form_vs_fd": cf_vs_fd,
        "pde_residual_fd": res_max,
        "pde_residual_by_case": residuals,
        "pde_residual_fd_step": FD_STEP,
        "pde_residual_steps": {"t": 0.05, "beta": 20.0, "step": steps, "residual": res_steps},
        "u_t_scale": ut_scale,
        "grad_max_disagreement": disagreement,
        "grad_worst_case": worst,
        "grad_scale": grad_scale,
        "viscous_to_hopf_lax": {
            "t": T_SWEEP,
            "beta": list(BETA_SWEEP),
            "max_abs_diff": diffs,
            "slope": slope,
        },
        "argmin_f_t": argmins,
    }
    summary = (
        f"Quadrature f_t solves the viscous HJ equation: residual {cf_max:.1e} ({cf_rel:.1e} relative) "
        f"with the closed-form (Gibbs-moment) derivatives, which agree with central differences to "
        f"{cf_vs_fd:.1e}; FD residual {res_max:.1e} at step {FD_STEP:g} "
        f"(|u_t| up to ~{ut_scale:.1f}); steepest case {res_steps[0]:.1e} → {res_steps[1]:.1e} → "
        f"{res_steps[2]:.1e} as the step halves (O(d²)). The gradient forms (x−⟨y⟩)/t, ⟨f'(y)⟩ and "
        f"d f_t/dx agree to "
        f"{disagreement:.1e} (|f'| up to {grad_scale:.0f}). β → ∞: sup|f_t^β − Hopf-Lax| from {diffs[0]:.3f} "
        f"(β=1) to {diffs[-1]:.1e} (β=1000), slope {slope:.2f} (O(1/β)). At β={BETA_FIG:g} the minimiser "
        f"of f_t jumps from the narrow well ({argmins['0.2']:.2f} at t=0.2) to the wide well "
        f"({argmins['0.5']:.2f} at t=0.5)."
    )
    return LabResult(name=NAME, numbers=numbers, figures=[path], summary=summary)
