"""Diagnostics of trained networks: compute (numbers), plot (figures) and summarise (markdown).

:func:`compute` runs the instruments of :mod:`deeprelax.diagnostics` on a model and training data and returns
a JSON-serialisable dict; :func:`plot` draws its figures; :func:`summarise` writes its markdown section.
:func:`diagnose_run` does all three for a run folder written by ``train``, ``compare`` or ``table1`` (its
``checkpoint.pt`` and ``config.json``), :func:`diagnose_compare` is the hook of ``compare --diagnose``.
All measurements use a fixed, seeded subset of the *training* split (the objective the optimizers
minimised), the network in eval mode with the BatchNorm statistics of the checkpoint frozen.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deeprelax import diagnostics as dg

WHAT = ("hessian", "local-entropy", "noise", "landscape")
JSON_NAME, MD_NAME = "diagnostics.json", "diagnostics.md"


@dataclass
class DiagnoseSettings:
    """Sizes and parameters of the diagnostics (defaults: a few minutes for LeNet on 2 CPU cores)."""

    n_examples: int = 1000  # training examples of the objective (seeded subset)
    n_noise: int = 1000  # examples for the per-sample gradients (the first of the same subset)
    batch_size: int = 500
    k: int = 2  # top Hessian eigenvalues
    tol: float = 1e-3  # ARPACK relative accuracy
    ncv: int | None = None  # ARPACK Lanczos vectors (default max(2k + 1, 10))
    trace_samples: int = 20
    slq_probes: int = 2
    slq_steps: int = 30
    beta: float = 100.0  # local entropy: inverse temperature (loss units)
    gammas: tuple[float, ...] = (1.0, 10.0, 100.0)  # kernel std 1/sqrt(βγ) = 0.1, 0.032, 0.01 per weight
    mc_samples: int = 30
    langevin: bool = True
    n_lambda: int = 2
    langevin_steps: int = 6
    langevin_burn_in: int = 2
    langevin_chains: int = 2
    sigmas: tuple[float, ...] = (0.03, 0.1, 0.3)  # local energy
    energy_samples: int = 10
    landscape_points: int = 21
    landscape_grid: int = 9
    landscape_radius: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.gammas = tuple(float(g) for g in self.gammas)
        self.sigmas = tuple(float(s) for s in self.sigmas)
        ints = {
            "n_examples": 1,
            "n_noise": 2,
            "batch_size": 1,
            "k": 1,
            "trace_samples": 2,
            "slq_probes": 1,
            "slq_steps": 1,
            "mc_samples": 2,
            "n_lambda": 1,
            "langevin_steps": 1,
            "langevin_burn_in": 0,
            "langevin_chains": 2,
            "energy_samples": 2,
            "landscape_points": 2,
            "landscape_grid": 2,
        }
        for name, lo in ints.items():
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        for name in ("tol", "beta", "landscape_radius"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        for name in ("gammas", "sigmas"):
            v = getattr(self, name)
            if not v or not all(math.isfinite(x) and x > 0 for x in v):
                raise ValueError(f"{name} must be non-empty positive numbers, got {v!r}")


# settings of `compare --diagnose`: small, so the main job stays within its few-minute budget
COMPARE_SETTINGS = DiagnoseSettings(
    n_examples=256,
    batch_size=256,
    k=1,
    tol=1e-2,
    trace_samples=6,
    gammas=(10.0,),
    mc_samples=16,
    langevin=False,
    sigmas=(0.1,),
    energy_samples=8,
)


def parse_what(text: str | Sequence[str]) -> tuple[str, ...]:
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if items == ["all"]:
        return WHAT
    bad = [s for s in items if s not in WHAT]
    if not items or bad:
        raise ValueError(f"--what takes a comma-separated subset of {','.join(WHAT)} (or all), got {text!r}")
    return tuple(w for w in WHAT if w in items)


def _progress(total: int, enabled: bool, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="step", dynamic_ncols=True)


def compute(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    what: Sequence[str] = WHAT,
    settings: DiagnoseSettings | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    progress: bool = False,
    desc: str = "diagnose",
) -> dict[str, Any]:
    """Run the diagnostics ``what`` on ``model`` with the training data ``(x, y)``; a JSON-ready dict whose
    keys always include ``top_eigenvalues``, ``trace``, ``local_entropy`` and ``noise_rank_percent``
    (``None`` where not computed)."""
    s = settings or DiagnoseSettings()
    what = parse_what(list(what))
    n = min(s.n_examples, len(x))
    batches = dg.make_batches(x, y, batch_size=s.batch_size, n=n, seed=s.seed)
    obj = dg.Objective(model, loss_fn, batches)
    stages = [w for w in what]
    bar = _progress(len(stages), progress, desc)
    out: dict[str, Any] = {
        "n_params": obj.p,
        "n_examples": n,
        "loss": obj.loss(),
        "what": list(what),
        "settings": asdict(s),
        "top_eigenvalues": None,
        "trace": None,
        "trace_stderr": None,
        "local_entropy": None,
        "noise_rank_percent": None,
        "timings": {},
    }
    hess = None
    try:
        if "hessian" in what:
            t0 = time.perf_counter()
            bar.set_postfix_str("Lanczos")
            hess = dg.top_eigenpairs(obj, s.k, tol=s.tol, ncv=s.ncv, seed=s.seed)
            bar.set_postfix_str("Hutchinson")
            tr, se = dg.hutchinson_trace_of(obj, s.trace_samples, seed=s.seed)
            bar.set_postfix_str("SLQ")
            q = dg.slq(obj, s.slq_probes, s.slq_steps, seed=s.seed)
            out.update(
                top_eigenvalues=hess.values.tolist(),
                eigen_residuals=hess.residuals.tolist(),
                eigen_hvps=hess.n_hvp,
                trace=tr,
                trace_stderr=se,
                slq_trace=q.trace(),
                slq={"nodes": [a.tolist() for a in q.nodes], "weights": [a.tolist() for a in q.weights]},
            )
            out["timings"]["hessian"] = time.perf_counter() - t0
            bar.update(1)
        if "local-entropy" in what:
            t0 = time.perf_counter()
            bar.set_postfix_str("local entropy (MC)")
            est = dg.local_entropy_mc(obj, s.gammas, s.beta, n_samples=s.mc_samples, seed=s.seed)
            if s.langevin:
                bar.set_postfix_str("local entropy (Langevin)")
                curv = max(float(hess.values[0]), 0.0) if hess is not None else 0.0
                est += dg.local_entropy_langevin(
                    obj,
                    s.gammas,
                    s.beta,
                    n_lambda=s.n_lambda,
                    n_steps=s.langevin_steps,
                    burn_in=s.langevin_burn_in,
                    n_chains=s.langevin_chains,
                    curvature=curv,
                    seed=s.seed,
                )
            bar.set_postfix_str("local energy")
            energy = dg.local_energy(obj, s.sigmas, n_samples=s.energy_samples, seed=s.seed)
            out["local_entropy"] = [e.to_dict() for e in est]
            out["local_energy"] = [e.to_dict() for e in energy]
            out["beta"] = s.beta
            out["timings"]["local-entropy"] = time.perf_counter() - t0
            bar.update(1)
        if "noise" in what:
            t0 = time.perf_counter()
            bar.set_postfix_str("per-sample gradients")
            nn_ = min(s.n_noise, n)
            xs = torch.cat([b[0] for b in batches])[:nn_]
            ys = torch.cat([b[1] for b in batches])[:nn_]
            nobj = dg.Objective(model, loss_fn, dg.make_batches(xs, ys, batch_size=s.batch_size))
            chunk = max(1, min(128, int(2e8 // (4 * obj.p))))
            spec = dg.noise_spectrum(nobj, chunk=chunk)
            summ = spec.summary()
            noise: dict[str, Any] = {
                **summ,
                "top_eigenvalues": spec.eigenvalues[:20].tolist(),
                "eigenvalues": spec.eigenvalues.tolist(),
            }
            if hess is not None and spec.rank > 0:
                bar.set_postfix_str("D vs H")
                noise["vs_hessian"] = dg.compare_with_hessian(nobj, spec, hess, chunk=chunk, hess_obj=obj)
            out["noise"] = noise
            out["noise_rank_percent"] = summ["rank_percent"]
            out["timings"]["noise"] = time.perf_counter() - t0
            bar.update(1)
        if "landscape" in what:
            t0 = time.perf_counter()
            bar.set_postfix_str("landscape")
            d1 = dg.filter_normalized_direction(obj, seed=s.seed)
            d2 = dg.filter_normalized_direction(obj, seed=s.seed + 1)
            r = s.landscape_radius
            a1 = np.linspace(-r, r, s.landscape_points)
            a2 = np.linspace(-r, r, s.landscape_grid)
            out["landscape"] = {
                "alphas": a1.tolist(),
                "values": dg.landscape_1d(obj, d1, a1).tolist(),
                "grid": a2.tolist(),
                "values_2d": dg.landscape_2d(obj, d1, d2, a2, a2).tolist(),
            }
            out["timings"]["landscape"] = time.perf_counter() - t0
            bar.update(1)
    finally:
        bar.close()
    out["cost"] = {"loss_evals": obj.n_loss, "grad_evals": obj.n_grad, "hvps": obj.n_hvp}
    return out


# -- figures -------------------------------------------------------------------------------------------------
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(results: dict[str, Any], out: str | Path, *, title: str = "") -> dict[str, Path]:
    """Figures of :func:`compute`'s results into ``out``: Hessian spectral density, local entropy and energy,
    SGD-noise spectrum, 1-D and 2-D landscape; returns {name: path}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    paths: dict[str, Path] = {}
    if results.get("slq"):
        nodes = [np.array(a) for a in results["slq"]["nodes"]]
        wts = [np.array(a) for a in results["slq"]["weights"]]
        q = dg.SLQResult(nodes, wts, results["n_params"])
        lo, hi = min(a.min() for a in nodes), max(a.max() for a in nodes)
        span = max(hi - lo, 1e-12)
        sigma = span / 200
        grid = np.linspace(lo - 0.05 * span, hi + 0.05 * span, 1000)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.semilogy(grid, np.maximum(q.density(grid, sigma), 1e-12), lw=1.2)
        ax.set_xlabel("Hessian eigenvalue λ")
        ax.set_ylabel(f"density (SLQ, Gaussian width {sigma:.2g})")
        ax.set_ylim(bottom=1e-8)
        ax.set_title(f"Hessian spectral density {title}".strip(), fontsize=9)
        ax.grid(alpha=0.3)
        paths["density"] = out / "hessian_density.png"
        fig.tight_layout()
        fig.savefig(paths["density"], dpi=120)
        plt.close(fig)
    if results.get("local_entropy"):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for method, marker in (("mc", "o"), ("langevin", "s")):
            pts = [e for e in results["local_entropy"] if e["method"] == method]
            if pts:
                ax1.errorbar(
                    [e["param"] for e in pts],
                    [e["value"] for e in pts],
                    yerr=[e["stderr"] for e in pts],
                    marker=marker,
                    capsize=3,
                    label={"mc": "Monte Carlo (Gaussian kernel)", "langevin": "Langevin (TI in λ)"}[method],
                )
        ax1.set_xscale("log")
        ax1.set_xlabel("coupling γ")
        ax1.set_ylabel(f"f_γ(w) − f(w)   (β = {results.get('beta', float('nan')):g})")
        ax1.legend(fontsize=8)
        ax1.grid(alpha=0.3)
        en = results.get("local_energy") or []
        ax2.errorbar(
            [e["param"] for e in en],
            [e["value"] for e in en],
            yerr=[e["stderr"] for e in en],
            marker="o",
            capsize=3,
        )
        ax2.set_xscale("log")
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

        ax2.xaxis.set_major_locator(FixedLocator([e["param"] for e in en]))
        ax2.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax2.xaxis.set_minor_formatter(NullFormatter())
        ax2.set_xlabel("σ (multiplicative noise w + σ z ⊙ w)")
        ax2.set_ylabel("local energy E f(w + σz⊙w) − f(w)")
        ax2.grid(alpha=0.3)
        fig.suptitle(f"local entropy and local energy {title}".strip(), fontsize=9)
        paths["local_entropy"] = out / "local_entropy.png"
        fig.tight_layout()
        fig.savefig(paths["local_entropy"], dpi=120)
        plt.close(fig)
    if results.get("noise"):
        nz = results["noise"]
        lam = np.array(nz["eigenvalues"])
        fig, ax = plt.subplots(figsize=(6, 4))
        pos = lam[lam > 0]
        ax.semilogy(np.arange(1, pos.size + 1), pos, lw=1.2, label="eigenvalues of D (from the N×N Gram)")
        ax.axhline(
            nz["threshold"],
            color="tab:red",
            ls="--",
            lw=1,
            label=f"rank threshold λ_max·N·ε₃₂ → rank {nz['rank']} = {nz['rank_percent']:.3g} % of p",
        )
        if "vs_hessian" in nz:
            vh = nz["vs_hessian"]
            ax.scatter(
                np.arange(1, vh["k"] + 1),
                np.maximum(vh["D_along_hessian"], 1e-30),
                color="tab:green",
                zorder=3,
                s=15,
                label="q_iᵀ D q_i along the top Hessian eigenvectors",
            )
        ax.set_xlabel("index")
        ax.set_ylabel("eigenvalue")
        ax.set_title(
            f"SGD noise spectrum, N = {nz['n_samples']}, p = {nz['n_params']} {title}".strip(), fontsize=9
        )
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        paths["noise"] = out / "noise_spectrum.png"
        fig.tight_layout()
        fig.savefig(paths["noise"], dpi=120)
        plt.close(fig)
    if results.get("landscape"):
        ls = results["landscape"]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        ax1.plot(ls["alphas"], ls["values"], marker="o", ms=3)
        ax1.set_xlabel("α (filter-normalised direction d₁)")
        ax1.set_ylabel("training loss f(w + αd₁)")
        ax1.grid(alpha=0.3)
        g = np.array(ls["grid"])
        v = np.array(ls["values_2d"])
        cs = ax2.contourf(g, g, np.log10(np.maximum(v, 1e-12)), levels=20, cmap="viridis")
        ax2.contour(g, g, np.log10(np.maximum(v, 1e-12)), levels=10, colors="k", linewidths=0.4)
        fig.colorbar(cs, ax=ax2, label="log₁₀ f(w + αd₁ + βd₂)")
        ax2.plot([0], [0], "r+", ms=10)
        ax2.set_xlabel("α")
        ax2.set_ylabel("β")
        fig.suptitle(f"filter-normalised loss landscape {title}".strip(), fontsize=9)
        paths["landscape"] = out / "landscape.png"
        fig.tight_layout()
        fig.savefig(paths["landscape"], dpi=120)
        plt.close(fig)
    return paths


