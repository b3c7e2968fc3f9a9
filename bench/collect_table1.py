"""Collect the Table-1 runs under a folder into the markdown table of docs/results.md.

For every cell folder ``ROOT/<model>-<optimizer>`` it reads each ``seed<k>/result.json`` (finished seeds) and,
for unfinished seeds, the last record of ``seed<k>/log.jsonl`` (shown as "running/stopped after epoch e").
Finished seeds are aggregated as ``deeprelax table1`` does (mean ± sample std, ddof = 1).

    PYTHONPATH=src python bench/collect_table1.py /work/runs/table1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deeprelax.experiments.table1 import COLUMNS, MODELS, OPTIMIZERS, load_cell, mean_std


def fmt(values: list[float]) -> str:
    """mean ± sample std, or the single value when there is one seed (no spread to report)."""
    m, s = mean_std(values)
    return f"{m:.2f} ± {s:.2f}" if len(values) > 1 else f"{m:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    args = ap.parse_args()
    print("| model | optimizer | seeds done | final error (%) @ eff. epochs | best error (%) @ eff. epochs "
          "| paper (%) @ eff. epochs | wall time / seed | unfinished |")
    print("|---|---|---|---|---|---|---|---|")
    for model in ("lenet", "mnistfc", "allcnn"):
        for opt in ("entropy-sgd", "hj", "sgd", "heat"):
            assert model in MODELS and opt in OPTIMIZERS
            cell = args.root / f"{model}-{opt}"
            if not cell.is_dir():
                continue
            paper = load_cell(model, opt)["paper"]
            done, partial = [], []
            for seed_dir in sorted(cell.glob("seed*")):
                res = seed_dir / "result.json"
                if res.exists():
                    done.append(json.loads(res.read_text()))
                elif (seed_dir / "log.jsonl").exists():
                    lines = (seed_dir / "log.jsonl").read_text().splitlines()
                    if lines:
                        r = json.loads(lines[-1])
                        partial.append(f"{seed_dir.name}: epoch {r['epoch']} ({r['effective_epochs']} eff.), "
                                       f"{r['test_error']:.2f} %")
                    else:
                        partial.append(f"{seed_dir.name}: started")
            ref = f"{paper['error']:.2f} ± {paper['std']:.2f} @ {paper['effective_epochs']}"
            if done:
                final = fmt([d["final_error"] for d in done])
                best = fmt([d["best_error"] for d in done])
                best_at = "/".join(str(d["best_effective_epochs"]) for d in done)
                wall = sum(d["wall_time"] for d in done) / len(done) / 60
                eff = done[0]["effective_epochs"]
                ours = f"{final} @ {eff} | {best} @ {best_at} | {ref} | {wall:.0f} min"
            else:
                ours = f"– | – | {ref} | –"
            print(f"| {model} | {COLUMNS[opt]} | {len(done)} | {ours} | {'; '.join(partial) or '–'} |")


if __name__ == "__main__":
    main()
