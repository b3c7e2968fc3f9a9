"""Relaxation optimizers for PyTorch, and a string registry for configs and the command line.

>>> import torch
>>> from deeprelax.optim import create_optimizer
>>> model = torch.nn.Linear(3, 1)
>>> opt = create_optimizer("sgd", model.parameters(), lr=0.1)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from deeprelax.optim.entropy_sgd import EntropySGD
from deeprelax.optim.heat import Heat
from deeprelax.optim.hj import HJ

__all__ = ["HJ", "OPTIMIZERS", "EntropySGD", "Heat", "create_optimizer", "inner_steps"]


def _sgd(params: Iterable[Any], lr: float = 0.1, momentum: float = 0.9, nesterov: bool = True,
         weight_decay: float = 0.0, dampening: float = 0.0) -> torch.optim.Optimizer:
    """Plain SGD with (by default) Nesterov momentum 0.9, the paper's baseline: ``torch.optim.SGD``."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov,
                           weight_decay=weight_decay, dampening=dampening)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "entropy-sgd": EntropySGD,
    "heat": Heat,
    "hj": HJ,
}


def create_optimizer(name: str, params: Iterable[Any], **hparams: Any) -> torch.optim.Optimizer:
    """Build the optimizer registered under ``name`` (``"sgd"``, ``"entropy-sgd"``, ``"hj"``, ``"heat"``).

    Unknown names and unknown hyperparameters raise ``ValueError``/``TypeError`` naming them.
    """
    key = name.lower().replace("_", "-")
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[key](params, **hparams)


def inner_steps(optimizer: torch.optim.Optimizer) -> int:
    """Inner steps L of the first parameter group (0 for optimizers without an inner loop).

    One outer step costs ``inner_steps + 1`` closure calls for the relaxation optimizers (1 for SGD);
    the paper's "effective epochs" are ``epochs * max(L, 1)``.
    """
    return int(optimizer.param_groups[0].get("L", 0))
