"""Widening: the HJ solutions are semi-concave with a curvature bound that decays like 1/t.

Claim (seed 000, "Metastability and widening in DNNs", "Thm: HJB widens the narrow rivers"; REFERENCE §1).
If C = sup f'' then, for the viscous (β⁻¹ > 0) and the non-viscous (β⁻¹ = 0) solutions u(·, t) of
u_t = −½|∇u|² + (β⁻¹/2)Δu, u(·, 0) = f,

    sup_x u_xx(x, t) ≤ 1 / (C⁻¹ + t),

with equality for the quadratic f = C x²/2; in n dimensions sup Δu(·, t) ≤ 1 / (C_Lap⁻¹ + t/n),
C_Lap = sup Δf. A narrow well (large curvature) is widened: its curvature drops from C to below 1/t.

Computation. 1-D: f has a narrow well (curvature C ≈ 44) and a wide one. The Hopf-Lax solution is the
refined lower envelope (sub-grid vertex, value error O(h³) on a grid h = 10⁻³), differentiated twice by
central differences with step 10⁻²; the viscous one (β = 10 and β = 2) uses the exact quadrature formula
u_xx = 1/t − β Var_ρ(y)/t². 2-D: an anisotropic narrow well plus a wide well on a 201² grid; u by 2-D
Hopf-Cole quadrature (β = 10) and by two-pass 2-D Hopf-Lax (the lower envelope picks the basin, Newton
polishes the minimiser to machine precision), Δu by the 5-point Laplacian, the sup taken over
|x_k| ≤ 1.5 (away from the domain edge); for Hopf-Lax only where the prox map is continuous (at its jumps u
has concave kinks, Δu = −∞, and finite differences across them are meaningless). The isotropic quadratic
attains the 2-D bound.
The non-viscous curvature reaches the bound at the bottom of the narrow well (there the prox is the
identity and u_xx = f''/(1 + t f'') exactly); the viscous one stays strictly below it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deeprelax.experiments.lab import LabResult
from deeprelax.pde.hopf_cole import local_entropy_1d, local_entropy_2d
from deeprelax.pde.hopf_lax import hopf_lax_1d, hopf_lax_2d, polish_prox

NAME = "widening"
ORDER = 2
TITLE = (
    "Semi-concavity: sup u_xx(·,t) ≤ 1/(C⁻¹ + t), viscous and Hopf-Lax, = for quadratics; Laplacian in 2-D"
)

TIMES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
BETA = 10.0
BETA_HOT = 2.0
Y = np.linspace(-4.0, 5.5, 9501)  # Hopf-Lax grid, h = 1e-3
Y_VISC = np.linspace(-4.0, 5.5, 3801)  # quadrature grid, h = 2.5e-3 (spectrally accurate)
H = 1e-2  # finite-difference step for u_xx
X = np.arange(-2.0, 3.5 + H / 2, H)
A, W = 1.0, 0.15  # narrow well: depth, width
N2D = 161  # 2-D grid on [-2.5, 2.5]^2


def f(x: np.ndarray) -> np.ndarray:
    return -A * np.exp(-(x**2) / (2 * W**2)) - 1.2 * np.exp(-((x - 1.5) ** 2) / (2 * 0.6**2)) + 0.02 * x**2


def d2f(x: np.ndarray) -> np.ndarray:
    g1 = np.exp(-(x**2) / (2 * W**2))
    g2 = np.exp(-((x - 1.5) ** 2) / (2 * 0.6**2))
    return A * g1 * (1 / W**2 - x**2 / W**4) + 1.2 * g2 * (1 / 0.6**2 - (x - 1.5) ** 2 / 0.6**4) + 0.04


# 2-D: anisotropic narrow well at the origin, wide well at (1, 0.5), weak confinement.
# Each well is (depth, centre_1, centre_2, width_1, width_2).
WELLS_2D = ((1.0, 0.0, 0.0, 0.15, 0.3), (1.2, 1.0, 0.5, 0.6, 0.6))


def f2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = 0.02 * (a**2 + b**2)
    for d, ca, cb, sa, sb in WELLS_2D:
        out = out - d * np.exp(-((a - ca) ** 2) / (2 * sa**2) - (b - cb) ** 2 / (2 * sb**2))
    return out


def grad_f2(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ga, gb = 0.04 * a, 0.04 * b
    for d, ca, cb, sa, sb in WELLS_2D:
        e = d * np.exp(-((a - ca) ** 2) / (2 * sa**2) - (b - cb) ** 2 / (2 * sb**2))
        ga = ga + e * (a - ca) / sa**2
        gb = gb + e * (b - cb) / sb**2
    return ga, gb


def hess_f2(a: np.ndarray, b: np.ndarray) -> list[list[np.ndarray]]:
    haa, hab, hbb = 0.04 + 0 * a, 0 * a, 0.04 + 0 * a
    for d, ca, cb, sa, sb in WELLS_2D:
        e = d * np.exp(-((a - ca) ** 2) / (2 * sa**2) - (b - cb) ** 2 / (2 * sb**2))
        haa = haa + e * (1 / sa**2 - (a - ca) ** 2 / sa**4)
        hbb = hbb + e * (1 / sb**2 - (b - cb) ** 2 / sb**4)
        hab = hab - e * (a - ca) * (b - cb) / (sa**2 * sb**2)
    return [[haa, hab], [hab, hbb]]


def hopf_lax_2d_polished(g: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Hopf-Lax of ``f2`` on ``g x g``: basin by the 2-D lower envelope, minimiser Newton-polished."""
    r = hopf_lax_2d(f2, g, g, t, refine=False)
    xx = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    y, val = polish_prox(f2, grad_f2, hess_f2, xx, r.prox.reshape(-1, 2), t, n_iter=6)
    return val.reshape(g.size, g.size), y.reshape(g.size, g.size, 2)


