"""Argument helpers shared by the training subcommands (not a subcommand: the name starts with ``_``)."""

from __future__ import annotations

import argparse
from typing import Any

HPARAMS: dict[str, type] = {
    "lr": float, "momentum": float, "weight_decay": float, "L": int, "inner_lr": float, "gamma": float,
    "scoping": float, "gamma_max": float, "noise": float, "alpha": float, "damping": float,
}


def add_hparam_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("optimizer hyperparameters (omitted ones keep the optimizer's default)")
    for name, typ in HPARAMS.items():
        g.add_argument(f"--{name.replace('_', '-')}", dest=f"hp_{name}", type=typ, default=None, metavar="X")
    g.add_argument("--nesterov", dest="hp_nesterov", action=argparse.BooleanOptionalAction, default=None,
                   help="Nesterov momentum on the outer step")


def hparams_from(args: argparse.Namespace) -> dict[str, Any]:
    return {k[3:]: v for k, v in vars(args).items() if k.startswith("hp_") and v is not None}


def parse_key_values(items: list[str] | None) -> dict[str, Any]:
    """``["dropout=0.25", "bn=before", "fc_bn=true"]`` → ``{"dropout": 0.25, "bn": "before",
    "fc_bn": True}``."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"expected KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        low = v.lower()
        if low in ("true", "false"):
            out[k] = low == "true"
            continue
        for cast in (int, float):
            try:
                out[k] = cast(v)
                break
            except ValueError:
                pass
        else:
            out[k] = v
    return out


def add_data_arguments(parser: argparse.ArgumentParser, default: str | None = "mnist-subset") -> None:
    parser.add_argument("--data", default=default,
                        help="mnist-subset (bundled), mnist, fashion-mnist or cifar10 (default: %(default)s)")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the data files (e.g. /work/shared/data/mnist); default: the "
                             "download cache ($DEEPRELAX_DATA or the platform cache dir)")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:K (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
