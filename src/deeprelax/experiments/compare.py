"""The main job: SGD, Entropy-SGD, HJ and HEAT side by side at equal effective-epoch budgets.

Every optimizer trains the same network on the same data from the same initial weights (same seed) for the
same budget B of *effective epochs* (epochs × max(L, 1), the paper's Table-1 unit): SGD runs B epochs, an
optimizer with L inner steps runs B / L epochs. The true cost differs slightly — an outer step of a
relaxation optimizer costs L + 1 gradient evaluations — and the table reports it (gradient evaluations and
wall time) next to the final and best validation errors.

The settings (network, data, budget, each optimizer's hyperparameters and learning-rate schedule) live in
``configs/compare.json``; schedules there are written as *fractions of the budget* (``{"0": 0.1, "0.5":
0.02}`` = lr 0.1, then 0.02 from half-way), so that ``--budget`` rescales them. The runs go to separate
processes (``jobs`` at a time, one torch thread each), which on a 2-core machine is about twice as fast as
running them one after the other.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from deeprelax.experiments.runfiles import RUN_FILES, RunLock, atomic_savefig
from deeprelax.experiments.train import TrainConfig, atomic_write_text
from deeprelax.optim import REGISTRY
from deeprelax.optim import get as get_optimizer

ORDER = tuple(REGISTRY)  # the registry's order: sgd, entropy-sgd, hj, heat, elastic-sgd, parle


def default_config_path() -> Path:
    return Path(str(importlib.resources.files("deeprelax") / "experiments" / "configs" / "compare.json"))


def load_compare_config(path: str | Path | None = None) -> dict[str, Any]:
    """The compare settings (default: the packaged ``configs/compare.json``). A missing file is the
    ``OSError``; a file that is not JSON, or lacks ``budget`` / ``optimizers``, is a ``ValueError`` naming
    it."""
    path = Path(path or default_config_path())
    raw = path.read_bytes()
    try:
        doc = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise ValueError(f"compare settings {path} are not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("optimizers"), dict) or "budget" not in doc:
        raise ValueError(
            f'compare settings {path}: expected a JSON object with "budget" and '
            f'"optimizers" (see {default_config_path()})'
        )
    for name, opt in doc["optimizers"].items():
        if not isinstance(opt, dict) or not isinstance(opt.get("hparams"), dict):
            raise ValueError(f'compare settings {path}: optimizers.{name} needs an "hparams" object')
    return doc


def build_configs(
    settings: dict[str, Any],
    *,
    optimizers: Sequence[str] | None = None,
    budget: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, TrainConfig]:
    """One :class:`TrainConfig` per optimizer, all at the same effective-epoch budget."""
    budget = int(budget if budget is not None else settings["budget"])
    if budget < 1:
        raise ValueError(f"budget must be a positive number of effective epochs, got {budget!r}")
    names = list(optimizers or settings["optimizers"])
    unknown = [n for n in names if n not in settings["optimizers"]]
    if unknown:
        raise ValueError(
            f"no compare settings for optimizer(s) {unknown}; known: {sorted(settings['optimizers'])}"
        )
    common = {k: v for k, v in settings.items() if k not in ("budget", "optimizers", "notes")}
    common.update(overrides or {})
    configs = {}
    for name in names:
        opt = settings["optimizers"][name]
        L = get_optimizer(name).inner_steps(opt["hparams"])  # the optimizer's own default L if not given
        per_epoch = max(L, 1)
        if budget % per_epoch:
            raise ValueError(
                f"budget {budget} is not a multiple of L = {L} for {name}; choose a budget that "
                f"every optimizer's L divides"
            )
        epochs = budget // per_epoch
        # a fraction f of the budget starts at the first epoch k with k / epochs >= f
        schedule = {
            math.ceil(float(frac) * epochs - 1e-9): lr
            for frac, lr in sorted(opt.get("lr_schedule", {}).items(), key=lambda kv: float(kv[0]))
        }
        schedule = {k: lr for k, lr in schedule.items() if k < epochs}
        configs[name] = TrainConfig.from_dict(
            {
                **common,
                "optimizer": name,
                "hparams": dict(opt["hparams"]),
                "epochs": epochs,
                "lr_schedule": schedule or None,
            }
        )
    return configs


def _train_one(cfg_dict: dict[str, Any], out: str, threads: int | None) -> dict[str, Any]:
    import torch

    from deeprelax.experiments.train import train

    if threads:
        torch.set_num_threads(threads)
    result = train(TrainConfig.from_dict(cfg_dict), out, progress=False, log=None)
    return {"summary": result.summary(), "history": result.history}


def run_compare(
    configs: dict[str, TrainConfig],
    out: str | Path,
    *,
    jobs: int = 2,
    threads: int | None = 1,
    log: Any = print,
    diagnose: bool = False,
) -> dict[str, Any]:
    """Train every configuration (``jobs`` processes at a time) and write the table, plot and report;
    ``diagnose`` adds the flatness diagnostics of :func:`deeprelax.experiments.diagnose.diagnose_compare`."""
    out = Path(out)
    report = (lambda msg: log(f"WARNING: {msg}")) if log else None
    with RunLock(out, what="compare run", report=report):  # held until the report is written
        return _run_compare_locked(configs, out, jobs=jobs, threads=threads, log=log, diagnose=diagnose)


def _run_compare_locked(
    configs: dict[str, TrainConfig], out: Path, *, jobs: int, threads: int | None, log: Any, diagnose: bool
) -> dict[str, Any]:
    if (out / "results.json").exists():
        raise FileExistsError(f"{out} holds an earlier compare run (results.json); choose another --out")
    for name in configs:
        earlier = [n for n in (*RUN_FILES, "checkpoint.pt") if (out / name / n).exists()]
        if earlier:
            raise FileExistsError(
                f"{out / name} holds an earlier run ({', '.join(earlier)}); choose another --out or delete it"
            )
    t0 = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    if jobs <= 1:
        for name, cfg in configs.items():
            results[name] = _train_one(cfg.to_dict(), str(out / name), threads)
            if log:
                log(_done_line(name, results[name]["summary"]))
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {
                name: pool.submit(_train_one, cfg.to_dict(), str(out / name), threads)
                for name, cfg in configs.items()
            }
            for name, fut in futures.items():
                results[name] = fut.result()
                if log:
                    log(_done_line(name, results[name]["summary"]))
    total = time.perf_counter() - t0
    ordered = {n: results[n] for n in ORDER if n in results}
    ordered |= {n: r for n, r in results.items() if n not in ORDER}
    report = write_report(ordered, configs, out, total_wall=total, jobs=jobs)
    res = {"results": ordered, "total_wall_time": total, "report": report}
    if diagnose:
        from deeprelax.experiments.diagnose import diagnose_compare

        res["diagnostics"] = diagnose_compare(out, ordered, configs, jobs=jobs, threads=threads, log=log)
    return res


def _done_line(name: str, s: dict[str, Any]) -> str:
    return (
        f"  {name:12s} done: final error {s['final_error']:.2f} %, best {s['best_error']:.2f} %, "
        f"{s['wall_time']:.0f} s"
    )


def table_rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [r["summary"] for r in results.values()]


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    from deeprelax.experiments.plots import LABELS

    lines = [
        "| optimizer | L | epochs | effective epochs | gradient evaluations | final error (%) | "
        "best error (%) @ eff. epochs | wall time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        lines.append(
            f"| {LABELS.get(s['optimizer'], s['optimizer'])} | {s['L']} | {s['epochs']} | "
            f"{s['effective_epochs']} | {s['grad_evals']:,} | {s['final_error']:.2f} | "
            f"{s['best_error']:.2f} @ {s['best_effective_epochs']} | {s['wall_time']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def write_report(
    results: dict[str, dict[str, Any]],
    configs: dict[str, TrainConfig],
    out: Path,
    *,
    total_wall: float,
    jobs: int,
) -> Path:
    from deeprelax.experiments.plots import plot_runs

    first = next(iter(configs.values()))
    rows = table_rows(results)
    budget = rows[0]["effective_epochs"] if rows else 0
    title = (
        f"{first.model} on {first.data}: validation error at equal budgets of {budget} effective "
        f"epochs (seed {first.seed})"
    )
    atomic_savefig(
        lambda tmp: plot_runs({n: r["history"] for n, r in results.items()}, tmp, title=title),
        out / "compare.png",
    )
    n_train = rows[0]["n_train"] if rows else 0
    settings = "\n".join(
        f"- **{n}**: `{json.dumps(c.hparams)}`, {c.epochs} epochs, lr schedule (epoch: lr) "
        f"`{json.dumps(c.lr_schedule) if c.lr_schedule else 'constant'}`"
        for n, c in configs.items()
    )
    drawn = "with replacement" if first.sampling == "replacement" else "by shuffled passes"
    text = (
        f"# deeprelax compare\n\n{title}.\n\n"
        f"Network `{first.model}` {json.dumps(first.model_options)}, data `{first.data}` "
        f"({n_train} training images), batch {first.batch_size}, minibatches drawn {drawn}, "
        f"{first.steps_per_epoch or 'ceil(N/batch)'} outer steps per epoch, BatchNorm dry feed of "
        f"{first.dry_feed_batches or 'all'} batches before each evaluation on the test split.\n\n"
        + markdown_table(rows)
        + f"\nTotal wall time {total_wall:.0f} s ({jobs} run(s) at a time, {os.cpu_count()} CPUs). "
        "Effective epochs = epochs × max(L, 1); a relaxation step costs L + 1 gradient evaluations, "
        "so at equal effective epochs it uses (L + 1)/L times SGD's gradients.\n\n"
        f"![validation error vs effective epochs](compare.png)\n\n## Settings\n\n{settings}\n"
    )
    atomic_write_text(out / "report.md", text)
    atomic_write_text(
        out / "results.json",
        json.dumps(
            {
                "rows": rows,
                "total_wall_time": total_wall,
                "jobs": jobs,
                "configs": {n: c.to_dict() for n, c in configs.items()},
            },
            indent=2,
        )
        + "\n",
    )
    return out / "report.md"
