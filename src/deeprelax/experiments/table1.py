"""Table 1 of Deep Relaxation: one cell = one network × one optimizer, several seeds, read two ways.

Each cell has config files ``configs/table1-<model>-<optimizer>[-<variant>].json`` (shipped with the
package) holding the paper's number for the cell, the training configuration (a
:class:`~deeprelax.experiments.train.TrainConfig`) and notes saying where each value comes from. Variant
``ours`` (no suffix) is our configuration at exactly the paper's effective-epoch budget; ``authors`` follows
the authors' code where it differs from ours (see ``docs/training.md``), and runs longer where they did.

Every cell is reported in two readings (:func:`readings`):

* **final** (the honest one): the validation error at the end of the budget, mean ± sample standard
  deviation (ddof = 1) over the seeds;
* **paper** (how Table 1 is most likely read): the minimum over epochs of the *seed-averaged* per-epoch
  test-error curve, the effective epoch where it occurs, and the spread across seeds at that epoch. It picks
  the epoch on the test set (the authors validate on the test set), so it is optimistic by construction.

``run_cell`` trains every seed into ``out/seed<k>`` (a seed whose ``result.json`` exists is not retrained;
an interrupted one resumes from its checkpoint) and aggregates them into a row.
"""

from __future__ import annotations

import importlib.resources
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deeprelax.experiments.runfiles import atomic_write_text
from deeprelax.experiments.train import TrainConfig, train

MODELS = ("mnistfc", "lenet", "allcnn")
OPTIMIZERS = ("sgd", "entropy-sgd", "hj", "heat")
VARIANTS = ("ours", "authors")
COLUMNS = {"entropy-sgd": "Entropy-SGD", "heat": "HEAT", "hj": "HJ", "sgd": "SGD"}
# "HJ improves the training time": effective epochs for the seed-averaged curve to reach these errors (%)
REACH = {"lenet": 0.60, "mnistfc": 1.20}
SELECTION_NOTE = (
    "The paper's reading (minimum of the seed-averaged per-epoch test-error curve, at the "
    "effective epoch where it occurs) selects the epoch on the test set, so it is optimistic; "
    "the final error at the budget is the honest reading."
)


def config_path(model: str, optimizer: str, variant: str = "ours") -> Path:
    suffix = "" if variant == "ours" else f"-{variant}"
    return Path(
        str(
            importlib.resources.files("deeprelax")
            / "experiments"
            / "configs"
            / f"table1-{model}-{optimizer}{suffix}.json"
        )
    )


def variants_of(model: str, optimizer: str) -> list[str]:
    """The variants shipped for a cell (``ours`` always)."""
    return [v for v in VARIANTS if config_path(model, optimizer, v).exists()]


def load_cell(model: str, optimizer: str, variant: str = "ours") -> dict[str, Any]:
    """The cell's config document: ``{"cell", "paper", "notes", "train"}`` (+ ``"variant"``)."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    path = config_path(model, optimizer, variant)
    if not path.exists():
        raise ValueError(
            f"no {variant!r} variant for {model}/{optimizer} (shipped: "
            f"{', '.join(variants_of(model, optimizer))}); docs/training.md says why"
        )
    doc = json.loads(path.read_text())
    doc.setdefault("variant", variant)
    TrainConfig.from_dict(doc["train"])  # validate now, not after hours of training
    return doc


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
    vals = list(values)
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The per-epoch records of a ``log.jsonl`` (a header record, as in exported logs, is skipped)."""
    records = [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]
    return [r for r in records if "header" not in r]


