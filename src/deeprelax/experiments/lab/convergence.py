"""Convergence rates: Fokker-Planck spectral gap (Poincaré), W₂ contraction, and the Entropy-SGD inner loop.

Claim (seed 000, "Exponential convergence in Wasserstein for Fokker-Planck in convex case"; seed 004,
"the better the estimate of the Poincaré inequality … the better control over convergence rate"). For
dX = −f'(X) dt + √(2β⁻¹) dW the density ρ_t converges to μ ∝ e^{−βf} at the rate of the spectral gap λ₁
of the generator (1/λ₁ = Poincaré constant of μ):

    ‖ρ_t/μ − 1‖_{L²(μ)} ≤ e^{−λ₁t} ‖ρ₀/μ − 1‖_{L²(μ)};
    f'' ≥ λ  ⇒  λ₁ ≥ λ  and  W₂(ρ_t, μ) ≤ e^{−λt} W₂(ρ₀, μ).

In the Entropy-SGD inner loop the potential is H(y) = f(y) + γ|y − x|²/2, whose convexity is that of f
plus γ, which is why the loop "converges with a relatively small (100) time steps (accurate enough with 25)".

Computation (:mod:`deeprelax.pde.convergence`). (1) λ₁ by a symmetric tridiagonal eigen-solve of the
Scharfetter-Gummel generator; the OU potential f = y²/2 checks it (λ_k = k exactly). (2) λ-convex f = y²/2 +
y⁴/4 (λ = 1), β = 1: the Fokker-Planck solver run from a tilted Gibbs density; the observed decay rates of
‖ρ_t/μ − 1‖_{L²(μ)} (``observed_rate``) and of W₂ by quantile functions (``w2_rate``) — both read through
implicit Euler's factor 1/(1 + dt λ) — against λ₁ and λ. (3) The double well f = (y² − 1)² of the ``kramers``
lab: λ₁ against 2/T, T the exact mean transition time (the ``kramers`` lab's quadrature) and its
Eyring-Kramers value. (4) ``gap_vs_gamma``: λ₁ of H for both potentials against the Bakry-Émery bound inf f''
+ γ and the upper bound β⁻¹/Var(y). (5) The library's ``deeprelax.optim.EntropySGD`` itself, on the double
well with anchor x = 0.5 (β = 4, noise β^{−1/2}, inner_lr 0.05, α = 0.75) and on an 8-dimensional separable
sum of it (anchors −0.9 … 0.9): a parameter of shape (chains, d) with the closure Σ f(y) runs many independent
chains; one step with lr = 1, momentum 0 returns x − (x − μ_L) = μ_L, so L inner steps are run for each L of a
grid (same seed: the curves share their chains). The running mean μ_L is compared with the Gibbs mean ⟨y⟩
(Hopf-Cole quadrature): RMS error and bias, and the bias against the exact expected running mean of the chain
(its Gaussian kernel discretised on a grid; its limit differs from ⟨y⟩ by ULA's O(η) bias). The inner step
0.05 (the authors use 0.1) keeps η'·f'' < 2 wherever the chains go (f'' = 12y² − 4 grows fast); the
temperature β = 4 (the authors' noise 10⁻⁴ means β = 10⁸, an almost cold ρ whose mean is the proximal point)
makes ⟨y⟩ a genuine average over both wells for small γ. (6) 2-D, where cheap (``spectral_gap_2d``): the
sparse 2-D generator, checked on a separable potential (its rates are sums of the 1-D ones), and on the
``barriers`` lab's entropic barrier (β = 10) before and after Hopf-Lax smoothing (t = 0.1): λ₁ against the gap
of the 1-D Fick-Jacobs reduction (diffusion in the x-marginal free energy) and against 2/T_FJ.

Finding. The chain's error contracts per step by ≈ 1 − η'λ₁(γ) (``inner_chain_second_eigenvalue``), so the
number of inner steps needed is set by the gap of the coupled potential, ≈ 1/(η'λ₁(γ)), against the lag
1/(1 − α) = 4 of the running mean. Where γ makes H convex (γ ≥ 4 here) 25 steps leave only ULA's own O(η)
bias, as the seed says; at weak coupling (γ = 0.5: λ₁ ≈ 0.09, 1/(η'λ₁) ≈ 230 steps) the double well is
metastable and neither 25 nor 100 steps are enough.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deeprelax.experiments.lab import LabResult
from deeprelax.experiments.lab import barriers as barriers_lab
from deeprelax.experiments.lab import kramers as kramers_lab
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
from deeprelax.pde.hopf_cole import gibbs_mean_1d
from deeprelax.pde.hopf_lax import hopf_lax_2d
from deeprelax.pde.metastability import (
    entropic_barrier,
    eyring_kramers_1d,
    fick_jacobs_mfpt,
    free_energy_x,
    mfpt_1d,
)

NAME = "convergence"
ORDER = 11
TITLE = "Convergence rates: Fokker-Planck spectral gap (Poincaré), W₂ contraction, Entropy-SGD inner loop L"

LAMBDA = 1.0  # inf f'' of the convex potential
BETA_CONVEX = 1.0
X_CONVEX = np.linspace(-4.0, 4.0, 801)
X_OU = np.linspace(-8.0, 8.0, 1601)
DT_CONVEX, T_CONVEX, TILT = 0.01, 8.0, 3.0
FIT_WINDOW_CONVEX = (3.0, 7.0)

X_DW = np.linspace(-2.2, 2.2, 1101)
BETAS_DW = (2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 15.0)
BETA_DW_FP, DT_DW, T_DW, FIT_WINDOW_DW = 4.0, 0.5, 400.0, (250.0, 400.0)

GAMMAS = tuple(float(g) for g in np.geomspace(0.01, 100.0, 25))
ANCHOR = 0.5

# the Entropy-SGD inner loop
BETA_INNER, INNER_LR, ALPHA = 4.0, 0.05, 0.75
INNER_GAMMAS = (0.5, 2.0, 5.0, 10.0)
L_GRID = (1, 2, 4, 8, 15, 25, 50, 100, 150)
CHAINS_1D, CHAINS_DD, DIM = 2000, 500, 8
ANCHORS_DD = tuple(float(a) for a in np.round(np.linspace(-0.9, 0.9, DIM) / 0.02) * 0.02)  # on Y_CHAIN
Y_CHAIN = np.linspace(-2.2, 2.2, 221)  # h = 0.02 against the kernel width √(2η/β) = 0.16
Y_QUAD = np.linspace(-4.0, 4.0, 3201)
X_2D, Y_2D = np.linspace(-2.0, 2.0, 161), np.linspace(-1.2, 1.2, 97)


def f_convex(y: np.ndarray) -> np.ndarray:
    """λ-convex with λ = 1: f'' = 1 + 3y² ≥ 1."""
    return 0.5 * y**2 + 0.25 * y**4


def f_ou(y: np.ndarray) -> np.ndarray:
    return 0.5 * LAMBDA * y**2


f_dw = kramers_lab.V  # (y² − 1)², the kramers lab's double well
df_dw = kramers_lab.dV


def _coupled(
    f: Callable[[np.ndarray], np.ndarray], gamma: float, x: float
) -> Callable[[np.ndarray], np.ndarray]:
    return lambda y: f(y) + 0.5 * gamma * (y - x) ** 2


# ----------------------------------------------------------------------------------------------------
# compute


def _fokker_planck_decay(x, f, beta, rho0, dt, T, window, every=1):
    """Solve ρ_t = (f'ρ)_x + β⁻¹ρ_xx from ρ0; the χ-distance and W₂ to μ over time, and their fitted rates."""
    fp = FokkerPlanck1D(x, f, beta)
    pi = fp.gibbs()
    t, R = fp.solve(rho0, T, int(round(T / dt)), save_every=every)
    d = chi2_distance(R, pi, fp.h)
    w = np.array([wasserstein2_1d(x, r, pi) for r in R])
    m = (t >= window[0]) & (t <= window[1])
    return dict(
        t=t,
        chi=d,
        w2=w,
        rho=R[:: max(1, len(R) // 6)],
        pi=pi,
        rate_chi=decay_rate(t[m], d[m], implicit_dt=dt),
        rate_w2=decay_rate(t[m], w[m], implicit_dt=dt),
    )


def _entropy_sgd_running_means(
    anchor_sets: list[np.ndarray], gamma: float, chains: list[int], seed: int
) -> list[np.ndarray]:
    """μ_L of the library's EntropySGD inner loop for every L in ``L_GRID``, one array
    (len(L_GRID), chains, d) per anchor set.

    Each anchor set is a parameter of shape (chains, d) and the closure is f(y) = Σ (y² − 1)² over all
    entries of all parameters: independent chains, one per row and coordinate. lr = 1, momentum = 0: the
    outer step x ← x − (x − μ_L) lands on μ_L. A fresh optimizer for every L (the same seed, so the L-curves
    share their first draws while each point is a valid estimate on its own)."""
    import torch

    from deeprelax.optim import EntropySGD

    x0 = [
        torch.tensor(np.broadcast_to(a, (n, a.size)).copy(), dtype=torch.float64)
        for a, n in zip(anchor_sets, chains, strict=True)
    ]
    out: list[list[np.ndarray]] = [[] for _ in anchor_sets]
    for L in L_GRID:
        ys = [torch.nn.Parameter(x.clone()) for x in x0]
        opt = EntropySGD(
            ys,
            lr=1.0,
            momentum=0.0,
            nesterov=False,
            L=L,
            inner_lr=INNER_LR,
            gamma=gamma,
            scoping=0.0,
            noise=BETA_INNER**-0.5,
            alpha=ALPHA,
        )

        def closure(opt: EntropySGD = opt, ys: list = ys) -> torch.Tensor:
            opt.zero_grad()
            loss = sum(((y**2 - 1) ** 2).sum() for y in ys)
            loss.backward()
            return loss

        torch.manual_seed(seed)
        opt.step(closure)
        for o, y in zip(out, ys, strict=True):
            o.append(y.detach().numpy().copy())
    return [np.stack(o) for o in out]


def _inner_errors(mu: np.ndarray, anchors: np.ndarray, gamma: float) -> dict[str, Any]:
    """Error of the simulated μ_L (len(L_GRID), chains, d) against the Gibbs mean, and the exact expected μ_L
    of the (grid) chain, coordinate by coordinate (the potential is separable)."""
    n_chains = mu.shape[1]
    gibbs = np.array([gibbs_mean_1d(f_dw, a, 1.0 / gamma, BETA_INNER, Y_QUAD) for a in anchors])
    err = mu - gibbs[None, None, :]
    rms = np.sqrt((err**2).sum(axis=2).mean(axis=1))  # (E|μ_L − ⟨y⟩|²)^{1/2} over chains, norm in ℝ^d
    bias_vec = err.mean(axis=1)  # (nL, d)
    se_vec = err.std(axis=1, ddof=1) / np.sqrt(n_chains)
    exact_vec, chain_limit = np.empty((len(L_GRID), anchors.size)), np.empty(anchors.size)
    second_eig = []
    for j, a in enumerate(anchors):

        def grad_H(y: np.ndarray, a: float = a) -> np.ndarray:
            return df_dw(y) + gamma * (y - a)

        P = ula_transition_matrix(grad_H, Y_CHAIN, BETA_INNER, INNER_LR)
        _, em = ula_expected_running_mean(P, Y_CHAIN, a, ALPHA, max(L_GRID))
        exact_vec[:, j] = em[list(L_GRID)] - gibbs[j]
        chain_limit[j] = ula_stationary(P) @ Y_CHAIN - gibbs[j]
        if anchors.size == 1:  # the chain's relaxation factor per step (dense eigen-solve: 1-D only)
            second_eig.append(float(np.sort(np.abs(np.linalg.eigvals(P)))[-2]))
    z = (bias_vec - exact_vec) / se_vec
    return dict(
        rms=rms,
        bias=np.linalg.norm(bias_vec, axis=1),
        bias_exact=np.linalg.norm(exact_vec, axis=1),
        bias_se=np.sqrt((se_vec**2).sum(axis=1)),
        max_abs_z=float(np.max(np.abs(z))),
        ula_bias=float(np.linalg.norm(chain_limit)),
        chain_second_eigenvalue=max(second_eig, default=None),
        gibbs_mean=gibbs,
    )


def compute(seed: int = 0) -> dict[str, Any]:
    # (1) OU check and the convex potential
    ou = generator_spectrum(X_OU, f_ou, BETA_CONVEX, k=4)
    cv = generator_spectrum(X_CONVEX, f_convex, BETA_CONVEX, k=3)
    fp = FokkerPlanck1D(X_CONVEX, f_convex, BETA_CONVEX)
    rho0 = fp.gibbs() * np.exp(TILT * X_CONVEX)
    rho0 /= fp.mass(rho0)
    dec = _fokker_planck_decay(
        X_CONVEX, f_convex, BETA_CONVEX, rho0, DT_CONVEX, T_CONVEX, FIT_WINDOW_CONVEX, every=2
    )
    t = dec["t"]
    chi_bound = dec["chi"][0] * (1 + DT_CONVEX * cv.gap) ** (-t / DT_CONVEX)  # discrete Poincaré
    w2_bound = dec["w2"][0] * np.exp(-LAMBDA * t)  # Bakry-Émery W₂ contraction
    convex = dict(
        gap=cv.gap,
        upper=poincare_upper_bound(X_CONVEX, f_convex, BETA_CONVEX),
        decay=dec,
        chi_ratio_max=float(np.max(dec["chi"] / chi_bound)),
        w2_ratio_max=float(np.max(dec["w2"] / w2_bound)),
    )

    # (2) double well: gap vs 2/T
    dw = []
    for b in BETAS_DW:
        s = generator_spectrum(X_DW, f_dw, b, k=3)
        T = mfpt_1d(f_dw, -1.0, 1.0, b)
        dw.append(
            dict(beta=b, gap=s.gap, second=float(s.rates[2]), mfpt=T, ek=eyring_kramers_1d(1.0, 8.0, -4.0, b))
        )
    fpd = FokkerPlanck1D(X_DW, f_dw, BETA_DW_FP)
    rho_left = fpd.gibbs() * (X_DW < 0)
    rho_left /= fpd.mass(rho_left)
    dec_dw = _fokker_planck_decay(X_DW, f_dw, BETA_DW_FP, rho_left, DT_DW, T_DW, FIT_WINDOW_DW, 2)

    # (3) gap vs γ of the coupled potential
    keys = ("convex", "convex_bound", "double_well", "double_well_lower", "double_well_upper")
    gvg: dict[str, list[float]] = {"gamma": list(GAMMAS), **{k: [] for k in keys}}
    for g in GAMMAS:
        Hc = _coupled(f_convex, g, ANCHOR)
        gvg["convex"].append(generator_spectrum(X_CONVEX, Hc, BETA_CONVEX, k=2).gap)
        gvg["convex_bound"].append(LAMBDA + g)
        H = _coupled(f_dw, g, ANCHOR)
        gvg["double_well"].append(generator_spectrum(X_DW, H, BETA_INNER, k=2).gap)
        gvg["double_well_lower"].append(max(0.0, g - 4.0))  # inf f'' = f''(0) = −4
        gvg["double_well_upper"].append(poincare_upper_bound(X_DW, H, BETA_INNER))

    # (4) the Entropy-SGD inner loop, 1-D and d-dimensional separable
    inner: dict[str, dict[float, dict[str, Any]]] = {"1-D": {}, f"{DIM}-D": {}}
    sets = [np.array([ANCHOR]), np.array(ANCHORS_DD)]
    for g in INNER_GAMMAS:
        mu1, mud = _entropy_sgd_running_means(sets, g, [CHAINS_1D, CHAINS_DD], seed)
        inner["1-D"][g] = _inner_errors(mu1, sets[0], g)
        inner[f"{DIM}-D"][g] = _inner_errors(mud, sets[1], g)
        inner["1-D"][g]["gap"] = generator_spectrum(X_DW, _coupled(f_dw, g, ANCHOR), BETA_INNER, k=2).gap
    return dict(
        ou=ou, convex=convex, double_well=dw, dw_decay=dec_dw, gap_vs_gamma=gvg, inner=inner, two_d=_two_d()
    )


def _two_d() -> dict[str, Any]:
    """2-D generator: separable check, and the entropic barrier against its Fick-Jacobs reduction."""
    x, y = X_2D, Y_2D
    sep = generator_spectrum_2d(x, y, lambda X, Y: f_dw(X) + f_convex(Y), 3.0, k=3)
    r1, r2 = generator_spectrum(x, f_dw, 3.0, k=3).rates, generator_spectrum(y, f_convex, 3.0, k=3).rates
    sums = np.sort((r1[:, None] + r2[None, :]).ravel())[:3]
    pot, beta = entropic_barrier(), barriers_lab.BETA_S
    X, Y = np.meshgrid(x, y, indexing="ij")
    Vg = pot.V(np.stack([X, Y], -1))
    out: dict[str, Any] = {
        "separable_rates": sep.tolist(),
        "separable_kronecker_sum": sums.tolist(),
        "beta": beta,
        "t_smoothing": barriers_lab.T_SMOOTH,
    }
    for name, U in (("original", Vg), ("hopf_lax", hopf_lax_2d(Vg, x, y, barriers_lab.T_SMOOTH).value)):
        out[name] = {
            "gap_2d": float(generator_spectrum_2d(x, y, U, beta, k=2)[1]),
            "gap_fick_jacobs_1d": generator_spectrum(x, free_energy_x(U, y, beta), beta, k=2).gap,
            "two_over_T_fick_jacobs": 2.0 / fick_jacobs_mfpt(x, y, U, beta, -1.0, 1.0),
        }
    return out


# ----------------------------------------------------------------------------------------------------
# plot


def plot(res: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(2, 3, figsize=(17, 9.5))
    c = res["convex"]
    dec = c["decay"]
    t = dec["t"]
    ax = axs[0, 0]
    ax.semilogy(t, dec["chi"], "C0", lw=2, label="‖ρ_t/μ − 1‖ in L²(μ)")
    ax.semilogy(t, dec["chi"][0] * np.exp(-c["gap"] * t), "C0:", label=f"∝ exp(−λ₁t), λ₁ = {c['gap']:.3f}")
    ax.semilogy(t, dec["w2"], "C3", lw=2, label="W₂(ρ_t, μ) (quantile functions)")
    ax.semilogy(t, dec["w2"][0] * np.exp(-LAMBDA * t), "C3--", label=f"W₂(ρ₀, μ)·exp(−λt), λ = {LAMBDA:g}")
    ax.set(
        xlabel="t",
        ylabel="distance to equilibrium",
        title=f"λ-convex f = y²/2 + y⁴/4, β = {BETA_CONVEX:g}: rate λ₁ ≥ λ",
    )
    ax.legend(fontsize=8)

    ax = axs[0, 1]
    bb = np.array([d["beta"] for d in res["double_well"]])
    ax.semilogy(bb, [d["gap"] for d in res["double_well"]], "ko-", label="spectral gap λ₁ (eigen-solve)")
    ax.semilogy(
        bb, [2 / d["mfpt"] for d in res["double_well"]], "C0--", lw=2, label="2/T, T exact MFPT (kramers)"
    )
    ax.semilogy(bb, [2 / d["ek"] for d in res["double_well"]], "C3:", lw=2, label="2/T_EK (Eyring-Kramers)")
    dd = res["dw_decay"]
    ax.semilogy(
        [BETA_DW_FP],
        [dd["rate_chi"]],
        "C2s",
        ms=10,
        mfc="none",
        label=f"observed Fokker-Planck decay rate, β = {BETA_DW_FP:g}",
    )
    t2 = res["two_d"]
    ax.text(
        0.03,
        0.03,
        "2-D entropic barrier (β = 10), λ₁ of the 2-D generator vs 1-D Fick-Jacobs gap:\n"
        f"original {t2['original']['gap_2d']:.4f} vs {t2['original']['gap_fick_jacobs_1d']:.4f}; "
        f"Hopf-Lax smoothed {t2['hopf_lax']['gap_2d']:.4f} vs {t2['hopf_lax']['gap_fick_jacobs_1d']:.4f}",
        transform=ax.transAxes,
        fontsize=7,
        va="bottom",
    )
    ax.set(xlabel="β", ylabel="rate", title="double well (y² − 1)²: λ₁ = 2/T (two Kramers rates)")
    ax.legend(fontsize=8)

    ax = axs[0, 2]
    g = res["gap_vs_gamma"]
    gg = np.array(g["gamma"])
    ax.loglog(gg, g["convex"], "C0o-", ms=3, label=f"convex f, β = {BETA_CONVEX:g}: λ₁(γ)")
    ax.loglog(gg, g["convex_bound"], "C0:", label="Bakry-Émery λ + γ")
    ax.loglog(gg, g["double_well"], "C3o-", ms=3, label=f"double well, β = {BETA_INNER:g}: λ₁(γ)")
    lo = np.array(g["double_well_lower"])
    ax.loglog(gg[lo > 0], lo[lo > 0], "C3:", label="Bakry-Émery γ + inf f'' = γ − 4")
    ax.loglog(gg, g["double_well_upper"], "C3--", lw=0.8, label="upper bound β⁻¹/Var(y)")
    for gi in INNER_GAMMAS:
        ax.axvline(gi, color="0.85", lw=0.8, zorder=0)
    ax.set(
        xlabel="coupling γ",
        ylabel="spectral gap of f(y) + γ(y − x)²/2",
        title=f"coupling adds γ to the convexity (anchor x = {ANCHOR})",
    )
    ax.legend(fontsize=7)

    for col, key in enumerate(res["inner"]):
        ax = axs[1, col]
        for i, (gm, r) in enumerate(res["inner"][key].items()):
            Ls = np.array(L_GRID)
            ax.loglog(Ls, r["rms"], "-", color=f"C{i}", lw=2, label=f"γ = {gm:g}: RMS |μ_L − ⟨y⟩|")
            ax.loglog(Ls, np.maximum(r["bias"], 1e-5), "o", color=f"C{i}", ms=4, mfc="none")
            ax.loglog(Ls, np.maximum(r["bias_exact"], 1e-5), ":", color=f"C{i}")
        ax.loglog(Ls, r["bias_se"], color="0.6", ls="--", lw=0.8, label="noise level of the simulated bias")
        ax.plot([], [], "ko", mfc="none", ms=4, label="|E μ_L − ⟨y⟩| (simulated)")
        ax.plot([], [], "k:", label="|E μ_L − ⟨y⟩| (exact for the chain)")
        for L in (25, 100):
            ax.axvline(L, color="0.5", ls="--", lw=1)
            ax.text(L, 1.5, f"L = {L}", rotation=90, fontsize=8, va="top")
        ax.set(
            xlabel="inner steps L",
            ylabel="error of the running mean",
            title=f"EntropySGD inner loop, {key} (inner_lr {INNER_LR}, β = {BETA_INNER:g}, α = {ALPHA})",
            ylim=(1e-4, 2),
        )
        ax.legend(fontsize=7, loc="lower left")

    ax = axs[1, 2]
    for i, key in enumerate(res["inner"]):
        gms = list(res["inner"][key])
        for L, ls in ((25, "-"), (100, "--")):
            k = L_GRID.index(L)
            ax.loglog(
                gms,
                [res["inner"][key][gm]["bias_exact"][k] for gm in gms],
                ls,
                color=f"C{i}",
                label=f"{key}, L = {L}: exact for the chain",
            )
            ax.loglog(
                gms,
                [res["inner"][key][gm]["bias"][k] for gm in gms],
                "o" if L == 25 else "s",
                color=f"C{i}",
                mfc="none",
                ms=5,
                label=f"{key}, L = {L}: simulated",
            )
    for i, key in enumerate(res["inner"]):
        gms = list(res["inner"][key])
        ax.loglog(
            gms,
            [res["inner"][key][gm]["ula_bias"] for gm in gms],
            "^:",
            color=f"C{i}",
            alpha=0.6,
            label=f"{key}: the chain's own limit (L → ∞, ULA bias)",
        )
    key_dd = f"{DIM}-D"
    noise = [float(r["bias_se"][L_GRID.index(100)]) for r in res["inner"][key_dd].values()]
    ax.text(
        0.03,
        0.03,
        f"noise of the {key_dd} simulated bias: {min(noise):.3f} … {max(noise):.3f}",
        transform=ax.transAxes,
        fontsize=7,
    )
    ax.set(xlabel="coupling γ", ylabel="|E μ_L − ⟨y⟩|", title="bias left after 25 and 100 inner steps")
    ax.legend(fontsize=7)
    from matplotlib.ticker import NullFormatter

    for ax in axs.ravel():  # unlabelled minor ticks: labelling them dominates the drawing time on log axes
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    p = Path(out) / "convergence.png"
    fig.savefig(p, dpi=80)
    plt.close(fig)
    return [p]


# ----------------------------------------------------------------------------------------------------
# summarise


def numbers(res: dict[str, Any]) -> dict[str, Any]:
    c, dd = res["convex"], res["dw_decay"]
    inner_at_L: dict[str, dict[str, Any]] = {}
    for key, per in res["inner"].items():
        inner_at_L[key] = {}
        for gm, r in per.items():
            inner_at_L[key][f"gamma={gm:g}"] = {
                f"L={L}": {
                    "rms": float(r["rms"][L_GRID.index(L)]),
                    "bias": float(r["bias"][L_GRID.index(L)]),
                    "bias_exact": float(r["bias_exact"][L_GRID.index(L)]),
                }
                for L in (25, 100)
            }
    return {
        "spectral_gap": {
            "ou": {"lambda": LAMBDA, "rates": [float(v) for v in res["ou"].rates]},
            "convex": {"lambda": LAMBDA, "beta": BETA_CONVEX, "gap": c["gap"], "upper_bound": c["upper"]},
            "double_well": {k: [d[k] for d in res["double_well"]] for k in ("beta", "gap", "mfpt", "ek")}
            | {
                "gap_times_mfpt_over_2": [d["gap"] * d["mfpt"] / 2 for d in res["double_well"]],
                "gap_times_ek_over_2": [d["gap"] * d["ek"] / 2 for d in res["double_well"]],
            },
        },
        "observed_rate": {
            "convex": c["decay"]["rate_chi"],
            "double_well": dd["rate_chi"],
            "double_well_beta": BETA_DW_FP,
            "fit_window_convex": list(FIT_WINDOW_CONVEX),
            "fit_window_double_well": list(FIT_WINDOW_DW),
        },
        "w2_rate": {"convex": c["decay"]["rate_w2"], "double_well": dd["rate_w2"]},
        "chi_over_discrete_poincare_bound_max": c["chi_ratio_max"],
        "w2_over_bakry_emery_bound_max": c["w2_ratio_max"],
        "spectral_gap_2d": res["two_d"],
        "gap_vs_gamma": res["gap_vs_gamma"],
        "inner_error_at_L": inner_at_L,
        "inner_bias_max_abs_z": max(r["max_abs_z"] for per in res["inner"].values() for r in per.values()),
        "inner_ula_bias": {
            key: {f"gamma={gm:g}": r["ula_bias"] for gm, r in per.items()}
            for key, per in res["inner"].items()
        },
        "inner_chain_second_eigenvalue": {
            f"gamma={gm:g}": r["chain_second_eigenvalue"] for gm, r in res["inner"]["1-D"].items()
        },
        "inner_gap": {f"gamma={gm:g}": r["gap"] for gm, r in res["inner"]["1-D"].items()},
        "inner_setting": {
            "beta": BETA_INNER,
            "inner_lr": INNER_LR,
            "alpha": ALPHA,
            "anchor_1d": ANCHOR,
            "anchors_dd": list(ANCHORS_DD),
            "chains_1d": CHAINS_1D,
            "chains_dd": CHAINS_DD,
            "L": list(L_GRID),
        },
    }


def summarise(n: dict[str, Any]) -> str:
    sg = n["spectral_gap"]
    dw = sg["double_well"]
    i10 = dw["beta"].index(10.0)
    e1 = n["inner_error_at_L"]["1-D"]
    g_hi, g_lo = f"gamma={max(INNER_GAMMAS):g}", f"gamma={min(INNER_GAMMAS):g}"
    oc, wc = n["observed_rate"]["convex"], n["w2_rate"]["convex"]
    t2 = n["spectral_gap_2d"]
    b_hi25, b_hi100 = e1[g_hi]["L=25"]["bias_exact"], e1[g_hi]["L=100"]["bias_exact"]
    b_lo25, b_lo100 = e1[g_lo]["L=25"]["bias_exact"], e1[g_lo]["L=100"]["bias_exact"]
    s_hi25, s_hi100 = e1[g_hi]["L=25"]["bias"], e1[g_hi]["L=100"]["bias"]
    return (
        f"OU check: λ₁ = {sg['ou']['rates'][1]:.5f} (exact 1). Convex f = y²/2 + y⁴/4 (λ = 1, β = 1): "
        f"spectral gap λ₁ = {sg['convex']['gap']:.4f} ≥ λ; the Fokker-Planck solution decays at {oc:.4f} "
        f"in L²(μ) and {wc:.4f} in W₂, and W₂(ρ_t, μ)/(e^(−λt)W₂(ρ₀, μ)) ≤ "
        f"{n['w2_over_bakry_emery_bound_max']:.3f}. Double well: λ₁·T/2 = "
        f"{dw['gap_times_mfpt_over_2'][0]:.3f} (β = 2) → {dw['gap_times_mfpt_over_2'][i10]:.5f} (β = 10), "
        f"against Eyring-Kramers {dw['gap_times_ek_over_2'][i10]:.3f}; observed decay at β = 4: "
        f"{n['observed_rate']['double_well']:.5f} vs λ₁ = {dw['gap'][dw['beta'].index(4.0)]:.5f}. "
        f"Coupling: λ₁(f + γ|y − x|²/2) ≥ λ + γ for all γ; the double well's gap rises from "
        f"{n['gap_vs_gamma']['double_well'][0]:.2g} (γ = {GAMMAS[0]:g}) to ≈ γ. EntropySGD inner loop "
        f"(1-D): at γ = {max(INNER_GAMMAS):g} |E μ_L − ⟨y⟩| = {b_hi25:.1e} after 25 steps and {b_hi100:.1e} "
        f"after 100 (exact for the chain; simulated with {CHAINS_1D} chains {s_hi25:.1e}, {s_hi100:.1e}), "
        f"i.e. the chain's own ULA bias "
        f"{n['inner_ula_bias']['1-D'][g_hi]:.1e} (RMS {e1[g_hi]['L=25']['rms']:.2f}, the variance of the "
        f"α = {ALPHA} running mean); at γ = {min(INNER_GAMMAS):g} (gap {n['inner_gap'][g_lo]:.2g}) still "
        f"{b_lo25:.2f} and {b_lo100:.2f}. Simulated bias vs the chain's exact expected running mean: "
        f"largest |z| = {n['inner_bias_max_abs_z']:.2f}. 2-D entropic barrier (β = 10): λ₁ = "
        f"{t2['original']['gap_2d']:.4f} vs the Fick-Jacobs gap {t2['original']['gap_fick_jacobs_1d']:.4f}; "
        f"after Hopf-Lax smoothing {t2['hopf_lax']['gap_2d']:.4f} vs "
        f"{t2['hopf_lax']['gap_fick_jacobs_1d']:.4f}."
    )


def run(out: Path, *, seed: int = 0) -> LabResult:
    res = compute(seed)
    figs = plot(res, Path(out))
    n = numbers(res)
    return LabResult(name=NAME, numbers=n, figures=figs, summary=summarise(n))
