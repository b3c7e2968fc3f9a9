"""``deeprelax train``: train one network with one optimizer, with logs, plot, checkpoints and --resume."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deeprelax.experiments.train import TrainConfig

from deeprelax.cli._common import (
    add_data_arguments,
    add_hparam_arguments,
    add_runtime_arguments,
    hparams_from,
    parse_key_values,
)

NAME = "train"
HELP = "train a network (mnistfc, lenet, allcnn) with SGD, Entropy-SGD, HJ or HEAT"
ORDER = 20
DESCRIPTION = """Train one network with one optimizer. Writes OUT/log.jsonl, OUT/log.csv, OUT/error.png
(validation error vs effective epochs), OUT/result.json and, after every epoch, OUT/checkpoint.pt
(atomically); --resume continues an interrupted run exactly. Example:
  deeprelax train --model lenet --optimizer entropy-sgd --L 20 --lr 1 --gamma 1e-4 --scoping 1e-3 \\
      --epochs 4 --lr-schedule 0:1,2:0.1,3:0.01 --data mnist --data-dir /work/shared/data/mnist \\
      --out runs/esgd"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--config", default=None,
                        help="JSON training config to start from (a TrainConfig, or a Table-1 cell file); "
                             "flags given on the command line override it")
    parser.add_argument("--model", default=None, help="mnistfc, lenet or allcnn (default: lenet)")
    parser.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                        help="network option, repeatable: dropout=0.25, bn=before, fc_bn=true, "
                             "variant=original")
    parser.add_argument("--optimizer", default=None, help="sgd, entropy-sgd, hj or heat (default: sgd)")
    add_hparam_arguments(parser)
    parser.add_argument("--epochs", type=int, default=None, help="outer epochs (default 10)")
    parser.add_argument("--lr-schedule", default=None, metavar="E:LR,...",
                        help="piecewise-constant outer lr, e.g. 0:1,2:0.1,4:0.01 (0-based epochs)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--sampling", choices=["replacement", "shuffle"], default=None,
                        help="minibatches drawn with replacement (reference) or shuffled passes")
    parser.add_argument("--steps-per-epoch", type=int, default=None,
                        help="outer steps per epoch (default: ceil(N_train / batch))")
    add_data_arguments(parser, default=None)
    parser.add_argument("--n-train", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--n-test", type=int, default=None, help="use only the first N test images")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="random crop + flip (CIFAR)")
    parser.add_argument("--dry-feed-batches", type=int, default=None,
                        help="batches fed to re-estimate BatchNorm before evaluating (default: all "
                             "training data)")
    parser.add_argument("--seed", type=int, default=None)
    add_runtime_arguments(parser)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")


def build_config(args: argparse.Namespace) -> TrainConfig:
    from deeprelax.experiments.train import TrainConfig, parse_lr_schedule

    base: dict = {}
    if args.config:
        with open(args.config) as f:
            doc = json.load(f)
        base = dict(doc.get("train", doc))
    if args.model is not None:
        base["model"] = args.model
    if args.model_option:
        base["model_options"] = {**base.get("model_options", {}), **parse_key_values(args.model_option)}
    if args.optimizer is not None:
        if base.get("optimizer") not in (None, args.optimizer):
            base["hparams"] = {}  # another optimizer's hyperparameters do not carry over
        base["optimizer"] = args.optimizer
    base["hparams"] = {**base.get("hparams", {}), **hparams_from(args)}
    if args.lr_schedule is not None:
        base["lr_schedule"] = parse_lr_schedule(args.lr_schedule)
    for key in ("epochs", "batch_size", "sampling", "steps_per_epoch", "data", "data_dir", "n_train",
                "n_test", "augment", "dry_feed_batches", "seed", "threads"):
        v = getattr(args, key)
        if v is not None:
            base[key] = v
    base["device"] = args.device
    return TrainConfig.from_dict(base)


def run(args: argparse.Namespace) -> int:
    from deeprelax.experiments.train import NonFiniteLossError, train
    from deeprelax.nets.idx import DataFileError

    try:
        cfg = build_config(args)
        result = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    except (ValueError, FileExistsError, DataFileError) as exc:
        print(f"deeprelax train: error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteLossError as exc:
        print(f"deeprelax train: stopped: {exc}", file=sys.stderr)
        return 1
    s = result.summary()
    print(f"final validation error {s['final_error']:.2f} % (best {s['best_error']:.2f} % at "
          f"{s['best_effective_epochs']} effective epochs) after {s['effective_epochs']} effective epochs, "
          f"{s['grad_evals']} gradient evaluations, {s['wall_time']:.0f} s; outputs in {args.out}")
    return 0