def plot_interpolation(
    ts: Sequence[float],
    curves: dict[str, Sequence[float]],
    path: str | Path,
    *,
    labels: tuple[str, str] = ("SGD", "Entropy-SGD"),
    title: str = "",
) -> Path:
    """Loss (and any other curves) along t ↦ (1 − t) w_a + t w_b."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, vals in curves.items():
        ax.plot(ts, vals, marker="o", ms=3, label=name)
    ax.axvline(0, color="k", lw=0.5)
    ax.axvline(1, color="k", lw=0.5)
    ax.set_yscale("log")
    ax.set_xlabel(f"t   (0: {labels[0]}, 1: {labels[1]})")
    ax.set_ylabel("loss at (1 − t) w_a + t w_b")
    ax.set_title(title or f"linear interpolation {labels[0]} ↔ {labels[1]}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# -- markdown ------------------------------------------------------------------------------------------------
def _fmt(v: float | None, spec: str = ".4g") -> str:
    return "–" if v is None else format(v, spec)


def summarise(
    results: dict[str, Any], *, title: str = "diagnostics", figures: dict[str, Path] | None = None
) -> str:
    """The markdown section of one diagnosis."""
    r = results
    lines = [
        f"## {title}",
        "",
        f"Objective: mean cross-entropy over {r['n_examples']} training examples (seeded subset), eval mode, "
        f"BatchNorm statistics frozen; p = {r['n_params']:,} parameters; f(w) = {r['loss']:.4g}.",
        "",
    ]
    if r.get("top_eigenvalues") is not None:
        lines += [
            f"- **Hessian**: top eigenvalues {', '.join(f'{v:.4g}' for v in r['top_eigenvalues'])} "
            f"(ARPACK, residuals ≤ {max(r['eigen_residuals']):.2g}, {r['eigen_hvps']} HVPs); trace "
            f"{r['trace']:.4g} ± {r['trace_stderr']:.2g} (Hutchinson, {r['settings']['trace_samples']} "
            f"probes; SLQ: {r['slq_trace']:.4g})."
        ]
    if r.get("local_entropy") is not None:
        le = "; ".join(
            f"γ = {e['param']:g} ({e['method']}): {e['value']:.4g} ± {e['stderr']:.2g}"
            for e in r["local_entropy"]
        )
        en = "; ".join(f"σ = {e['param']:g}: {e['value']:.4g} ± {e['stderr']:.2g}" for e in r["local_energy"])
        lines += [
            f"- **Local entropy** f_γ(w) − f(w) at β = {r['beta']:g}: {le}.",
            f"- **Local energy** E f(w + σ z⊙w) − f(w): {en}.",
        ]
    if r.get("noise") is not None:
        nz = r["noise"]
        lines += [
            f"- **SGD noise** D over N = {nz['n_samples']} per-sample gradients: numerical rank "
            f"{nz['rank']} = {nz['rank_percent']:.3g} % of p (bound (N − 1)/p = "
            f"{nz['rank_bound_percent']:.3g} %); λ_max(D) = {nz['lambda_max']:.3g}, eigenvalues above the "
            f"threshold {nz['eig_mean_above_threshold']:.3g} ± {nz['eig_std_above_threshold']:.3g}; tr D = "
            f"{nz['trace']:.3g}; anisotropy λ_max / (tr D / p) = {nz['anisotropy']:.3g}; effective rank "
            f"(tr D)²/tr D² = {nz['effective_rank']:.3g}."
        ]
        if "vs_hessian" in nz:
            vh = nz["vs_hessian"]
            lines += [
                f"- **D vs H** (top {vh['k']}): λ(H) {', '.join(f'{v:.3g}' for v in vh['hessian_eigs'])}; "
                f"qᵀDq along them {', '.join(f'{v:.3g}' for v in vh['D_along_hessian'])} (ratio "
                f"{', '.join(f'{v:.3g}' for v in vh['ratio_D_over_H'])}); uᵀHu along D's top "
                f"eigenvectors {', '.join(f'{v:.3g}' for v in vh['H_along_noise'])}; subspace overlap "
                f"{vh['overlap']:.3g} (random: {vh['overlap_random']:.2g})."
            ]
    if r.get("landscape") is not None:
        v = r["landscape"]["values"]
        lines += [
            f"- **Landscape** (filter-normalised, α ∈ [{r['landscape']['alphas'][0]:g}, "
            f"{r['landscape']['alphas'][-1]:g}]): f from {min(v):.4g} to {max(v):.4g}."
        ]
    t = r.get("timings", {})
    lines += ["", "Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in t.items()) + "."]
    for name, path in (figures or {}).items():
        lines += ["", f"![{name}]({Path(path).name})"]
    return "\n".join(lines) + "\n"


# -- run folders ---------------------------------------------------------------------------------------------
def load_run(
    run_dir: str | Path, *, data_dir: str | None = None
) -> tuple[nn.Module, dict[str, Any], Any, list]:
    """(model with the checkpoint's weights, config dict, training data set, history) of a run folder."""
    from deeprelax.experiments.train import CHECKPOINT
    from deeprelax.nets import create_model
    from deeprelax.nets.datasets import load_dataset

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a folder")
    ckpt = run_dir / CHECKPOINT
    if not ckpt.exists():
        raise ValueError(
            f"{run_dir} has no {CHECKPOINT} (not a run folder of deeprelax train/compare/table1?)"
        )
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot read {ckpt}: {exc}") from exc
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"{ckpt} is not a deeprelax training checkpoint (no 'model'/'config' entries)")
    cfg = dict(state["config"])
    model = create_model(cfg["model"], **cfg.get("model_options", {}))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ValueError(
            f"{ckpt}: the weights do not fit {cfg['model']} {cfg.get('model_options')}: {exc}"
        ) from exc
    data = load_dataset(cfg["data"], data_dir or cfg.get("data_dir"), progress=False)
    if cfg.get("n_train") or cfg.get("n_test"):
        data = data.subset(cfg.get("n_train"), cfg.get("n_test"))
    return model, cfg, data, list(state.get("history", []))


