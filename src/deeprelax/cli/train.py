"""``deeprelax train``: train one network with one optimizer, with logs, plot, checkpoints and --resume."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deeprelax.experiments.train import TrainConfig

from deeprelax.cli._common import (
    HPARAMS,
    add_data_arguments,
    add_hparam_arguments,
    add_runtime_arguments,
    hparams_from,
    nonnegative_int,
    parse_key_values,
    positive_int,
    read_json_file,
    seed_int,
)

if TYPE_CHECKING:
    from deeprelax.experiments.train import TrainConfig

NAME = "train"
HELP = "train a network (mnistfc, lenet, allcnn) with SGD, Entropy-SGD, HJ, HEAT, Elastic-SGD or Parle"
ORDER = 20
DESCRIPTION = """Train one network with one optimizer. Writes OUT/config.json, OUT/log.jsonl, OUT/log.csv,
OUT/error.png (validation error vs effective epochs), OUT/result.json (with the torch version, threads and
CPU capability the numbers depend on) and, after every epoch, OUT/checkpoint.pt, every file atomically;
OUT is locked for the whole run. --resume continues an interrupted run exactly; a folder holding an earlier
run is refused unless --resume or --overwrite. Example:
  deeprelax train --model lenet --optimizer entropy-sgd --L 20 --lr 1 --gamma 1e-4 --scoping 1e-3 \\
      --epochs 4 --lr-schedule 0:1,2:0.1,3:0.01 --data mnist --data-dir DIR --out runs/esgd
