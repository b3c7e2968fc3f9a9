"""Limit cycles: with a non-gradient force or non-isotropic noise, SGD's stationary potential Φ is not f.

Claim (Chaudhari & Soatto, REFERENCE §1; seed 002 "most likely trajectories of SGD are closed loops"). Writing
the SGD drift as −∇f = −D∇Φ + β⁻¹∇·D + j with ρ_ss ∝ e^{−βΦ}, Φ = f only for isotropic noise and j = 0;
otherwise the most likely locations of SGD are not the minima of f and trajectories loop.

Check, two toys (see :mod:`deeprelax.pde.limit_cycles`; a toy in the spirit of the paper's 2-D example, not a
copy of it). (1) dx = (−∇f + λJx) dt + √(2/β) dW on the double well f = ¼(x₁² − 1)² + ½x₂², β = 10,
λ ∈ {0, 0.5, 1.5}: deterministic trajectories (for λ = 0.5 they end at the displaced points
±(√(1 − λ²), λ√(1 − λ²)), for λ = 1.5 > 1 they loop around and into the saddle of f), noisy trajectories, and
stationary statistics from 400 paths against the Gibbs density e^{−βf} (quadrature): they agree for λ = 0 and
differ by many standard errors for λ > 0 (mass near the saddle, correlation of x₁ and x₂). (2) Gradient drift
f = ½xᵀHx with non-isotropic constant noise D (principal axes at 45° to those of H): the simulated stationary
covariance matches the Lyapunov solution C (Φ = ½xᵀ(βC)⁻¹x), not the Gibbs covariance β⁻¹H⁻¹ of f, and the
residual force j = −∇f + D∇Φ is a rotation (loops in a stationary state).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from deeprelax.experiments.lab import LabResult
from deeprelax.pde.limit_cycles import (
    double_well,
    linear_current_matrix,
    linear_stationary_covariance,
    rotational_fixed_points,
    rotational_force,
    saddle_eigenvalues,
)
from deeprelax.pde.sde import euler_maruyama

NAME = "limit-cycles"
ORDER = 10
TITLE = "Non-gradient force / non-isotropic noise: loops around saddles, stationary potential Φ ≠ f"

BETA = 10.0
LAMBDAS = (0.0, 0.5, 1.5)
N_PATHS, DT, T_END, T_BURN = 400, 0.01, 40.0, 10.0
H_LIN = np.diag([1.0, 3.0])
_R45 = np.array([[1.0, -1.0], [1.0, 1.0]]) / np.sqrt(2)
D_LIN = _R45 @ np.diag([1.8, 0.2]) @ _R45.T


def _stats(s: np.ndarray) -> dict[str, np.ndarray]:
    """Per-path time averages (paths independent): s has shape (n_times, n_paths, 2)."""
    r = np.hypot(s[..., 0], s[..., 1])
    return {
        "p_saddle": (r < 0.5).mean(0),
        "E_x1sq": (s[..., 0] ** 2).mean(0),
        "E_x1x2": (s[..., 0] * s[..., 1]).mean(0),
    }


def _rk4(F: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, T: float, h: float) -> list[np.ndarray]:
    """Classical RK4 for dx/dt = F(x), all starts at once; returns one (2, n_steps+1) array per start."""
    x = np.array(x0, dtype=float)
    xs = [x]
    for _ in range(int(round(T / h))):
        k1 = F(x)
        k2 = F(x + h / 2 * k1)
        k3 = F(x + h / 2 * k2)
        k4 = F(x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        xs.append(x)
    arr = np.stack(xs)  # (n_steps+1, n_starts, 2)
    return [arr[:, i, :].T for i in range(arr.shape[1])]


def run(out: Path, *, seed: int = 0) -> LabResult:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse

    out = Path(out)
    rng = np.random.default_rng(seed)

    # Gibbs statistics of e^{-beta f} by quadrature
    g = np.linspace(-3, 3, 601)
    G1, G2 = np.meshgrid(g, g, indexing="ij")
    w = np.exp(-BETA * double_well(np.stack([G1, G2], -1)))
    w /= w.sum()
    gibbs = {
        "p_saddle": float(w[np.hypot(G1, G2) < 0.5].sum()),
        "E_x1sq": float((w * G1**2).sum()),
        "E_x1x2": float((w * G1 * G2).sum()),
    }

    starts = [(0.05, 0.02), (-1.6, 1.2), (1.5, -1.3), (0.2, 1.6)]
    res: dict[float, dict] = {}
    for lam in LAMBDAS:
        F = rotational_force(lam)
        det = _rk4(F, np.array(starts), 40.0, 0.02)
        x0 = rng.uniform(-1.5, 1.5, (N_PATHS, 2))

        def drift(x: np.ndarray, t: float, F: Callable[[np.ndarray], np.ndarray] = F) -> np.ndarray:
            return F(x)

        p = euler_maruyama(
            drift,
            x0,
            dt=DT,
            n_steps=int(round(T_END / DT)),
            sigma=np.sqrt(2 / BETA),
            rng=rng,
            record_every=10,
        )
        s = p.x[p.t >= T_BURN]
        st = _stats(s)
        est = {k: float(v.mean()) for k, v in st.items()}
        se = {k: float(v.std(ddof=1) / np.sqrt(v.size)) for k, v in st.items()}
        z = {k: (est[k] - gibbs[k]) / se[k] for k in est}
        res[lam] = dict(
            det=det,
            samples=s.reshape(-1, 2),
            path=p.x[p.t >= T_END - 20, 0],
            est=est,
            se=se,
            z=z,
            fixed=rotational_fixed_points(lam),
            eig=saddle_eigenvalues(lam),
        )

    # (2) linear, non-isotropic noise
    C = linear_stationary_covariance(H_LIN, D_LIN, BETA)
    A = linear_current_matrix(H_LIN, D_LIN, BETA)
    S = np.linalg.cholesky(2 / BETA * D_LIN)
    pl = euler_maruyama(
        lambda x, t: -x @ H_LIN.T, np.zeros((1000, 2)), dt=DT, n_steps=1000, sigma=S, rng=rng, record_every=25
    )
    sl = pl.x[pl.t >= 5].reshape(-1, 2)
    C_emp = np.cov(sl.T)
    C_gibbs = np.linalg.inv(H_LIN) / BETA

    fig, axs = plt.subplots(2, 4, figsize=(19, 9))
    xs = np.linspace(-2.2, 2.2, 200)
    X1, X2 = np.meshgrid(xs, xs, indexing="ij")
    fv = double_well(np.stack([X1, X2], -1))
    for c, lam in enumerate(LAMBDAS):
        r = res[lam]
        ax = axs[0, c]
        ax.contour(X1, X2, fv, levels=np.linspace(0, 2, 11), colors="0.75", linewidths=0.7)
        ax.plot(
            r["path"][:, 0],
            r["path"][:, 1],
            color="C0",
            lw=0.5,
            alpha=0.8,
            label="noisy path (last 20 time units)",
        )
        for k, tr in enumerate(r["det"]):
            ax.plot(tr[0], tr[1], "k-", lw=1.3, label="deterministic dx/dt = F_λ(x)" if k == 0 else None)
            ax.plot(*tr[:, 0], "ko", ms=3)
        ax.plot([-1, 1], [0, 0], "o", mfc="none", mec="C2", ms=10, mew=2, label="minima of f")
        ax.plot(r["fixed"][:, 0], r["fixed"][:, 1], "x", color="C3", ms=10, mew=2.5, label="zeros of F_λ")
        ev = r["eig"]
        kind = "a saddle" if np.all(np.abs(ev.imag) < 1e-12) else "a weak focus (loops)"
        ax.set(
            xlim=(-2.2, 2.2),
            ylim=(-2.2, 2.2),
            xlabel="x₁",
            ylabel="x₂",
            aspect="equal",
            title=f"λ = {lam}: F = −∇f + λJx, origin is {kind}",
        )
        ax.legend(fontsize=7, loc="lower right")
        ax = axs[1, c]
        h, _, _ = np.histogram2d(
            r["samples"][:, 0], r["samples"][:, 1], bins=70, range=[[-2.2, 2.2]] * 2, density=True
        )
        ax.imshow(h.T, origin="lower", extent=(-2.2, 2.2, -2.2, 2.2), cmap="viridis", aspect="equal")
        ax.contour(X1, X2, np.exp(-BETA * fv), levels=4, colors="w", linewidths=0.8)
        e = r["est"]
        ax.set(
            xlabel="x₁",
            ylabel="x₂",
            title=f"λ = {lam}: stationary density (white: e^(−βf), β = {BETA:g})\n"
            f"P(|x|<½) = {e['p_saddle']:.3f} vs Gibbs "
            f"{gibbs['p_saddle']:.3f}; E x₁x₂ = {e['E_x1x2']:.3f}",
        )
    ax = axs[0, 3]
    ax.plot(sl[::20, 0], sl[::20, 1], ".", ms=1.5, color="C0", alpha=0.5, label="stationary samples")
    for M, col, lab in ((C, "C3", "Lyapunov C: Φ = ½xᵀ(βC)⁻¹x"), (C_gibbs, "k", "Gibbs of f: β⁻¹H⁻¹")):
        vals, vecs = np.linalg.eigh(M)
        ang = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
        for k in (1, 2):
            ax.add_patch(
                Ellipse(
                    (0, 0),
                    2 * k * np.sqrt(vals[1]),
                    2 * k * np.sqrt(vals[0]),
                    angle=ang,
                    fill=False,
                    color=col,
                    lw=1.6,
                    ls="-" if col != "k" else "--",
                    label=lab if k == 1 else None,
                )
            )
    lim = 3.2 * np.sqrt(C.max())
    ax.set(
        xlim=(-lim, lim),
        ylim=(-lim, lim),
        aspect="equal",
        xlabel="x₁",
        ylabel="x₂",
        title="f = ½xᵀHx, H = diag(1, 3), noise D at 45°:\nstationary law follows Φ, not f (1σ, 2σ)",
    )
    ax.legend(fontsize=7, loc="lower right")
    ax = axs[1, 3]
    q = np.linspace(-lim, lim, 60)
    Q1, Q2 = np.meshgrid(q, q, indexing="xy")
    jv = np.stack([Q1, Q2], -1) @ A.T
    ax.streamplot(Q1, Q2, jv[..., 0], jv[..., 1], color="C3", density=0.9, linewidth=1.0)
    ax.set(
        xlim=(-lim, lim),
        ylim=(-lim, lim),
        aspect="equal",
        xlabel="x₁",
        ylabel="x₂",
        title="streamlines of j = −∇f + D∇Φ: closed loops\n(a stationary yet circulating state)",
    )
    fig.tight_layout()
    fig_path = out / "limit_cycles.png"
    fig.savefig(fig_path, dpi=80)
    plt.close(fig)

    numbers = {
        "beta": BETA,
        "lambda": list(LAMBDAS),
        "gibbs_of_f": gibbs,
        "simulated": [res[lam]["est"] for lam in LAMBDAS],
        "standard_error": [res[lam]["se"] for lam in LAMBDAS],
        "z_vs_gibbs": [res[lam]["z"] for lam in LAMBDAS],
        "saddle_eigenvalues": [
            [complex(v).real, complex(v).imag] for lam in LAMBDAS for v in [res[lam]["eig"][0]]
        ],
        "fixed_points": [res[lam]["fixed"].tolist() for lam in LAMBDAS],
        "final_deterministic_points": [[tr[:, -1].tolist() for tr in res[lam]["det"]] for lam in LAMBDAS],
        "linear_cov_simulated": C_emp.tolist(),
        "linear_cov_lyapunov": C.tolist(),
        "linear_cov_gibbs_f": C_gibbs.tolist(),
        "linear_cov_rel_err_vs_lyapunov": float(np.abs(C_emp - C).max() / np.abs(C).max()),
        "linear_cov_rel_err_vs_gibbs_f": float(np.abs(C_emp - C_gibbs).max() / np.abs(C_gibbs).max()),
        "linear_current_matrix": A.tolist(),
    }
    z0 = max(abs(v) for v in res[0.0]["z"].values())
    z15 = res[1.5]["z"]["p_saddle"]
    summary = (
        f"λ = 0: stationary statistics match e^(−βf) (largest |z| = {z0:.1f}). λ = 0.5: the attractors move "
        f"to "
        f"(±{np.sqrt(0.75):.3f}, ±{0.5 * np.sqrt(0.75):.3f}) and E x₁x₂ = {res[0.5]['est']['E_x1x2']:.3f} "
        f"(Gibbs 0). λ = 1.5: the saddle becomes a focus (eigenvalues ±{abs(res[1.5]['eig'][0].imag):.3f}i), "
        f"trajectories loop into it and P(|x| < ½) = {res[1.5]['est']['p_saddle']:.3f} vs Gibbs "
        f"{gibbs['p_saddle']:.3f} (z = {z15:.0f}): Φ ≠ f. Non-isotropic noise: simulated covariance within "
        f"{100 * numbers['linear_cov_rel_err_vs_lyapunov']:.1f} % of the Lyapunov C, "
        f"{100 * numbers['linear_cov_rel_err_vs_gibbs_f']:.0f} % off the Gibbs covariance of f; "
        f"j is a rotation."
    )
    return LabResult(name=NAME, numbers=numbers, figures=[fig_path], summary=summary)
