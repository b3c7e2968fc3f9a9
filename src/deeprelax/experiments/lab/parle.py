"""Parle's reference settles in the wide valley — the minimiser of the local entropy, not of f.

Claim (seed 000, "PARLE-SGD", "Parallel SGD"; REFERENCE §2): Parle runs Entropy-SGD on every replica and
couples the replicas elastically to their mean, gradient descent on the JKO functional
J(ρ) = ∫ f_γ ρ + (1/2γ)∬|x − y|²ρρ; the reference x̄ (the mean of the replicas, the one thing they
communicate) should therefore settle where the *local entropy* f_γ is lowest — the wide valley — even when
f itself is lowest in a narrow one.

On f(x) = x²/20 − e^{−(x+2)²/(2·0.15²)} − 0.7 e^{−(x−2)²/2} (narrow deep well at −2, wide shallow well at 2)
with β = 5, the local entropy at PDE time t = 1/γ = 3, computed by Hopf-Cole quadrature
(:func:`deeprelax.pde.hopf_cole.local_entropy_1d`), has its minimum in the wide well (at t = 0.1 still in the
narrow one; f_t keeps a shallower local minimum near −2). Every explicit step size is inside its stability
line (η · max f'' = 0.02 · 44 < 2): a larger one would throw the iterates out of the narrow well by
numerical instability, not by entropy. R = 256 independent runs of n = 4 particles, started uniformly in
[−4, 4], under SGD (Langevin particles at the same temperature), Elastic-SGD, Parle (L = 20 inner Langevin
steps) and Parle with the exact Gibbs mean (on the first 64 runs); SGD and Elastic-SGD get the same number of
gradient evaluations as Parle (21 per Parle step).
Reported: the fraction of runs whose final reference (for SGD: whose particles) is in the wide well, and the
distance of the Parle references to argmin f_γ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deeprelax.experiments.lab import LabResult
from deeprelax.pde.hopf_cole import local_entropy_1d
from deeprelax.pde.particles import ParticleRun, simulate

NAME = "parle"
ORDER = 11
TITLE = "Parle: the replicas' reference settles in the wide valley, at the minimiser of the local entropy"

BETA, T = 5.0, 3.0  # inverse temperature, PDE time t = 1/γ
RUNS, N, PARLE_STEPS, L, EXACT_RUNS = 256, 4, 150, 20, 64
RHO, LR_OUT, LR, INNER_LR = 1.0, 0.5, 0.02, 0.02  # lr · max f'' = 0.02 · 44 < 2: every explicit step stable
X = np.linspace(-4.0, 4.0, 801)
Y_GRID = np.linspace(-7.0, 7.0, 1401)


def f(x: np.ndarray) -> np.ndarray:
    return 0.05 * x**2 - np.exp(-((x + 2) ** 2) / (2 * 0.15**2)) - 0.7 * np.exp(-((x - 2) ** 2) / 2)


def fprime(x: np.ndarray) -> np.ndarray:
    return (
        0.1 * x
        + (x + 2) / 0.15**2 * np.exp(-((x + 2) ** 2) / (2 * 0.15**2))
        + 0.7 * (x - 2) * np.exp(-((x - 2) ** 2) / 2)
    )


def compute(seed: int = 0) -> dict[str, Any]:
    """The four methods from the same starts, and the local entropy they are checked against."""
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-4, 4, size=(RUNS, N))
    le = local_entropy_1d(f, X, T, BETA, Y_GRID)
    le_short = local_entropy_1d(f, X, 0.1, BETA, Y_GRID)
    common: dict[str, Any] = dict(beta=BETA, rho=RHO, gamma=1.0 / T, rng=rng)
    runs = {
        "sgd": simulate("sgd", fprime, x0, steps=PARLE_STEPS * (L + 1), lr=LR, **common),
        "elastic-sgd": simulate("elastic-sgd", fprime, x0, steps=PARLE_STEPS * (L + 1), lr=LR, **common),
        "parle": simulate(
            "parle", fprime, x0, steps=PARLE_STEPS, lr=LR_OUT, L=L, inner_lr=INNER_LR, **common
        ),
        # quadrature per particle and step is the expensive part: the first EXACT_RUNS runs only
        "parle-exact": simulate(
            "parle-exact", fprime, x0[:EXACT_RUNS], steps=PARLE_STEPS, lr=LR_OUT, f=f, y_grid=Y_GRID, **common
        ),
    }
    return {"x0": x0, "le": le, "le_short": le_short, "runs": runs}


def summarise(res: dict[str, Any]) -> dict[str, Any]:
    le, runs = res["le"], res["runs"]
    argmin_ft = float(X[np.argmin(le.value)])
    numbers: dict[str, Any] = {
        "argmin_f": float(X[np.argmin(f(X))]),
        "argmin_f_t": argmin_ft,
        "argmin_f_t_short": float(X[np.argmin(res["le_short"].value)]),
        "start_fraction_wide": float((res["x0"] > 0).mean()),
    }
    for name, run in runs.items():
        final = run.x[-1] if name == "sgd" else run.reference[-1]
        numbers[f"{name}_fraction_wide"] = float((final > 0).mean())
        if name != "sgd":
            wide = final[final > 0]
            numbers[f"{name}_median_distance_to_argmin_f_t"] = (
                float(np.median(np.abs(wide - argmin_ft))) if wide.size else None
            )
    # the exact-mean fixed point is a stationary point of f_t: (x - <y>)/t = 0 there (checked on the grid)
    final = runs["parle-exact"].reference[-1]
    grad = local_entropy_1d(f, final, T, BETA, Y_GRID).grad
    numbers["parle_exact_max_grad_f_t_at_reference"] = float(np.max(np.abs(grad)))
    return numbers


def plot(res: dict[str, Any], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[str, ParticleRun] = res["runs"]
    fig, axs = plt.subplots(1, 3, figsize=(15, 4.3))
    ax = axs[0]
    ax.plot(X, f(X), "k", lw=1.5, label="f")
    ax.plot(X, res["le"].value, "C3", lw=1.5, label=f"local entropy $f_t$, t = {T:g}")
    ax.plot(X, res["le_short"].value, "C3--", lw=1, label="$f_t$, t = 0.1")
    ax.set(xlabel="x", title=f"narrow deep well vs wide well (β = {BETA:g})")
    ax.legend(fontsize=8)
    ax = axs[1]
    for name, color in (("elastic-sgd", "C1"), ("parle", "C4")):
        run = runs[name]
        steps = np.arange(run.x.shape[0]) * (1 if name == "parle" else 1 / (L + 1))
        for a in range(N):
            ax.plot(steps, run.x[:, 0, a], color=color, lw=0.5, alpha=0.5)
        ax.plot(steps, run.reference[:, 0], color=color, lw=2, label=f"{name}: reference x̄ (run 0)")
    ax.axhline(float(X[np.argmin(res["le"].value)]), color="C3", ls=":", label="argmin $f_t$")
    ax.set(
        xlabel="Parle outer steps (= 21 gradient evaluations)",
        ylabel="x",
        title="particles (thin) and their reference (thick)",
    )
    ax.legend(fontsize=8)
    ax = axs[2]
    bins = np.linspace(-4, 4, 41)
    for name, color in (("sgd", "C7"), ("elastic-sgd", "C1"), ("parle", "C4"), ("parle-exact", "C2")):
        final = runs[name].x[-1].ravel() if name == "sgd" else runs[name].reference[-1]
        ax.hist(
            final,
            bins=bins,
            histtype="step",
            lw=1.5,
            color=color,
            density=True,
            label=f"{name}: {100 * (final > 0).mean():.0f} % wide",
        )
    ax.set(xlabel="final reference x̄ (SGD: particles)", title=f"{RUNS} runs of {N} particles")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(out) / "parle.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(out: Path, *, seed: int = 0) -> LabResult:
    res = compute(seed)
    numbers = summarise(res)
    path = plot(res, out)
    summary = (
        f"argmin f = {numbers['argmin_f']:.2f} (narrow well), argmin f_t = {numbers['argmin_f_t']:.2f} "
        f"(wide well; at t = 0.1 still {numbers['argmin_f_t_short']:.2f}). Final reference in the wide "
        f"well: Parle {100 * numbers['parle_fraction_wide']:.0f} %, exact-mean Parle "
        f"{100 * numbers['parle-exact_fraction_wide']:.0f} %, Elastic-SGD "
        f"{100 * numbers['elastic-sgd_fraction_wide']:.0f} %, SGD particles "
        f"{100 * numbers['sgd_fraction_wide']:.0f} % (starts {100 * numbers['start_fraction_wide']:.0f} %)."
    )
    return LabResult(name=NAME, numbers=numbers, figures=[path], summary=summary)
