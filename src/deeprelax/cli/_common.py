"""Argument helpers shared by the training subcommands (not a subcommand: the name starts with ``_``)."""

from __future__ import annotations

import argparse
from typing import Any

HPARAMS: dict[str, type] = {
    "lr": float,
    "momentum": float,
    "weight_decay": float,
    "L": int,
    "inner_lr": float,
    "gamma": float,
    "scoping": float,
    "gamma_max": float,
    "noise": float,
    "alpha": float,
    "damping": float,
    "inner_momentum": float,
    "inner_momentum_on": str,
    "divergence_factor": float,
    "rho": float,
    "rho_max": float,
    "max_direction_norm": float,
}


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the option in its message)."""
    return _int_at_least(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0, "a non-negative integer")


def seed_int(text: str) -> int:
    """argparse type: a seed, an integer in [0, 2**63)."""
    v = _int_at_least(text, 0, "a non-negative integer")
    if v >= 2**63:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**63), got {text!r}")
    return v


def _int_at_least(text: str, low: int, what: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if v < low:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return v


def read_json_file(path: str, what: str) -> Any:
    """A JSON file; a duplicate key anywhere (JSON keeps the last one silently) is an error. ``ValueError``
    names ``what`` and the file; a missing file is the ``OSError`` (named by the error boundary)."""
    import json

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise ValueError(f"key {k!r} appears twice")
            out[k] = v
        return out

    with open(path, "rb") as f:
        raw = f.read()
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"{what} {path} is not valid JSON: {exc}") from None


def add_hparam_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("optimizer hyperparameters (omitted ones keep the optimizer's default)")
    for name, typ in HPARAMS.items():
        g.add_argument(f"--{name.replace('_', '-')}", dest=f"hp_{name}", type=typ, default=None, metavar="X")
    g.add_argument(
        "--nesterov",
        dest="hp_nesterov",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Nesterov momentum on the outer step",
    )
    g.add_argument(
        "--inner-nesterov",
        dest="hp_inner_nesterov",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Nesterov form of the inner-loop momentum",
    )


def hparams_from(args: argparse.Namespace) -> dict[str, Any]:
    return {k[3:]: v for k, v in vars(args).items() if k.startswith("hp_") and v is not None}


def parse_key_values(items: list[str] | None) -> dict[str, Any]:
    """``["dropout=0.25", "bn=before", "fc_bn=true"]`` → ``{"dropout": 0.25, "bn": "before",
    "fc_bn": True}``."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item or not item.split("=", 1)[0]:
            raise ValueError(f"--model-option expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        if k in out:
            raise ValueError(f"--model-option {k} is given twice")
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
    parser.add_argument(
        "--data",
        default=default,
        help="mnist-subset (bundled), mnist, fashion-mnist or cifar10 (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None,
        help="folder with the data files; default: the download cache ($DEEPRELAX_DATA "
        "or the platform cache dir)",
    )


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:K (default: %(default)s)")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: torch's choice; results depend on it, see docs/reliability.md)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
