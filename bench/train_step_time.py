"""Time per outer step of each Table-1 cell, and the estimated wall time of the whole cell.

For every cell it builds the real training setup (network, optimizer and hyperparameters from the cell's
config file, batch 128), runs a few warm-up outer steps, times ``--steps`` more, times one evaluation
(BatchNorm dry feed over the training set + the test set), and prints

    seconds per outer step, seconds per gradient evaluation, and
    estimated cell time = epochs × steps_per_epoch × (s / outer step) + epochs × (s / evaluation).

Timings on a shared machine are noisy; the ratio between cells measured in one run is the robust figure.

    PYTHONPATH=src python bench/train_step_time.py --data-dir "$DEEPRELAX_DATA/mnist" --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch

from deeprelax.experiments.table1 import load_cell
from deeprelax.experiments.train import TrainConfig, Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="full MNIST (default: the bundled subset, for a try)")
    ap.add_argument("--models", nargs="+", default=["lenet", "mnistfc"])
    ap.add_argument("--optimizers", nargs="+", default=["sgd", "entropy-sgd", "hj", "heat"])
    ap.add_argument("--steps", type=int, default=5, help="timed outer steps per cell")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = "mnist" if args.data_dir else "mnist-subset"
    print(f"torch {torch.__version__}, {args.threads} thread(s), data {data}")
    print(
        f"{'cell':22s} {'L':>3s} {'s/outer step':>12s} {'s/grad eval':>11s} {'s/eval':>7s} "
        f"{'steps/epoch':>11s} {'epochs':>6s} {'est. total':>10s}"
    )
    for model in args.models:
        for opt in args.optimizers:
            doc = load_cell(model, opt)
            cfg = TrainConfig.from_dict(
                {**doc["train"], "data": data, "data_dir": args.data_dir, "threads": args.threads}
            )
            t = Trainer(cfg, None, progress=False, log=None)
            for i in range(2 + args.steps):
                if i == 2:
                    t0, g0 = time.perf_counter(), t.grad_evals
                t.outer_step()
            per_step = (time.perf_counter() - t0) / args.steps
            per_grad = per_step * args.steps / (t.grad_evals - g0)
            e0 = time.perf_counter()
            t.evaluate()
            per_eval = time.perf_counter() - e0
            steps = t.steps_per_epoch
            total = cfg.epochs * (steps * per_step + per_eval)
            print(
                f"{model + '/' + opt:22s} {t.L:3d} {per_step:12.3f} {per_grad:11.4f} {per_eval:7.1f} "
                f"{steps:11d} {cfg.epochs:6d} {total / 60:8.0f} min",
                flush=True,
            )


if __name__ == "__main__":
    main()