def _uxx(u: np.ndarray, h: float) -> np.ndarray:
    return (u[2:] - 2 * u[1:-1] + u[:-2]) / h**2


def _laplacian(u: np.ndarray, h: float) -> np.ndarray:
    return (u[2:, 1:-1] + u[:-2, 1:-1] + u[1:-1, 2:] + u[1:-1, :-2] - 4 * u[1:-1, 1:-1]) / h**2


def _smooth_points(prox: np.ndarray, h: float, jump: float = 10.0) -> np.ndarray:
    """Interior points where the prox map does not jump between neighbours (by more than ``jump * h``).

    At a jump (a shock) u has a concave kink: its Laplacian is -inf there, and finite differences across it
    mix two branches, each known only to the accuracy of the grid.
    """
    c = prox[1:-1, 1:-1]
    d = np.zeros(c.shape[:2])
    for nb in (prox[2:, 1:-1], prox[:-2, 1:-1], prox[1:-1, 2:], prox[1:-1, :-2]):
        d = np.maximum(d, np.linalg.norm(nb - c, axis=-1))
    return d <= jump * h


def one_d(times: tuple[float, ...] = TIMES) -> dict[str, Any]:
    """sup u_xx for the Hopf-Lax and the viscous solutions at each t, and the bound."""
    C = float(np.max(d2f(Y)))  # exact f'', on a grid through the narrow well's bottom
    hl, visc, hot, bound = [], [], [], []
    for t in times:
        bound.append(1.0 / (1.0 / C + t))
        if t == 0.0:
            hl.append(float(np.max(_uxx(f(X), H))))
            visc.append(hl[-1])
            hot.append(hl[-1])
            continue
        hl.append(float(np.max(_uxx(hopf_lax_1d(f, X, t, Y).value, H))))
        visc.append(float(np.max(local_entropy_1d(f, X, t, BETA, Y_VISC).uxx)))
        hot.append(float(np.max(local_entropy_1d(f, X, t, BETA_HOT, Y_VISC).uxx)))
    return {"C": C, "t": list(times), "bound": bound, "hl": hl, "visc": visc, "hot": hot}


def quadratic_check(C: float = 3.0, times: tuple[float, ...] = (0.1, 0.5, 2.0)) -> float:
    """Largest relative gap between sup u_xx and 1/(C^-1 + t) for f = C x^2/2 (both solutions)."""
    y = np.linspace(-6, 6, 6001)
    x = np.linspace(-1, 1, 201)
    q = lambda s: 0.5 * C * s**2  # noqa: E731
    gaps = []
    for t in times:
        b = 1.0 / (1.0 / C + t)
        gaps.append(abs(np.max(_uxx(hopf_lax_1d(q, x, t, y).value, x[1] - x[0])) / b - 1))
        gaps.append(abs(np.max(local_entropy_1d(q, x, t, BETA, y).uxx) / b - 1))
    return float(max(gaps))


