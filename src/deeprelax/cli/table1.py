"""``deeprelax table1``: one cell of the paper's Table 1 over several seeds, as a row of a results table."""

from __future__ import annotations

import argparse
import sys

from deeprelax.cli._common import add_runtime_arguments, positive_int, seed_int

NAME = "table1"
HELP = "reproduce one cell of Table 1 (both readings, over seeds) from its config file"
ORDER = 40
DESCRIPTION = """Train one Table-1 cell (network × optimizer) with the configuration shipped in
deeprelax/experiments/configs/table1-<model>-<optimizer>[-<variant>].json, for each seed, and write
OUT/row.md and OUT/row.json with both readings next to the paper's number: the final validation error at
the budget (mean ± std over seeds) and the paper's reading (minimum of the seed-averaged per-epoch
test-error curve, its effective epoch, the spread across seeds there; it selects on the test set).
--variant ours (default) is our configuration at the paper's budget, --variant authors follows the
authors' code (docs/training.md). Finished seeds are not retrained and interrupted ones resume. Example:
  deeprelax table1 --model lenet --optimizer entropy-sgd --variant authors --seeds 0 1 \\
      --data-dir "$DEEPRELAX_DATA/mnist" --out runs/table1/lenet-entropy-sgd-authors
OUT is locked while the cell runs."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", choices=["mnistfc", "lenet", "allcnn"], required=False)
    parser.add_argument("--optimizer", choices=["sgd", "entropy-sgd", "hj", "heat"], required=False)
    parser.add_argument(
        "--variant",
        choices=["ours", "authors"],
        default="ours",
        help="ours: our config at the paper's budget; authors: the authors' set-up",
    )
    parser.add_argument("--seeds", type=seed_int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--out", default=None, help="output folder (default: runs/table1/<model>-<optimizer>[-<variant>])"
    )
    parser.add_argument(
        "--data", default=None, help="override the cell's data set (e.g. mnist-subset, for a try)"
    )
    parser.add_argument(
        "--data-dir", metavar="DIR", default=None, help="folder with the data files (default: download cache)"
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="override the number of epochs (smoke runs)"
    )
    parser.add_argument("--steps-per-epoch", type=positive_int, default=None, help="override (smoke runs)")
    parser.add_argument("--dry-feed-batches", type=positive_int, default=None, help="override (smoke runs)")
    parser.add_argument("--table", default=None, help="also append the row to this markdown file")
    parser.add_argument("--show", action="store_true", help="print the cell's config file and exit")
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import json

    from deeprelax.experiments.runfiles import RunLock
    from deeprelax.experiments.table1 import SELECTION_NOTE, config_path, load_cell, markdown_table, run_cell
    from deeprelax.experiments.train import NonFiniteLossError
    from deeprelax.nets.idx import DataFileError

    if not args.model or not args.optimizer:
        print("deeprelax table1: error: --model and --optimizer are required", file=sys.stderr)
        return 2
    if args.show:
        doc = load_cell(args.model, args.optimizer, args.variant)
        print(config_path(args.model, args.optimizer, args.variant))
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    overrides = {"device": args.device}
    for key in ("data", "data_dir", "epochs", "steps_per_epoch", "dry_feed_batches", "threads"):
        v = getattr(args, key)
        if v is not None:
            overrides[key] = v
    suffix = "" if args.variant == "ours" else f"-{args.variant}"
    out = args.out or f"runs/table1/{args.model}-{args.optimizer}{suffix}"
    try:
        with RunLock(
            out,
            what="table1 cell",  # the seed runs inside lock their own folders too
            report=lambda msg: print(f"WARNING: {msg}", file=sys.stderr),
        ):
            row = run_cell(
                args.model,
                args.optimizer,
                args.seeds,
                out,
                variant=args.variant,
                overrides=overrides,
                progress=not args.no_progress,
            )
    except (ValueError, DataFileError) as exc:
        print(f"deeprelax table1: error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteLossError as exc:
        print(f"deeprelax table1: stopped: {exc}", file=sys.stderr)
        return 1
    table = markdown_table([row])
    print(table, end="")
    print(SELECTION_NOTE)
    if args.table:
        with open(args.table, "a") as f:  # one append of one line: concurrent cells do not interleave
            f.write(table.splitlines()[-1] + "\n")
    return 0