def mean_curve(curves: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The seed-averaged test-error curve over the epochs every seed reached.

    Each curve is a list of per-epoch records (``epoch``, ``effective_epochs``, ``test_error``, optionally
    ``grad_evals``). Returns one record per common epoch: ``epoch``, ``effective_epochs``, ``grad_evals``,
    ``mean`` and ``std`` (ddof = 1) of the test error across seeds, and the per-seed ``errors``.
    """
    if not curves or any(not c for c in curves):
        return []
    by_epoch = [{r["epoch"]: r for r in c} for c in curves]
    common = sorted(set.intersection(*(set(b) for b in by_epoch)))
    out = []
    for e in common:
        recs = [b[e] for b in by_epoch]
        errors = [float(r["test_error"]) for r in recs]
        m, s = mean_std(errors)
        out.append(
            {
                "epoch": e,
                "effective_epochs": recs[0]["effective_epochs"],
                "grad_evals": recs[0].get("grad_evals"),
                "mean": m,
                "std": s,
                "errors": errors,
            }
        )
    return out


def paper_reading(curves: Sequence[Sequence[dict[str, Any]]]) -> dict[str, Any]:
    """Minimum of the seed-averaged curve (earliest epoch on ties), its effective epoch, the spread there."""
    mc = mean_curve(curves)
    if not mc:
        return {
            "paper_min": None,
            "paper_min_epoch": None,
            "paper_min_effective_epoch": None,
            "paper_min_std": None,
            "curve_epochs": 0,
        }
    # round before comparing so that float noise in the mean does not break ties between equal errors
    best = min(mc, key=lambda r: (round(r["mean"], 9), r["epoch"]))
    return {
        "paper_min": best["mean"],
        "paper_min_epoch": best["epoch"],
        "paper_min_effective_epoch": best["effective_epochs"],
        "paper_min_std": best["std"],
        "curve_epochs": len(mc),
    }


def reach(curves: Sequence[Sequence[dict[str, Any]]], threshold: float | None) -> dict[str, Any]:
    """First epoch at which the seed-averaged curve is at or below ``threshold`` (None if it never is)."""
    hit = None
    if threshold is not None:
        hit = next((r for r in mean_curve(curves) if round(r["mean"], 9) <= threshold), None)
    return {
        "reach_threshold": threshold,
        "reach_effective_epoch": hit["effective_epochs"] if hit else None,
        "reach_grad_evals": hit["grad_evals"] if hit else None,
    }


def readings(
    model: str, curves: Sequence[Sequence[dict[str, Any]]], finals: Sequence[float] | None = None
) -> dict[str, Any]:
    """Both readings of one cell from its per-seed curves (``finals`` default to each curve's last error)."""
    if finals is None:
        finals = [c[-1]["test_error"] for c in curves]
    final_mean, final_std = mean_std(finals) if finals else (None, None)
    return {
        "final_mean": final_mean,
        "final_std": final_std,
        "per_seed_final": list(finals),
        **paper_reading(curves),
        **reach(curves, REACH.get(model)),
    }


def run_cell(
    model: str,
    optimizer: str,
    seeds: Sequence[int],
    out: str | Path,
    *,
    variant: str = "ours",
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Train the cell for every seed (skipping finished ones) and aggregate; returns the row dict."""
    doc = load_cell(model, optimizer, variant)
    out = Path(out)
    summaries, curves = [], []
    for seed in seeds:
        cfg = TrainConfig.from_dict({**doc["train"], **(overrides or {}), "seed": int(seed)})
        run_dir = out / f"seed{seed}"
        done = run_dir / "result.json"
        if done.exists() and json.loads((run_dir / "config.json").read_text()) == cfg.to_dict():
            if log:
                log(f"{doc['cell']} ({variant}) seed {seed}: finished earlier, reading {done}")
            summaries.append(json.loads(done.read_text()))
        else:
            if log:
                log(f"{doc['cell']} ({variant}) seed {seed}: training into {run_dir}")
            summaries.append(train(cfg, run_dir, resume=True, progress=progress, log=log).summary())
        curves.append(read_log(run_dir / "log.jsonl"))
    row = aggregate(doc, summaries, curves)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "row.json", json.dumps(row, indent=2) + "\n")
    atomic_write_text(out / "row.md", markdown_table([row]) + "\n" + SELECTION_NOTE + "\n")
    return row


def aggregate(
    doc: dict[str, Any], summaries: Sequence[dict[str, Any]], curves: Sequence[Sequence[dict[str, Any]]]
) -> dict[str, Any]:
    """One row: both readings of the seeds' runs next to the paper's number."""
    model = doc["train"]["model"]
    return {
        "cell": doc["cell"],
        "model": model,
        "optimizer": doc["train"]["optimizer"],
        "variant": doc.get("variant", "ours"),
        "data": summaries[0].get("data", doc["train"]["data"]) if summaries else doc["train"]["data"],
        "seeds": [s["seed"] for s in summaries],
        **readings(model, curves, [s["final_error"] for s in summaries]),
        "effective_epochs": summaries[0]["effective_epochs"],
        "grad_evals": summaries[0]["grad_evals"],
        "wall_time_mean": statistics.fmean(s["wall_time"] for s in summaries),
        "paper_value": doc["paper"]["error"],
        "paper_std": doc["paper"]["std"],
        "paper_effective_epochs": doc["paper"]["effective_epochs"],
    }


def fmt_spread(mean: float | None, std: float | None, n: int) -> str:
    """``mean ± std``, or the mean alone for one seed (no spread to report), ``–`` for nothing."""
    if mean is None:
        return "–"
    return f"{mean:.2f}" + (f" ± {std:.2f}" if n > 1 else "")


HEADER = (
    "| model | optimizer | variant | seeds | final error (%) @ eff. epochs "
    "| paper's reading: min of mean curve (%) @ eff. epoch | paper (%) @ eff. epochs "
    "| eff. epochs to reach | wall time / seed |"
)


def markdown_row(r: dict[str, Any]) -> str:
    n = len(r["seeds"])
    paper_min = fmt_spread(r["paper_min"], r["paper_min_std"], n)
    if r["paper_min"] is not None:
        paper_min += f" @ {r['paper_min_effective_epoch']}"
    reached = (
        "–"
        if r.get("reach_threshold") is None
        else (
            f"{r['reach_threshold']:.2f} % @ "
            + (
                str(r["reach_effective_epoch"])
                if r["reach_effective_epoch"] is not None
                else "not yet"
                if r.get("complete") is False
                else "never"
            )
        )
    )
    return (
        f"| {r['model']} | {COLUMNS.get(r['optimizer'], r['optimizer'])} | {r['variant']} | {n} "
        f"| {fmt_spread(r['final_mean'], r['final_std'], n)} @ {r['effective_epochs']} | {paper_min} "
        f"| {r['paper_value']:.2f} ± {r['paper_std']:.2f} @ {r['paper_effective_epochs']} | {reached} "
        f"| {r['wall_time_mean'] / 60:.1f} min |"
    )


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as a markdown table: both readings (mean ± std over seeds) next to the paper's number."""
    return "\n".join([HEADER, "|" + "---|" * HEADER.count(" | ") + "---|", *map(markdown_row, rows)]) + "\n"
