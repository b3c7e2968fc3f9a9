"""Rebuild Table 1 from the exported per-epoch logs in ``docs/table1-runs/*.jsonl`` alone.

Each export (written by ``bench/table1_queue.py``) is one finished run: a header record with the run's
config, commit, result and machine, then one record per epoch. Runs whose configs agree except for the seed
(and machine-only fields) form one cell; a cell is labelled with the shipped variant whose config it
matches (``ours``, ``authors``, see ``deeprelax.experiments.table1``), otherwise with its differences from
``ours`` (e.g. ``ours + model_options.dropout=0.25``). Every cell gets both readings: the final error at the
budget (mean ± sample std over seeds) and the paper's (minimum of the seed-averaged per-epoch test-error
curve, its effective epoch and the spread across seeds there), plus the effective epochs for the mean curve
to reach 0.60 % (LeNet) / 1.20 % (mnistfc). Unfinished runs (exported with ``--partial``, header
``"complete": false``) form cells of their own with ``"complete": false``: no final reading (``final_mean`` is
null), and a paper's reading over the epochs done so far only.

    PYTHONPATH=src python bench/collect_table1.py                      # print the tables
    PYTHONPATH=src python bench/collect_table1.py --json docs/table1.json --results docs/results.md
    PYTHONPATH=src python bench/collect_table1.py --check docs/table1.json   # exit 1 if it is stale

``--results`` replaces the block between the lines ``<!-- collect_table1:begin -->`` and
``<!-- collect_table1:end -->``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
from pathlib import Path
from typing import Any

from deeprelax.experiments.table1 import (
    MODELS,
    OPTIMIZERS,
    SELECTION_NOTE,
    VARIANTS,
    config_path,
    load_cell,
    markdown_table,
    readings,
)
from deeprelax.experiments.train import TrainConfig
from deeprelax.optim import OPTIMIZERS as OPTIMIZER_FACTORIES

# fields that do not change the computation (or describe the machine): ignored when grouping runs
IGNORED = ("seed", "data_dir", "device", "threads", "eval_batch_size")
BEGIN, END = "<!-- collect_table1:begin -->", "<!-- collect_table1:end -->"
ROOT = Path(__file__).resolve().parent.parent


def read_export(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    lines = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    if not lines or "header" not in lines[0]:
        raise ValueError(f"{path}: first line is not a header record")
    return lines[0]["header"], lines[1:]


def normalized(config: dict[str, Any]) -> dict[str, Any]:
    """The config as it determines the computation: defaults filled in, machine-only fields dropped."""
    cfg = TrainConfig.from_dict({k: v for k, v in config.items() if k not in IGNORED}).to_dict()
    factory = OPTIMIZER_FACTORIES[cfg["optimizer"]]
    defaults = {
        name: p.default
        for name, p in inspect.signature(factory).parameters.items()
        if p.default is not inspect.Parameter.empty and name != "foreach"
    }
    cfg["hparams"] = {**defaults, **cfg["hparams"]}
    return {k: v for k, v in cfg.items() if k not in IGNORED}


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "lr_schedule":
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def label(model: str, optimizer: str, cfg: dict[str, Any]) -> str:
    """The shipped variant this config is, or its differences from ``ours``."""
    for variant in VARIANTS:
        if (
            config_path(model, optimizer, variant).exists()
            and normalized(load_cell(model, optimizer, variant)["train"]) == cfg
        ):
            return variant
    ours, mine = flat(normalized(load_cell(model, optimizer)["train"])), flat(cfg)
    diffs = [
        f"{k}={json.dumps(mine.get(k), separators=(',', ':'))}"
        for k in sorted(set(ours) | set(mine))
        if ours.get(k) != mine.get(k)
    ]
    return "ours + " + ", ".join(diffs)


def collect(runs_dir: Path) -> list[dict[str, Any]]:
    """The cells of the exported runs, each with both readings."""
    groups: dict[tuple[bool, str], list[tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
    for path in sorted(runs_dir.glob("*.jsonl")):
        header, records = read_export(path)
        cfg = normalized(header["config"])
        complete = header.get("complete", True)
        groups.setdefault((complete, json.dumps(cfg, sort_keys=True)), []).append((header, records))
    cells = []
    for (complete, key), runs in groups.items():
        cfg = json.loads(key)
        model, optimizer = cfg["model"], cfg["optimizer"]
        runs.sort(key=lambda hr: hr[0]["config"]["seed"])
        seeds = [h["config"]["seed"] for h, _ in runs]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{model}/{optimizer}: seed repeated among runs {[h['run'] for h, _ in runs]}")
        paper = load_cell(model, optimizer)["paper"]
        curves = [records for _, records in runs]
        bests = [min(c, key=lambda r: (r["test_error"], r["epoch"])) for c in curves]
        if complete:
            read = readings(model, curves, [h["result"]["final_error"] for h, _ in runs])
        else:  # no final reading for a run that did not reach its budget
            read = {**readings(model, curves), "final_mean": None, "final_std": None}
        cells.append(
            {
                "model": model,
                "optimizer": optimizer,
                "variant": label(model, optimizer, cfg),
                "complete": complete,
                "seeds": seeds,
                "runs": [h["run"] for h, _ in runs],
                "commits": sorted({c for h, _ in runs for c in _as_list(h.get("commit"))}),
                "per_run_commits": [_as_list(h.get("commit")) for h, _ in runs],
                **read,
                "paper_value": paper["error"],
                "paper_std": paper["std"],
                "paper_effective_epochs": paper["effective_epochs"],
                "budget_effective_epochs": cfg["epochs"] * max(cfg["hparams"].get("L", 0), 1),
                "effective_epochs": min(c[-1]["effective_epochs"] for c in curves),
                "per_seed_best": [b["test_error"] for b in bests],
                "per_seed_best_effective_epoch": [b["effective_epochs"] for b in bests],
                "wall_time_s": [round(c[-1]["wall_time"], 1) for c in curves],
                "load_avg_1min_mean": [h.get("machine", {}).get("load_avg_1min_mean") for h, _ in runs],
            }
        )
        c = cells[-1]
        gap = None if c["paper_min"] is None else abs(c["paper_min"] - c["paper_value"])
        c["paper_min_within_2_paper_std"] = None if gap is None else gap <= 2 * c["paper_std"] + 1e-9
    order = {m: i for i, m in enumerate(("lenet", "mnistfc", "allcnn"))}
    opt_order = {o: i for i, o in enumerate(("entropy-sgd", "hj", "sgd", "heat"))}
    assert set(order) == set(MODELS) and set(opt_order) == set(OPTIMIZERS)
    cells.sort(
        key=lambda c: (
            not c["complete"],
            order[c["model"]],
            opt_order[c["optimizer"]],
            VARIANTS.index(c["variant"]) if c["variant"] in VARIANTS else len(VARIANTS),
            c["variant"],
        )
    )
    return cells


def _as_list(x: Any) -> list[str]:
    return [] if x is None else ([x] if isinstance(x, str) else list(x))


def _json_default(obj: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {obj!r}")


def dumps(cells: list[dict[str, Any]]) -> str:
    for c in cells:
        for k, v in c.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{k} = {v} in {c['model']}/{c['optimizer']}")
    return json.dumps(cells, indent=1, default=_json_default) + "\n"


def markdown(cells: list[dict[str, Any]]) -> str:
    rows = [{**c, "wall_time_mean": sum(c["wall_time_s"]) / len(c["wall_time_s"])} for c in cells]
    done = [r for r in rows if r["complete"]]
    out = [markdown_table(done) if done else "No run has finished.\n", SELECTION_NOTE, ""]
    partial = [r for r in rows if not r["complete"]]
    if partial:
        out += [
            "Unfinished runs, exported as they stood (no final reading; the paper's reading over the "
            "epochs done so far is an upper bound on the whole run's):",
            "",
            markdown_table(partial),
        ]
    out += [
        "| run | seed | finished | last error (%) | best error (%) @ eff. epoch "
        "| eff. epochs done / budget | wall time | load (1-min mean) | commit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        for i, run in enumerate(c["runs"]):
            load = c["load_avg_1min_mean"][i]
            commits = ", ".join(x[:7] for x in c["per_run_commits"][i])
            out.append(
                f"| {run} | {c['seeds'][i]} | {'yes' if c['complete'] else 'no'} "
                f"| {c['per_seed_final'][i]:.2f} "
                f"| {c['per_seed_best'][i]:.2f} @ {c['per_seed_best_effective_epoch'][i]} "
                f"| {c['effective_epochs']} / {c['budget_effective_epochs']} "
                f"| {c['wall_time_s'][i] / 60:.0f} min "
                f"| {'–' if load is None else f'{load:.1f}'} | {commits} |"
            )
    return "\n".join(out) + "\n"


def replace_block(text: str, block: str) -> str:
    if BEGIN not in text or END not in text:
        raise ValueError(f"markers {BEGIN} / {END} not found")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "runs",
        type=Path,
        nargs="?",
        default=ROOT / "docs" / "table1-runs",
        help="folder of exported runs (default: docs/table1-runs of this checkout)",
    )
    ap.add_argument("--json", type=Path, default=None, help="write the cells here (docs/table1.json)")
    ap.add_argument("--results", type=Path, default=None, help="replace the marked block of this file")
    ap.add_argument("--check", type=Path, default=None, help="exit 1 if this JSON is not what the runs give")
    args = ap.parse_args(argv)
    cells = collect(args.runs)
    text = dumps(cells)
    if args.check is not None:
        if not args.check.exists() or args.check.read_text() != text:
            print(f"{args.check} is stale: regenerate it with --json {args.check}", file=sys.stderr)
            return 1
        print(f"{args.check}: up to date ({len(cells)} cells)")
        return 0
    if args.json is not None:
        args.json.write_text(text)
    md = markdown(cells)
    if args.results is not None:
        args.results.write_text(replace_block(args.results.read_text(), md))
    print(md, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