def two_d(times: tuple[float, ...] = (0.0, 0.02, 0.05, 0.2, 0.5, 1.0)) -> dict[str, Any]:
    """sup Laplacian of u for the 2-D example, and the isotropic-quadratic equality check."""
    g = np.linspace(-2.5, 2.5, N2D)
    h = g[1] - g[0]
    mesh = np.meshgrid(g, g, indexing="ij")
    F = f2(*mesh)
    inner = np.abs(g[1:-1]) <= 1.5
    mask = inner[:, None] & inner[None, :]
    hs = hess_f2(*mesh)
    c_lap = float(np.max(hs[0][0] + hs[1][1]))  # exact sup of the Laplacian of f (grid through the origin)
    hl, visc, bound = [], [], []
    u_visc = {}
    for t in times:
        bound.append(1.0 / (1.0 / c_lap + t / 2))
        if t == 0.0:
            hl.append(float(np.max(_laplacian(F, h)[mask])))
            visc.append(hl[-1])
            continue
        u, prox = hopf_lax_2d_polished(g, t)
        smooth = mask & _smooth_points(prox, h)
        hl.append(float(np.max(_laplacian(u, h)[smooth])))
        u_visc[t] = local_entropy_2d(F, g, g, t, BETA).value
        visc.append(float(np.max(_laplacian(u_visc[t], h)[mask])))
    # isotropic quadratic f = C |x|^2 / 2: Delta u = 2 C / (1 + C t) = 1 / (C_Lap^-1 + t/2), C_Lap = 2C
    c = 3.0
    Q = 0.5 * c * (g[:, None] ** 2 + g[None, :] ** 2)
    eq = []
    for t in (0.1, 1.0):
        b = 1.0 / (1.0 / (2 * c) + t / 2)
        eq.append(abs(np.max(_laplacian(hopf_lax_2d(Q, g, g, t).value, h)[mask]) / b - 1))
        eq.append(abs(np.max(_laplacian(local_entropy_2d(Q, g, g, t, BETA).value, h)[mask]) / b - 1))
    return {
        "C_lap": c_lap,
        "t": list(times),
        "bound": bound,
        "max_lap_hopf_lax": hl,
        "max_lap_viscous": visc,
        "beta": BETA,
        "quadratic_max_rel_error": float(max(eq)),
        "grid": g,
        "F": F,
        "u_visc": u_visc,
    }