def diagnose_run(
    run_dir: str | Path,
    *,
    what: Sequence[str] = WHAT,
    settings: DiagnoseSettings | None = None,
    data_dir: str | None = None,
    out: str | Path | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], Path]:
    """Diagnose a run folder: writes ``OUT/diagnostics.json``, the figures and ``OUT/diagnostics.md``
    (``OUT`` default ``RUN_DIR/diagnostics``); returns (results, markdown path)."""
    from deeprelax.experiments.train import atomic_write_text

    model, cfg, data, history = load_run(run_dir, data_dir=data_dir)
    res = compute(
        model,
        data.x_train,
        data.y_train,
        what=what,
        settings=settings,
        progress=progress,
        desc=f"diagnose {cfg['model']}/{cfg['optimizer']}",
    )
    res["run"] = {
        "dir": str(run_dir),
        "model": cfg["model"],
        "optimizer": cfg["optimizer"],
        "data": cfg["data"],
        "epochs": history[-1]["epoch"] if history else 0,
        "final_error": history[-1]["test_error"] if history else None,
        "best_error": min(h["test_error"] for h in history) if history else None,
    }
    out = Path(out) if out is not None else Path(run_dir) / "diagnostics"
    out.mkdir(parents=True, exist_ok=True)
    title = f"{cfg['model']} / {cfg['optimizer']}"
    figs = plot(res, out, title=f"({title})")
    atomic_write_text(out / JSON_NAME, json.dumps(res, indent=1) + "\n")
    err = res["run"]["final_error"]
    md = summarise(
        res, title=f"Diagnostics of {run_dir} ({title}, final test error {_fmt(err, '.2f')} %)", figures=figs
    )
    atomic_write_text(out / MD_NAME, md)
    return res, out / MD_NAME


