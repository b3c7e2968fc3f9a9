"""Table 1 of Deep Relaxation: one cell = one network × one optimizer, several seeds, mean ± std.

Each cell has a config file ``configs/table1-<model>-<optimizer>.json`` (shipped with the package) holding
the paper's number for the cell, the training configuration (a
:class:`~deeprelax.experiments.train.TrainConfig`) with the paper's hyperparameters and schedule where
published, and notes saying where a value is ours.

``run_cell`` trains every seed into ``out/seed<k>`` (a seed whose ``result.json`` exists is not retrained;
an interrupted one resumes from its checkpoint), then reports the final validation error as mean ± sample
standard deviation (ddof = 1) over the seeds, at the configured effective epochs, next to the paper's number.
"""

from __future__ import annotations

import importlib.resources
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deeprelax.experiments.train import TrainConfig, train

MODELS = ("mnistfc", "lenet", "allcnn")
OPTIMIZERS = ("sgd", "entropy-sgd", "hj", "heat")
COLUMNS = {"entropy-sgd": "Entropy-SGD", "heat": "HEAT", "hj": "HJ", "sgd": "SGD"}


def config_path(model: str, optimizer: str) -> Path:
    return Path(str(importlib.resources.files("deeprelax") / "experiments" / "configs"
                    / f"table1-{model}-{optimizer}.json"))


def load_cell(model: str, optimizer: str) -> dict[str, Any]:
    """The cell's config document: ``{"cell", "paper", "notes", "train"}``."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    doc = json.loads(config_path(model, optimizer).read_text())
    TrainConfig.from_dict(doc["train"])  # validate now, not after hours of training
    return doc


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
    vals = list(values)
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def run_cell(model: str, optimizer: str, seeds: Sequence[int], out: str | Path, *,
             overrides: dict[str, Any] | None = None, progress: bool = True,
             log: Any = print) -> dict[str, Any]:
    """Train the cell for every seed (skipping finished ones) and aggregate; returns the row dict."""
    doc = load_cell(model, optimizer)
    out = Path(out)
    summaries = []
    for seed in seeds:
        cfg = TrainConfig.from_dict({**doc["train"], **(overrides or {}), "seed": int(seed)})
        run_dir = out / f"seed{seed}"
        done = run_dir / "result.json"
        if done.exists() and json.loads((run_dir / "config.json").read_text()) == cfg.to_dict():
            if log:
                log(f"{doc['cell']} seed {seed}: finished earlier, reading {done}")
            summaries.append(json.loads(done.read_text()))
            continue
        if log:
            log(f"{doc['cell']} seed {seed}: training into {run_dir}")
        summaries.append(train(cfg, run_dir, resume=True, progress=progress, log=log).summary())
    row = aggregate(doc, summaries)
    out.mkdir(parents=True, exist_ok=True)
    (out / "row.json").write_text(json.dumps(row, indent=2) + "\n")
    (out / "row.md").write_text(markdown_table([row]))
    return row


def aggregate(doc: dict[str, Any], summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    final_mean, final_std = mean_std([s["final_error"] for s in summaries])
    best_mean, best_std = mean_std([s["best_error"] for s in summaries])
    return {
        "cell": doc["cell"], "model": doc["train"]["model"], "optimizer": doc["train"]["optimizer"],
        "data": summaries[0].get("data", doc["train"]["data"]) if summaries else doc["train"]["data"],
        "seeds": [s["seed"] for s in summaries], "final_error_mean": final_mean, "final_error_std": final_std,
        "best_error_mean": best_mean, "best_error_std": best_std,
        "effective_epochs": summaries[0]["effective_epochs"], "grad_evals": summaries[0]["grad_evals"],
        "wall_time_mean": statistics.fmean(s["wall_time"] for s in summaries),
        "paper_error": doc["paper"]["error"], "paper_std": doc["paper"]["std"],
        "paper_effective_epochs": doc["paper"]["effective_epochs"],
        "per_seed_final": [s["final_error"] for s in summaries],
    }


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as a markdown table: ours (final and best error, mean ± std) next to the paper's."""
    lines = ["| model | optimizer | seeds | final error (%) @ eff. epochs | best error (%) "
             "| paper (%) @ eff. epochs | wall time / seed |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        spread = len(r["seeds"]) > 1  # one seed: no standard deviation to report
        final = f"{r['final_error_mean']:.2f}" + (f" ± {r['final_error_std']:.2f}" if spread else "")
        best = f"{r['best_error_mean']:.2f}" + (f" ± {r['best_error_std']:.2f}" if spread else "")
        lines.append(
            f"| {r['model']} | {COLUMNS.get(r['optimizer'], r['optimizer'])} | {len(r['seeds'])} "
            f"| {final} @ {r['effective_epochs']} | {best} "
            f"| {r['paper_error']:.2f} ± {r['paper_std']:.2f} @ {r['paper_effective_epochs']} "
            f"| {r['wall_time_mean'] / 60:.1f} min |")
    return "\n".join(lines) + "\n"
