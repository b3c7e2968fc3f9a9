"""Minibatch gradient noise: for the 1-mean k-means energy, ∇f − ∇f_mb ≈ N(0, σ²/|I|).

Claim (seed 000, "Derivation of Stochastic Gradient from mini-batch"). For f(x) = (1/2N) Σ (x − y_i)² the
minibatch gradient error is ∇f − ∇f_mb = ȳ_I − ȳ; for i.i.d. draws the central limit theorem gives ȳ_I − ȳ ≈
N(0, σ²/|I|), σ² the variance of the data.

Check. Deliberately non-Gaussian, skewed data (N = 2000: a Gaussian cluster plus an exponential tail). For
|I| = 1 … 1024, 4000 minibatches each: the empirical variance of ȳ_I − ȳ against σ²/|I| (with replacement,
exact) and σ²/|I|·(N − |I|)/(N − 1) (without replacement), the log-log slope (−1), and the
Kolmogorov-Smirnov distance of the standardised noise from N(0, 1), which falls as |I| grows (the CLT at
work; at |I| = 1 the noise is just the skewed data distribution).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deeprelax.experiments.lab import LabResult
from deeprelax.pde.minibatch_noise import kmeans1_gradient_noise, kmeans1_noise_covariance

NAME = "minibatch-noise"
ORDER = 9
TITLE = "Minibatch gradient noise of 1-mean k-means: ∇f − ∇f_mb ≈ N(0, σ²/|I|), variance vs batch size"

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
N_DRAWS = 4000
HIST_BATCHES = (1, 4, 32)


def run(out: Path, *, seed: int = 0) -> LabResult:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    out = Path(out)
    rng = np.random.default_rng(seed)
    y = np.concatenate([rng.normal(0.0, 0.5, 1400), 3.0 + rng.exponential(1.0, 600)])
    n = y.size
    sigma2 = float(y.var())

    var_w, var_wo, pred_w, pred_wo, ks, noise_for_hist = [], [], [], [], [], {}
    for b in BATCHES:
        z = kmeans1_gradient_noise(y, b, N_DRAWS, rng, replace=True)
        zo = kmeans1_gradient_noise(y, b, N_DRAWS // 2, rng, replace=False)
        var_w.append(float(np.mean(z**2)))  # the mean is exactly 0
        var_wo.append(float(np.mean(zo**2)))
        pred_w.append(float(kmeans1_noise_covariance(y, b)))
        pred_wo.append(float(kmeans1_noise_covariance(y, b, replace=False)))
        std = z / np.sqrt(pred_w[-1])
        ks.append(float(stats.kstest(std, "norm").statistic))
        if b in HIST_BATCHES:
            noise_for_hist[b] = std
    bb = np.array(BATCHES, dtype=float)
    slope = float(np.polyfit(np.log(bb), np.log(var_w), 1)[0])
    ratio = [v / p for v, p in zip(var_w, pred_w, strict=True)]
    ratio_wo = [v / p for v, p in zip(var_wo, pred_wo, strict=True)]
    # relative standard error of a variance estimate from N_DRAWS draws of a mean of b points:
    # sqrt((kurtosis_b - 1)/N_DRAWS), kurtosis_b = 3 + (kurtosis - 3)/b
    kurt = float(np.mean((y - y.mean()) ** 4) / sigma2**2)
    rse = [float(np.sqrt((2 + (kurt - 3) / b) / N_DRAWS)) for b in BATCHES]
    z_w = [(r - 1) / e for r, e in zip(ratio, rse, strict=True)]

    fig, axs = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axs[0]
    ax.hist(y, bins=80, density=True, color="0.6")
    ax.set(
        xlabel="data value y_i",
        ylabel="density",
        title=f"bimodal, skewed data, N = {n}, σ² = {sigma2:.2f}, kurtosis {kurt:.1f}",
    )
    ax = axs[1]
    zz = np.linspace(-4, 4, 300)
    for k, b in enumerate(HIST_BATCHES):
        ax.hist(
            noise_for_hist[b],
            bins=70,
            range=(-4, 4),
            density=True,
            histtype="step",
            lw=1.4,
            color=f"C{k}",
            label=f"|I| = {b}  (KS distance {ks[BATCHES.index(b)]:.3f})",
        )
    ax.plot(zz, stats.norm.pdf(zz), "k--", lw=1.8, label="N(0, 1)")
    ax.set(
        xlabel="(∇f − ∇f_mb) / (σ/√|I|)",
        ylabel="density",
        title=f"standardised minibatch noise ({N_DRAWS} batches)",
    )
    ax.legend(fontsize=8)
    ax = axs[2]
    ax.loglog(bb, var_w, "o", color="C0", label=f"with replacement (slope {slope:.3f})")
    ax.loglog(bb, var_wo, "s", mfc="none", color="C1", label="without replacement")
    ax.loglog(bb, pred_w, "k-", lw=1.2, label="σ²/|I|")
    ax.loglog(bb, pred_wo, "C1--", lw=1.2, label="σ²/|I| · (N−|I|)/(N−1)")
    ax.set(xlabel="batch size |I|", ylabel="Var(∇f − ∇f_mb)", title="noise variance vs batch size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig_path = out / "minibatch_noise.png"
    fig.savefig(fig_path, dpi=100)
    plt.close(fig)

    numbers = {
        "n_data": n,
        "sigma2": sigma2,
        "n_draws": N_DRAWS,
        "batch_sizes": list(BATCHES),
        "var_with_replacement": var_w,
        "predicted_with_replacement": pred_w,
        "ratio_with_replacement": ratio,
        "var_without_replacement": var_wo,
        "predicted_without_replacement": pred_wo,
        "ratio_without_replacement": ratio_wo,
        "loglog_slope": slope,
        "ks_distance_from_normal": ks,
        "relative_se_of_variance": rse,
        "z_with_replacement": z_w,
    }
    summary = (
        f"Var(∇f − ∇f_mb)·|I|/σ² stays within {100 * max(abs(r - 1) for r in ratio):.1f} % of 1 for "
        f"|I| = 1 … {BATCHES[-1]} (relative standard errors {100 * min(rse):.1f}–{100 * max(rse):.1f} %, "
        f"largest |z| = {max(abs(v) for v in z_w):.2f}); log-log slope {slope:.3f}. Without replacement the "
        f"finite-population factor shows at "
        f"large |I| (ratio to "
        f"σ²/|I| at |I| = {BATCHES[-1]}: {var_wo[-1] / pred_w[-1]:.2f}, predicted "
        f"{(n - BATCHES[-1]) / (n - 1):.2f}). KS distance from N(0,1): {ks[0]:.3f} at |I| = 1 → "
        f"{ks[BATCHES.index(32)]:.3f} at |I| = 32 → {ks[-1]:.3f} at |I| = {BATCHES[-1]}."
    )
    return LabResult(name=NAME, numbers=numbers, figures=[fig_path], summary=summary)