(DIR holds the MNIST files; without --data-dir they are downloaded into $DEEPRELAX_DATA.)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--config",
        default=None,
        help="JSON training config to start from (a TrainConfig, or a Table-1 cell file); "
        "flags given on the command line override it",
    )
    parser.add_argument("--model", default=None, help="mnistfc, lenet or allcnn (default: lenet)")
    parser.add_argument(
        "--model-option",
        action="append",
        metavar="KEY=VALUE",
        help="network option, repeatable: dropout=0.25, bn=before, fc_bn=true, variant=original",
    )
    parser.add_argument(
        "--optimizer", default=None, help="sgd, entropy-sgd, hj, heat, elastic-sgd or parle (default: sgd)"
    )
    add_hparam_arguments(parser)
    parser.add_argument("--epochs", type=positive_int, default=None, help="outer epochs (default 10)")
    parser.add_argument(
        "--lr-schedule",
        default=None,
        metavar="E:LR,...",
        help="piecewise-constant outer lr, e.g. 0:1,2:0.1,4:0.01 (0-based epochs)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=None)
    parser.add_argument(
        "--sampling",
        choices=["replacement", "shuffle"],
        default=None,
        help="minibatches drawn with replacement (reference) or shuffled passes",
    )
    parser.add_argument(
        "--steps-per-epoch",
        type=positive_int,
        default=None,
        help="outer steps per epoch (default: ceil(N_train / batch))",
    )
    add_data_arguments(parser, default=None)
    parser.add_argument(
        "--n-train", type=positive_int, default=None, help="use only the first N training images"
    )
    parser.add_argument("--n-test", type=positive_int, default=None, help="use only the first N test images")
    parser.add_argument(
        "--augment", action=argparse.BooleanOptionalAction, default=None, help="random crop + flip (CIFAR)"
    )
    parser.add_argument(
        "--dry-feed-batches",
        type=positive_int,
        default=None,
        help="batches fed to re-estimate BatchNorm before evaluating (default: all training data)",
    )
    parser.add_argument("--seed", type=seed_int, default=None, help="an integer in [0, 2**63)")
    add_runtime_arguments(parser)
    parser.add_argument("--out", required=True, help="output folder")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    mode.add_argument(
        "--overwrite",
        action="store_true",
        help="delete an earlier run's files in OUT (its checkpoint too) and start over",
    )
    parser.add_argument(
        "--allow-env-change",
        action="store_true",
        help="let --resume continue under another torch version, thread count, CPU "
        "capability or device (no longer bit-exact; recorded in result.json)",
    )
    g = parser.add_argument_group("replicas (elastic-sgd, parle): one process per replica, torch.distributed")
    g.add_argument(
        "--replicas",
        type=positive_int,
        default=None,
        metavar="N",
        help="start N replica processes on this machine through torch.distributed.run (under "
        "torchrun the number of processes is the number of replicas)",
    )
    g.add_argument(
        "--shard",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replica a samples only every n-th training example, from the a-th (Parle's --frac)",
    )
    g.add_argument(
        "--max-restarts",
        type=nonnegative_int,
        default=0,
        metavar="K",
        help="with --replicas: restart the whole group up to K times after a failure; it "
        "resumes from the last checkpoint (default 0)",
    )


def build_config(args: argparse.Namespace) -> TrainConfig:
    from deeprelax.experiments.train import TrainConfig, parse_lr_schedule

    base: dict = {}
    if args.config:
        doc = read_json_file(args.config, "--config")
        if isinstance(doc, dict) and "train" in doc:
            doc = doc["train"]
        if not isinstance(doc, dict):
            raise ValueError(
                f"--config {args.config}: expected a JSON object (a training config or a "
                f"Table-1 cell file), got {type(doc).__name__} {doc!r:.60}"
            )
        base = dict(doc)
        for key in ("hparams", "model_options"):
            if key in base and not isinstance(base[key], dict):
                raise ValueError(f"--config {args.config}: {key} must be a JSON object, got {base[key]!r}")
    if args.model is not None:
        base["model"] = args.model
    if args.model_option:
        base["model_options"] = {**base.get("model_options", {}), **parse_key_values(args.model_option)}
    if args.optimizer is not None:
        if base.get("optimizer") not in (None, args.optimizer):
            base["hparams"] = {}  # another optimizer's hyperparameters do not carry over
        base["optimizer"] = args.optimizer
    given = hparams_from(args)
    if given:
        from deeprelax.experiments.train import optimizer_hparam_names
        from deeprelax.optim import OPTIMIZERS

        name = str(base.get("optimizer", "sgd")).lower().replace("_", "-")
        if name in OPTIMIZERS:
            accepted = optimizer_hparam_names(name)
            unknown = [k for k in given if k not in accepted]
            if unknown:
                flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
                takes = ", ".join(
                    "--" + k.replace("_", "-") for k in sorted(accepted) if k in {*HPARAMS, "nesterov"}
                )
                raise ValueError(f"{flags}: not a hyperparameter of optimizer {name!r} (it takes {takes})")
    base["hparams"] = {**base.get("hparams", {}), **given}
    if args.lr_schedule is not None:
        base["lr_schedule"] = parse_lr_schedule(args.lr_schedule)
    for key in (
        "epochs",
        "batch_size",
        "sampling",
        "steps_per_epoch",
        "data",
        "data_dir",
        "n_train",
        "n_test",
        "augment",
        "dry_feed_batches",
        "seed",
        "threads",
        "replicas",
        "shard",
    ):
        v = getattr(args, key)
        if v is not None:
            base[key] = v
    base["device"] = args.device
    return TrainConfig.from_dict(base)


def run(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    from deeprelax import distributed
    from deeprelax.experiments.train import train

    # errors (ValueError, OSError, the harness's own) are reported by the boundary in deeprelax.cli.main
    world = distributed.launched_world_size()
    if world > 1:  # a rank started by torchrun / --replicas
        args.replicas = world
    cfg = build_config(args)
    if cfg.replicas > 1 and world == 1:
        return _launch_replicas(cfg, args)
    if world > 1:
        from deeprelax.experiments.replicas import ReplicaTrainer

        try:
            distributed.init_from_env(cfg.device)
            trainer = ReplicaTrainer(cfg, args.out, progress=not args.no_progress)
            result = trainer.run(
                resume=args.resume, overwrite=args.overwrite, allow_env_change=args.allow_env_change
            )
        except dist.DistError as exc:  # a peer that died, hung or never came: torch's timeout message
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(
                f"deeprelax train: error: replica communication failed ({type(exc).__name__}): {first}",
                file=sys.stderr,
            )
            return 1
        if trainer.rank != 0:
            return 0
    else:
        result = train(
            cfg,
            args.out,
            resume=args.resume,
            overwrite=args.overwrite,
            allow_env_change=args.allow_env_change,
            progress=not args.no_progress,
        )
    s = result.summary()
    print(
        f"final validation error {s['final_error']:.2f} % (best {s['best_error']:.2f} % at "
        f"{s['best_effective_epochs']} effective epochs) after {s['effective_epochs']} effective epochs, "
        f"{s['grad_evals']} gradient evaluations, {s['wall_time']:.0f} s; outputs in {args.out}"
    )
    return 0


def _launch_replicas(cfg: TrainConfig, args: argparse.Namespace) -> int:
    """Write the run's config into OUT and start ``cfg.replicas`` ranks on it via torch.distributed.run."""
    from pathlib import Path

    from deeprelax.experiments.replicas import launch

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    launch_cfg = out / "launch-config.json"
    launch_cfg.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    argv = ["train", "--config", str(launch_cfg), "--out", str(out)]
    for flag in ("resume", "overwrite", "allow_env_change", "no_progress"):
        if getattr(args, flag):
            argv.append("--" + flag.replace("_", "-"))
    return launch(argv, cfg.replicas, max_restarts=args.max_restarts)
