"""Kramers: metastable transition times of the 1-D double well, exact vs Eyring-Kramers vs simulation.

Claim (seed 000, "Metastability in one dimension"; REFERENCE §1). For dX = −V'(X) dt + √(2β⁻¹) dW with
V(x) = (x² − 1)², the mean time to go from the minimum −1 to the other minimum +1 is exponentially long in β,

    T(β) = β ∫_{−1}^{1} e^{βV(y)} ∫_{−∞}^{y} e^{−βV(z)} dz dy          (exact),
    T(β) ≈ 2π / √(V''(−1) |V''(0)|) · e^{β(V(0) − V(−1))} = (2π/√32) e^{β}     (Eyring-Kramers),

and the ratio exact/Eyring-Kramers tends to 1 (as 1 + O(1/β)). Simulation, Euler-Maruyama with dt = 0.01:

* direct (β = 2, 3): many paths from −1 until they pass +1, the mean with a 95 % confidence interval; paths
  not arrived by the time limit are handled by treating the exit time as exponential (the law of metastable
  exits, checked in the third panel): censored maximum-likelihood mean, chi-square interval;
* rare events (β = 4, 6, 10): forward flux sampling, T = 1/(Φ·Π P(λ_{i+1} | λ_i)) with the flux Φ out of
  A = {x ≤ −1} through λ₀ = −0.8 and the conditional probabilities of reaching the next interface before
  returning to A (interfaces at equal steps of V, about one per unit of βV); no approximation for a Markov
  chain, so only sampling error remains: 16 independent runs, geometric mean and Student-t interval of log T.

Every simulated β must have a 95 % interval that contains the exact MFPT and lies within ±10 % of it. The
scheme's own bias (``euler_bias``: the MFPT of the dt = 0.01 Euler chain, computed exactly from its
transition kernel on a grid, over the exact T) is about −1 %.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np

from deeprelax.experiments.lab import LabResult
from deeprelax.pde.metastability import (
    ExitTimeEstimate,
    ForwardFluxEstimate,
    euler_chain_mfpt_1d,
    eyring_kramers_1d,
    forward_flux_mfpt,
    mean_exit_time,
    mean_exit_time_replicas,
    mfpt_1d,
    simulate_exit_times,
)

NAME = "kramers"
ORDER = 5
TITLE = "Metastability in 1-D: exact MFPT vs Eyring-Kramers vs simulated exit times, V = (x²−1)²"

BETAS = (2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0)
# β -> (paths, time limit); dt = 0.01 throughout
SIMULATE = {2.0: (2000, 80.0), 3.0: (2000, 200.0)}
FFS_BETAS = (4.0, 6.0, 10.0)
FFS_REPLICAS, FFS_TRIALS, FFS_FLUX_PATHS, FFS_FLUX_STEPS, LAMBDA_0 = 16, 3000, 50, 3000, -0.8
DT = 0.01


def V(x: np.ndarray) -> np.ndarray:
    return (x**2 - 1) ** 2


def dV(x: np.ndarray) -> np.ndarray:
    return 4 * x * (x**2 - 1)


def interfaces(beta: float) -> np.ndarray:
    """(λ_A, λ₀, …, λ_n) = (−1, −0.8, …, 0, +1): between λ₀ and the saddle at equal steps of V, about one per
    unit of βV (so that each conditional probability is of order e⁻¹), then the target +1."""
    v0 = float(V(np.array(LAMBDA_0)))
    m = int(np.ceil(beta * (1.0 - v0)))
    v = v0 + (1.0 - v0) * np.arange(m + 1) / m
    lam = -np.sqrt(1.0 - np.sqrt(np.minimum(v, 1.0)))
    return np.concatenate([[-1.0], lam, [1.0]])


def forward_flux(beta: float, rng: np.random.Generator) -> tuple[ExitTimeEstimate, list[ForwardFluxEstimate]]:
    runs = forward_flux_mfpt(
        lambda x: dV(x),
        -np.ones(FFS_FLUX_PATHS),
        lambda x: x[:, 0],
        interfaces(beta),
        beta=beta,
        dt=DT,
        flux_steps=FFS_FLUX_STEPS,
        trials=FFS_TRIALS,
        rng=rng,
        replicas=FFS_REPLICAS,
    )
    return mean_exit_time_replicas([r.mfpt for r in runs]), runs


def run(out: Path, *, seed: int = 0) -> LabResult:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    rng = np.random.default_rng(seed)
    exact = [mfpt_1d(V, -1.0, 1.0, b) for b in BETAS]
    ek = [eyring_kramers_1d(1.0, 8.0, -4.0, b) for b in BETAS]
    ratio = [e / k for e, k in zip(exact, ek, strict=True)]

    sim_mean: list[float | None] = []
    ci_low: list[float | None] = []
    ci_high: list[float | None] = []
    n_exited: list[int | None] = []
    samples = {}
    for b in BETAS:
        if b not in SIMULATE:
            sim_mean.append(None)
            ci_low.append(None)
            ci_high.append(None)
            n_exited.append(None)
            continue
        n, t_max = SIMULATE[b]
        tau = simulate_exit_times(
            dV,
            -np.ones(n),
            lambda x: x[:, 0] >= 1.0,
            beta=b,
            dt=DT,
            max_steps=int(round(t_max / DT)),
            rng=rng,
        )
        est = mean_exit_time(tau, censor_time=t_max)
        samples[b] = tau
        sim_mean.append(est.mean)
        ci_low.append(est.ci_low)
        ci_high.append(est.ci_high)
        n_exited.append(est.n_exited)
    ffs = {b: forward_flux(b, rng) for b in FFS_BETAS}
    ffs_mean = [ffs[b][0].mean if b in ffs else None for b in BETAS]
    ffs_lo = [ffs[b][0].ci_low if b in ffs else None for b in BETAS]
    ffs_hi = [ffs[b][0].ci_high if b in ffs else None for b in BETAS]

    # z of log T from the replicas' spread (the interval is exp(mean ± t·s/√R))
    def _z(b: float, e: float) -> float:
        s = np.std(np.log([r.mfpt for r in ffs[b][1]]), ddof=1) / np.sqrt(FFS_REPLICAS)
        return float(np.log(ffs[b][0].mean / e) / s)

    ffs_z = [_z(b, e) if b in ffs else None for b, e in zip(BETAS, exact, strict=True)]
    euler_bias = {
        f"{b:g}": euler_chain_mfpt_1d(dV, -1.0, 1.0, b, DT, left=-2.2) / e - 1
        for b, e in zip(BETAS, exact, strict=True)
        if b in SIMULATE or b in ffs
    }
    # cast(list[float], ...): the None entries of ci_low/ci_high (ffs_lo/ffs_hi) coincide with lo's / m's
    intervals = [
        (e, lo, hi)
        for e, lo, hi in zip(exact, ci_low, cast(list[float], ci_high), strict=True)
        if lo is not None
    ]
    intervals += [
        (e, lo, hi)
        for e, lo, hi in zip(exact, ffs_lo, cast(list[float], ffs_hi), strict=True)
        if lo is not None
    ]
    all_in_ci = all(lo <= e <= hi for e, lo, hi in intervals)
    all_within_10pct = all(0.9 * e <= lo and hi <= 1.1 * e for e, lo, hi in intervals)
    in_ci = [
        bool(lo <= e <= hi)
        for e, lo, hi in zip(exact, ci_low, cast(list[float], ci_high), strict=True)
        if lo is not None
    ]
    # standardized deviation of the simulated mean from the exact MFPT (SE read off the 95 % interval)
    z = [
        None if m is None else float((m - e) / ((hi - lo) / (2 * 1.96)))
        for m, e, lo, hi in zip(
            sim_mean, exact, cast(list[float], ci_low), cast(list[float], ci_high), strict=True
        )
    ]

    fig, axs = plt.subplots(1, 4, figsize=(20, 4.4))
    ax = axs[0]
    bb = np.array(BETAS)
    bl = np.linspace(1.5, 11.0, 39)
    ax.semilogy(bl, [mfpt_1d(V, -1.0, 1.0, b) for b in bl], "k-", lw=2, label="exact MFPT (quadrature)")
    ax.semilogy(
        bl,
        [eyring_kramers_1d(1.0, 8.0, -4.0, b) for b in bl],
        "C3--",
        lw=1.5,
        label="Eyring-Kramers (2π/√32) exp(β)",
    )
    sb = np.array([b for b in BETAS if b in SIMULATE])
    sm = np.array([m for m in sim_mean if m is not None])
    lo = np.array([v for v in ci_low if v is not None])
    hi = np.array([v for v in ci_high if v is not None])
    ax.errorbar(
        sb,
        sm,
        yerr=[sm - lo, hi - sm],
        fmt="o",
        color="C0",
        capsize=4,
        label="simulated mean, 95% CI (Euler-Maruyama)",
    )
    fb = np.array(FFS_BETAS)
    fm = np.array([ffs[b][0].mean for b in FFS_BETAS])
    flo = np.array([ffs[b][0].ci_low for b in FFS_BETAS])
    fhi = np.array([ffs[b][0].ci_high for b in FFS_BETAS])
    ax.errorbar(
        fb + 0.12,
        fm,
        yerr=[fm - flo, fhi - fm],
        fmt="s",
        color="C2",
        capsize=4,
        mfc="none",
        label=f"forward flux sampling, 95% CI ({FFS_REPLICAS} runs)",
    )
    ax.set(
        xlabel="inverse temperature β",
        ylabel="mean time from −1 to +1",
        title="transition time grows like exp(βΔV), ΔV = 1",
    )
    ax.legend(fontsize=8)
    ax = axs[1]
    ax.plot(bb, ratio, "ko-", label="exact / Eyring-Kramers")
    c = float(np.polyfit(1 / bb[3:], np.array(ratio[3:]) - 1, 1)[0])
    bf = np.linspace(bb[0], bb[-1], 200)
    ax.plot(bf, 1 + c / bf, "C3:", label=f"1 + {c:.2f}/β (fit)")
    ax.axhline(1, color="0.5", lw=0.8)
    ax.set(xlabel="β", ylabel="ratio", title="Eyring-Kramers is asymptotically exact")
    ax.legend(fontsize=8)
    ax = axs[2]
    b4 = 3.0
    t4 = np.sort(samples[b4])
    fin = np.isfinite(t4)
    surv = 1 - np.arange(1, t4.size + 1) / t4.size
    ax.semilogy(t4[fin], surv[fin], "C0", label=f"simulated P(τ > t), β = {b4:g}")
    T4 = exact[BETAS.index(b4)]
    tt = np.linspace(0, SIMULATE[b4][1], 100)
    ax.semilogy(tt, np.exp(-tt / T4), "k--", label=f"exp(−t / T_exact), T_exact = {T4:.1f}")
    ax.set(
        xlabel="exit time t",
        ylabel="survival probability",
        title="exit times are ≈ exponential",
        ylim=(5e-3, 1.2),
    )
    ax.legend(fontsize=8)
    ax = axs[3]
    ex = dict(zip(BETAS, exact, strict=True))
    for bs, means, los, his, fmt, col, lab in (
        (sb, sm, lo, hi, "o", "C0", "direct simulation"),
        (fb, fm, flo, fhi, "s", "C2", "forward flux sampling"),
    ):
        e = np.array([ex[b] for b in bs])
        ax.errorbar(
            bs,
            means / e,
            yerr=[(means - los) / e, (his - means) / e],
            fmt=fmt,
            color=col,
            capsize=4,
            mfc="none",
            label=f"{lab} / exact, 95% CI",
        )
    eb = sorted(euler_bias, key=float)
    ax.plot(
        [float(b) for b in eb],
        [1 + euler_bias[b] for b in eb],
        "k:",
        label=f"Euler chain (dt = {DT:g}) / exact",
    )
    ax.axhspan(0.9, 1.1, color="0.9", zorder=0, label="±10 %")
    ax.axhline(1, color="0.5", lw=0.8)
    ax.set(
        xlabel="β",
        ylabel="simulated MFPT / exact",
        ylim=(0.8, 1.2),
        title="simulated / exact MFPT, 95 % intervals and the ±10 % band",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig_path = out / "kramers.png"
    fig.savefig(fig_path, dpi=100)
    plt.close(fig)

    numbers = {
        "beta": list(BETAS),
        "exact_mfpt": exact,
        "eyring_kramers": ek,
        "ratio": ratio,
        "simulated_mean": sim_mean,
        "simulated_ci_low": ci_low,
        "simulated_ci_high": ci_high,
        "simulated_n_exited": n_exited,
        "simulated_n_paths": [SIMULATE[b][0] if b in SIMULATE else None for b in BETAS],
        "dt": DT,
        "exact_in_ci": in_ci,
        "simulated_z": z,
        "ratio_fit_c": c,
        "ffs_beta": list(FFS_BETAS),
        "ffs_mean": ffs_mean,
        "ffs_ci_low": ffs_lo,
        "ffs_ci_high": ffs_hi,
        "ffs_z": ffs_z,
        "ffs_interfaces": {f"{b:g}": interfaces(b).tolist() for b in FFS_BETAS},
        "ffs_probabilities_first_run": {f"{b:g}": ffs[b][1][0].probabilities for b in FFS_BETAS},
        "ffs_setting": {
            "replicas": FFS_REPLICAS,
            "trials_per_interface": FFS_TRIALS,
            "flux_paths": FFS_FLUX_PATHS,
            "flux_steps": FFS_FLUX_STEPS,
            "dt": DT,
        },
        "euler_bias": euler_bias,
        "all_exact_in_ci": all_in_ci,
        "all_ci_within_10pct": all_within_10pct,
    }
    ffs_txt = "; ".join(
        f"β={b:g}: {ffs[b][0].mean:.4g} [{ffs[b][0].ci_low:.4g}, {ffs[b][0].ci_high:.4g}] "
        f"(exact {exact[BETAS.index(b)]:.4g})"
        for b in FFS_BETAS
    )
    rows = zip(BETAS, exact, ek, ratio, sim_mean, ci_low, ci_high, strict=True)
    parts, sims = [], []
    for b, e, k, r, m, lo_, hi_ in rows:
        if b in (4.0, 6.0, 10.0, 50.0):
            parts.append(f"β={b:g}: exact {e:.4g}, EK {k:.4g}, ratio {r:.3f}")
        if m is not None:
            sims.append(f"β={b:g}: {m:.4g} [{lo_:.4g}, {hi_:.4g}]")
    summary = (
        "; ".join(parts)
        + f". Ratio → 1 like 1 + {c:.2f}/β. Simulated means (95% CI): "
        + "; ".join(sims)
        + f". Forward flux sampling: {ffs_txt}. Every interval contains the exact "
        "MFPT: "
        f"{'yes' if all_in_ci else 'no'}; every interval within ±10 % of it: "
        f"{'yes' if all_within_10pct else 'no'} (Euler bias of dt = {DT:g}: "
        f"{euler_bias[f'{FFS_BETAS[-1]:g}']:+.1%} at β = {FFS_BETAS[-1]:g})."
    )
    return LabResult(name=NAME, numbers=numbers, figures=[fig_path], summary=summary)
