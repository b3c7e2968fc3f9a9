"""Kramers: metastable transition times of the 1-D double well, exact vs Eyring-Kramers vs simulation.

Claim (seed 000, "Metastability in one dimension"; REFERENCE §1). For dX = −V'(X) dt + √(2β⁻¹) dW with
V(x) = (x² − 1)², the mean time to go from the minimum −1 to the other minimum +1 is exponentially long in β,

    T(β) = β ∫_{−1}^{1} e^{βV(y)} ∫_{−∞}^{y} e^{−βV(z)} dz dy          (exact),
    T(β) ≈ 2π / √(V''(−1) |V''(0)|) · e^{β(V(0) − V(−1))} = (2π/√32) e^{β}     (Eyring-Kramers),

and the ratio exact/Eyring-Kramers tends to 1 (as 1 + O(1/β)). Euler-Maruyama paths (dt = 0.01) give the
simulated mean with a 95 % confidence interval; where a path has not arrived by the time limit, the exit
time is treated as exponential (the law of metastable exits, checked in the third panel) and the mean is the
censored maximum-likelihood estimate with its chi-square interval. β = 10 is only simulated up to a fixed
time budget, so its interval is wide.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deeprelax.experiments.lab import LabResult
from deeprelax.pde.metastability import eyring_kramers_1d, mean_exit_time, mfpt_1d, simulate_exit_times

NAME = "kramers"
ORDER = 5
TITLE = "Metastability in 1-D: exact MFPT vs Eyring-Kramers vs simulated exit times, V = (x²−1)²"

BETAS = (2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0)
# β -> (paths, time limit); dt = 0.01 throughout
SIMULATE = {2.0: (400, 60.0), 4.0: (400, 250.0), 6.0: (500, 500.0), 10.0: (800, 500.0)}
DT = 0.01


def V(x: np.ndarray) -> np.ndarray:
    return (x**2 - 1) ** 2


def dV(x: np.ndarray) -> np.ndarray:
    return 4 * x * (x**2 - 1)


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
            sim_mean.append(None), ci_low.append(None), ci_high.append(None), n_exited.append(None)
            continue
        n, t_max = SIMULATE[b]
        tau = simulate_exit_times(dV, -np.ones(n), lambda x: x[:, 0] >= 1.0, beta=b, dt=DT,
                                  max_steps=int(round(t_max / DT)), rng=rng)
        est = mean_exit_time(tau, censor_time=t_max)
        samples[b] = tau
        sim_mean.append(est.mean), ci_low.append(est.ci_low), ci_high.append(est.ci_high)
        n_exited.append(est.n_exited)
    in_ci = [bool(lo <= e <= hi) for e, lo, hi in zip(exact, ci_low, ci_high, strict=True) if lo is not None]
    # standardized deviation of the simulated mean from the exact MFPT (SE read off the 95 % interval)
    z = [None if m is None else float((m - e) / ((hi - lo) / (2 * 1.96)))
         for m, e, lo, hi in zip(sim_mean, exact, ci_low, ci_high, strict=True)]

    fig, axs = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axs[0]
    bb = np.array(BETAS)
    bl = np.linspace(1.5, 11.0, 39)
    ax.semilogy(bl, [mfpt_1d(V, -1.0, 1.0, b) for b in bl], "k-", lw=2, label="exact MFPT (quadrature)")
    ax.semilogy(bl, [eyring_kramers_1d(1.0, 8.0, -4.0, b) for b in bl], "C3--", lw=1.5,
                label="Eyring-Kramers (2π/√32) exp(β)")
    sb = np.array([b for b in BETAS if b in SIMULATE])
    sm = np.array([m for m in sim_mean if m is not None])
    lo = np.array([v for v in ci_low if v is not None])
    hi = np.array([v for v in ci_high if v is not None])
    ax.errorbar(sb, sm, yerr=[sm - lo, hi - sm], fmt="o", color="C0", capsize=4,
                label="simulated mean, 95% CI (Euler-Maruyama)")
    ax.set(xlabel="inverse temperature β", ylabel="mean time from −1 to +1",
           title="transition time grows like exp(βΔV), ΔV = 1")
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
    b4 = 4.0
    t4 = np.sort(samples[b4])
    fin = np.isfinite(t4)
    surv = 1 - np.arange(1, t4.size + 1) / t4.size
    ax.semilogy(t4[fin], surv[fin], "C0", label=f"simulated P(τ > t), β = {b4:g}")
    T4 = exact[BETAS.index(b4)]
    tt = np.linspace(0, SIMULATE[b4][1], 100)
    ax.semilogy(tt, np.exp(-tt / T4), "k--", label=f"exp(−t / T_exact), T_exact = {T4:.1f}")
    ax.set(xlabel="exit time t", ylabel="survival probability", title="exit times are ≈ exponential",
           ylim=(5e-3, 1.2))
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
    }
    rows = zip(BETAS, exact, ek, ratio, sim_mean, ci_low, ci_high, strict=True)
    parts, sims = [], []
    for b, e, k, r, m, lo_, hi_ in rows:
        if b in (4.0, 6.0, 10.0, 50.0):
            parts.append(f"β={b:g}: exact {e:.4g}, EK {k:.4g}, ratio {r:.3f}")
        if m is not None:
            sims.append(f"β={b:g}: {m:.4g} [{lo_:.4g}, {hi_:.4g}]")
    summary = ("; ".join(parts) + f". Ratio → 1 like 1 + {c:.2f}/β. Simulated means (95% CI): "
               + "; ".join(sims) + f"; exact MFPT inside the 95% CI for {sum(in_ci)}/{len(in_ci)} β, "
               f"largest |z| = {max(abs(v) for v in z if v is not None):.2f}.")
    return LabResult(name=NAME, numbers=numbers, figures=[fig_path], summary=summary)
