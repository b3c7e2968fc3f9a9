"""``deeprelax compare``: the main job — SGD, Entropy-SGD, HJ and HEAT at equal effective-epoch budgets."""

from __future__ import annotations

import argparse
import sys

from deeprelax.cli._common import add_data_arguments, positive_int, seed_int

NAME = "compare"
HELP = "main job: train LeNet with SGD, Entropy-SGD, HJ and HEAT at equal budgets; table, plot, report"
ORDER = 10
DESCRIPTION = """Train one network with SGD, Entropy-SGD, HJ and HEAT from the same initial weights at the
same budget of effective epochs (epochs x max(L, 1)), then print a table (final and best validation error,
effective epochs, gradient evaluations, wall time) and write OUT/compare.png, OUT/report.md and
OUT/results.json. The default runs on the MNIST subset bundled with the package (no download) in a few
minutes on a 2-core CPU; --data mnist --data-dir DIR uses the full set."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default: runs/compare-<date>-<time> in the current folder)",
    )
    parser.add_argument(
        "--model",
        choices=["lenet", "mnistfc"],
        default=None,
        help="network (default: from the settings file, lenet)",
    )
    parser.add_argument(
        "--optimizers",
        nargs="+",
        default=None,
        metavar="NAME",
        help="subset of sgd entropy-sgd hj heat (default: all four)",
    )
    parser.add_argument(
        "--budget",
        type=positive_int,
        default=None,
        help="effective epochs per optimizer (default: from the settings file, 20)",
    )
    add_data_arguments(parser, default=None)
    parser.add_argument("--seed", type=seed_int, default=None)
    parser.add_argument("--steps-per-epoch", type=positive_int, default=None, help="override (quick tries)")
    parser.add_argument(
        "--n-train", type=positive_int, default=None, help="use only the first N training images"
    )
    parser.add_argument("--dry-feed-batches", type=positive_int, default=None)
    parser.add_argument(
        "--settings", default=None, help="JSON settings file (default: the packaged configs/compare.json)"
    )
    parser.add_argument(
        "--jobs", type=positive_int, default=2, help="runs in parallel (default: %(default)s)"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch threads per run (default: %(default)s; results depend on it)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="also measure, at the final weights, the top Hessian eigenvalue, trace and "
        "local entropy per optimizer, and plot the SGD <-> Entropy-SGD interpolation",
    )


def run(args: argparse.Namespace) -> int:
    import time

    from deeprelax.experiments.compare import build_configs, load_compare_config, markdown_table, run_compare
    from deeprelax.experiments.train import NonFiniteLossError
    from deeprelax.nets.idx import DataFileError

    settings = load_compare_config(args.settings)
    overrides = {"device": args.device}
    for key in ("model", "data", "data_dir", "seed", "steps_per_epoch", "n_train", "dry_feed_batches"):
        v = getattr(args, key)
        if v is not None:
            overrides[key] = v
    if args.data is not None and args.data != "mnist-subset" and args.dry_feed_batches is None:
        overrides["dry_feed_batches"] = None  # the full data set: the reference dry feed over all of it
    t0 = time.perf_counter()
    try:
        configs = build_configs(settings, optimizers=args.optimizers, budget=args.budget, overrides=overrides)
        first = next(iter(configs.values()))
        print(
            f"deeprelax compare: {first.model} on {first.data}, {', '.join(configs)} at "
            f"{args.budget or settings['budget']} effective epochs each; {args.jobs} run(s) at a time"
        )
        out = args.out or time.strftime("runs/compare-%Y%m%d-%H%M%S")
        res = run_compare(
            configs, out, jobs=args.jobs, threads=args.threads, diagnose=getattr(args, "diagnose", False)
        )
    except (ValueError, FileExistsError, DataFileError) as exc:
        print(f"deeprelax compare: error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteLossError as exc:
        print(f"deeprelax compare: stopped: {exc}", file=sys.stderr)
        return 1
    print()
    print(markdown_table([r["summary"] for r in res["results"].values()]), end="")
    if "diagnostics" in res:
        print(res["diagnostics"]["markdown"], end="")
    print(
        f"\ntotal wall time {time.perf_counter() - t0:.0f} s; report {res['report']}, plot "
        f"{res['report'].parent / 'compare.png'}"
    )
    return 0