def _diagnose_compare_one(run_dir: str, settings: dict[str, Any], threads: int | None) -> dict[str, Any]:
    """One optimizer of :func:`diagnose_compare` (a top-level function, so that it runs in a subprocess)."""
    if threads:
        torch.set_num_threads(threads)
    s = DiagnoseSettings(**settings)
    model, _, data, _ = load_run(run_dir)
    # the hook needs no spectral density: make that part trivial; one γ and one σ
    s = replace(s, slq_probes=1, slq_steps=1, gammas=s.gammas[:1], sigmas=s.sigmas[:1])
    r = compute(model, data.x_train, data.y_train, what=("hessian", "local-entropy"), settings=s)
    le = r["local_entropy"][0]
    return {
        "loss": r["loss"],
        "top_eigenvalue": r["top_eigenvalues"][0],
        "trace": r["trace"],
        "trace_stderr": r["trace_stderr"],
        "local_entropy": le["value"],
        "local_entropy_stderr": le["stderr"],
        "local_entropy_ess": le["ess"],
        "gamma": le["param"],
        "beta": s.beta,
        "local_energy": r["local_energy"][0]["value"],
        "local_energy_stderr": r["local_energy"][0]["stderr"],
        "sigma": r["local_energy"][0]["param"],
        "hvps": r["cost"]["hvps"],
        "wall_time": sum(r["timings"].values()),
    }


