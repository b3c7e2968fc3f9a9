"""``deeprelax kmeans``: EM, mini-batch EM, k-means++ vs ESGD (stochastic backward Euler): seed 000's
table."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "kmeans"
HELP = "k-means: EM / mini-batch EM / k-means++ vs ESGD on a dataset with a certified global minimum"
DESCRIPTION = (
    "Seed 000's k-means table: min, max, mean, variance of the final energy f = inertia/(2N), % of trials at "
    "the certified global minimum and wall time per trial, for Lloyd/EM, mini-batch EM and k-means++ "
    "(scikit-learn), ESGD (deeprelax.cluster.ESGDKMeans with its defaults: k-means++ seeding) and "
    "ESGD-strong (random init, the round-1 strong-exploration schedule). Writes the table (markdown + JSON) "
    "and the "
    "figures (energy histograms, the 4-means-on-3-clusters example, the dataset with its certificate) "
    "to --out."
)
ORDER = 60


def _positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _positive_float(s: str) -> float:
    v = float(s)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from deeprelax.cluster.datasets import BENCHMARKS

    parser.add_argument("--trials", type=_positive_int, default=100, help="number of seeded trials (100)")
    parser.add_argument(
        "--batch-size", type=_positive_int, default=1000, help="mini-batch size of mb-EM and ESGD (1000)"
    )
    parser.add_argument(
        "--dataset",
        choices=sorted(BENCHMARKS),
        default="blobs8",
        help="certified benchmark instance (blobs8)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("kmeans_results"),
        help="output directory for the table and figures (kmeans_results)",
    )
    parser.add_argument("--seed", type=int, default=0, help="trial t uses random_state = seed + t (0)")
    parser.add_argument(
        "--rtol",
        type=_positive_float,
        default=1e-3,
        help="'at the global minimum' means f <= f* (1 + rtol) (1e-3)",
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from deeprelax.experiments.kmeans import run_experiment

    res = run_experiment(
        args.out,
        dataset=args.dataset,
        trials=args.trials,
        batch_size=args.batch_size,
        seed=args.seed,
        rtol=args.rtol,
        figures=not args.no_figures,
        progress=not args.no_progress,
    )
    print(res["header"])
    print()
    print(res["table_markdown"])
    if res["esgd_over_mbem_time"] is not None:
        print(f"\nESGD / mb-EM wall time per trial (this run): {res['esgd_over_mbem_time']:.2f}")
    for f in res["figures"]:
        print(f"figure: {f}")
    print(f"table: {args.out}/kmeans_{args.dataset}_b{args.batch_size}.md (and .json)")
    return 0