def run(out: Path, *, seed: int = 0) -> LabResult:  # noqa: ARG001 (deterministic lab)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    r1 = one_d()
    quad = quadratic_check()
    r2 = two_d()
    C = r1["C"]

    fig, axs = plt.subplots(2, 2, figsize=(12, 9))
    ax = axs[0, 0]
    xz = X[(X > -1.2) & (X < 3.2)]
    ax.plot(xz, f(xz), "k", lw=2, label="f (narrow well at 0, wide well at 1.5)")
    for k, t in enumerate((0.05, 0.5)):
        ax.plot(xz, hopf_lax_1d(f, xz, t, Y).value, color=f"C{k}", label=f"Hopf-Lax u(·, t = {t:g})")
        uv = local_entropy_1d(f, xz, t, BETA, Y_VISC).value
        ax.plot(xz, uv, "--", color=f"C{k}", label=f"viscous β = {BETA:g}")
    ax.set(xlabel="x", ylabel="value", title="the narrow well is widened much more than the wide one")
    ax.legend(fontsize=8)
    ax = axs[0, 1]
    tt = np.array(r1["t"][1:])
    tf = np.geomspace(tt[0], tt[-1], 100)
    ax.loglog(tf, 1 / (1 / C + tf), "k-", lw=2, label=f"bound 1/(C⁻¹ + t), C = sup f'' = {C:.1f}")
    ax.loglog(tt, r1["hl"][1:], "C0o", ms=8, label="Hopf-Lax (β = ∞)")
    ax.loglog(tt, r1["visc"][1:], "C1s", label=f"viscous β = {BETA:g}")
    ax.loglog(tt, r1["hot"][1:], "C2^", label=f"viscous β = {BETA_HOT:g}")
    ax.loglog(tf, 1 / tf, "0.6", ls=":", label="1/t")
    ax.set(xlabel="t", ylabel="sup_x u_xx(x, t)", title="1-D: curvature bound (equality for quadratics)")
    ax.legend(fontsize=8)
    ax = axs[1, 0]
    g = r2["grid"]
    tsel = 0.2
    Uv = r2["u_visc"][tsel]
    levels = np.linspace(-1.1, -0.1, 11)
    cs = ax.contour(g, g, r2["F"].T, levels=levels, colors="k", linewidths=0.8, linestyles="solid")
    ax.contour(g, g, Uv.T, levels=levels, colors="C1", linewidths=1.2, linestyles="solid")
    ax.clabel(cs, fontsize=6)
    ax.plot([], [], "k", label="level sets of f")
    ax.plot([], [], "C1", label=f"level sets of u(·, t = {tsel:g}), β = {BETA:g}")
    ax.set(
        xlabel="x₁",
        ylabel="x₂",
        title="2-D level sets: the narrow well at 0 fills in first",
        aspect="equal",
        xlim=(-1.0, 2.2),
        ylim=(-1.2, 1.8),
    )
    ax.legend(fontsize=8, loc="lower left")
    ax = axs[1, 1]
    t2 = np.array(r2["t"][1:])
    tf2 = np.geomspace(t2[0], t2[-1], 100)
    cl = r2["C_lap"]
    lab = f"bound 1/(C_Lap⁻¹ + t/n), n = 2, C_Lap = {cl:.1f}"
    ax.loglog(tf2, 1 / (1 / cl + tf2 / 2), "k-", lw=2, label=lab)
    ax.loglog(t2, r2["max_lap_hopf_lax"][1:], "C0o", ms=8, label="Hopf-Lax (2-D lower envelope)")
    ax.loglog(t2, r2["max_lap_viscous"][1:], "C1s", label=f"viscous β = {BETA:g} (2-D Hopf-Cole)")
    ax.set(xlabel="t", ylabel="sup Δu(·, t) over |x_k| ≤ 1.5", title="2-D: Laplacian bound")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "widening.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)

    dev_hl = max(abs(v / b - 1) for b, v in zip(r1["bound"], r1["hl"], strict=True))
    slack_v = min(b - v for b, v in zip(r1["bound"], r1["visc"], strict=True))
    numbers = {
        "C": C,
        "t": r1["t"],
        "bound": r1["bound"],
        "max_uxx_hopf_lax": r1["hl"],
        "max_uxx_viscous": r1["visc"],
        "beta": BETA,
        f"max_uxx_viscous_beta_{BETA_HOT:g}": r1["hot"],
        "hopf_lax_max_rel_dev_from_bound": dev_hl,
        "min_slack_viscous": slack_v,
        "quadratic_max_rel_error": quad,
        "laplacian_2d": {k: v for k, v in r2.items() if k not in ("grid", "F", "u_visc")},
    }
    i = r1["t"].index(0.5)
    summary = (
        f"1-D, C = sup f'' = {C:.1f}: at t = 0.5 the bound 1/(C⁻¹+t) = {r1['bound'][i]:.3f}, Hopf-Lax "
        f"sup u_xx = {r1['hl'][i]:.3f} (attained at the narrow well's bottom), viscous (β={BETA:g}) "
        f"{r1['visc'][i]:.3f}; over all t Hopf-Lax equals the bound to {dev_hl:.1e} (relative; "
        f"discretisation), the viscous one stays below it by at least {slack_v:.3f}. "
        f"Quadratic f: equality to {quad:.1e} (relative). 2-D Laplacian (C_Lap = {r2['C_lap']:.1f}): at "
        f"t = 0.5 bound {r2['bound'][4]:.2f}, Hopf-Lax {r2['max_lap_hopf_lax'][4]:.2f}, viscous "
        f"{r2['max_lap_viscous'][4]:.2f}; isotropic quadratic attains it to "
        f"{r2['quadratic_max_rel_error']:.1e}."
    )
    return LabResult(name=NAME, numbers=numbers, figures=[path], summary=summary)