def diagnose_compare(
    out: str | Path,
    results: dict[str, Any],
    configs: dict[str, Any],
    *,
    settings: DiagnoseSettings | None = None,
    jobs: int = 1,
    threads: int | None = 1,
    log: Any = print,
) -> dict[str, Any]:
    """The hook of ``compare --diagnose``: per optimizer the top Hessian eigenvalue, the trace and the local
    entropy at the final weights, and the SGD ↔ Entropy-SGD interpolation; writes ``OUT/diagnostics.json``,
    ``OUT/interpolation.png`` and appends a section to ``OUT/report.md``. Returns the rows and paths.
    ``settings`` default: :data:`COMPARE_SETTINGS`; ``jobs`` optimizers are diagnosed at a time (separate
    processes with ``threads`` torch threads each, as the training runs of ``compare``)."""
    settings = settings if settings is not None else COMPARE_SETTINGS
    from deeprelax.experiments.plots import LABELS
    from deeprelax.experiments.train import atomic_write_text

    out = Path(out)
    t0 = time.perf_counter()
    sdict = asdict(settings)
    if jobs <= 1:
        found = {name: _diagnose_compare_one(str(out / name), sdict, None) for name in results}
    else:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futs = {
                name: pool.submit(_diagnose_compare_one, str(out / name), sdict, threads) for name in results
            }
            found = {name: f.result() for name, f in futs.items()}
    rows: dict[str, dict[str, Any]] = {}
    for name, r in found.items():
        s = results[name]["summary"]
        rows[name] = {"optimizer": name, "final_error": s["final_error"], "best_error": s["best_error"], **r}
        if log:
            log(f"  diagnosed {name}: λ_max {r['top_eigenvalue']:.3g}, trace {r['trace']:.3g}")
    models: dict[str, nn.Module] = {}
    data = None
    for name in ("sgd", "entropy-sgd"):
        if name in results:
            models[name], _, data, _ = load_run(out / name)
    interp = None
    if "sgd" in models and "entropy-sgd" in models and data is not None:
        ts = np.linspace(-0.25, 1.25, 13)
        batches = dg.make_batches(
            data.x_train,
            data.y_train,
            batch_size=settings.batch_size,
            n=min(settings.n_examples, len(data.x_train)),
            seed=settings.seed,
        )
        vals = dg.interpolate(models["sgd"], models["entropy-sgd"], F.cross_entropy, batches, ts)
        curves = {"training loss (subset)": vals.tolist()}
        path = plot_interpolation(ts.tolist(), curves, out / "interpolation.png")
        interp = {"ts": ts.tolist(), "loss": vals.tolist(), "figure": path.name}
    wall = time.perf_counter() - t0
    payload: dict[str, Any] = {
        "rows": list(rows.values()),
        "interpolation": interp,
        "settings": asdict(settings),
        "wall_time": wall,
    }
    atomic_write_text(out / JSON_NAME, json.dumps(payload, indent=1) + "\n")
    lines = [
        "",
        "## Flatness at the final weights (`--diagnose`)",
        "",
        f"On {settings.n_examples} training examples (seeded subset), eval mode, BatchNorm frozen; local "
        f"entropy f_γ(w) − f(w) by Monte Carlo at β = {settings.beta:g}, γ = {settings.gammas[0]:g} "
        f"and local energy E f(w + σz⊙w) − f(w) at σ = {settings.sigmas[0]:g} (smaller = wider valley; the "
        f"local energy is unchanged by the weight rescalings that leave the network's function unchanged, "
        f"the Hessian figures are not). {wall:.0f} s.",
        "",
        "| optimizer | final error (%) | training loss | top Hessian eigenvalue | trace (Hutchinson) | "
        "local entropy | local energy |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        lines.append(
            f"| {LABELS.get(r['optimizer'], r['optimizer'])} | {r['final_error']:.2f} | {r['loss']:.4g} | "
            f"{r['top_eigenvalue']:.4g} | {r['trace']:.4g} ± {r['trace_stderr']:.2g} | "
            f"{r['local_entropy']:.4g} ± {r['local_entropy_stderr']:.2g} | "
            f"{r['local_energy']:.4g} ± {r['local_energy_stderr']:.2g} |"
        )
    if interp:
        lines += ["", "![interpolation SGD ↔ Entropy-SGD](interpolation.png)"]
    md = "\n".join(lines) + "\n"
    report = out / "report.md"
    if report.exists():
        atomic_write_text(report, report.read_text() + md)
    payload["markdown"] = md
    return payload


__all__ = [
    "COMPARE_SETTINGS",
    "WHAT",
    "DiagnoseSettings",
    "compute",
    "diagnose_compare",
    "diagnose_run",
    "load_run",
    "parse_what",
    "plot",
    "plot_interpolation",
    "summarise",
]
