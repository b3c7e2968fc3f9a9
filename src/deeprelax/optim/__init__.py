"""Relaxation optimizers for PyTorch, their building blocks, and the registry.

>>> import torch
>>> from deeprelax.optim import create_optimizer
>>> model = torch.nn.Linear(3, 1)
>>> opt = create_optimizer("sgd", model.parameters(), lr=0.1)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from deeprelax.optim._relaxation import DivergenceError, RelaxationOptimizer
from deeprelax.optim.closures import MinibatchClosure, minibatch_closure
from deeprelax.optim.elastic_sgd import ElasticSGD
from deeprelax.optim.entropy_sgd import EntropySGD
from deeprelax.optim.heat import Heat
from deeprelax.optim.hj import HJ
from deeprelax.optim.parle import Parle
from deeprelax.optim.registry import REGISTRY, OptimizerInfo, get
from deeprelax.optim.scoping import scoped

__all__ = [
    "HJ",
    "OPTIMIZERS",
    "REGISTRY",
    "DivergenceError",
    "ElasticSGD",
    "EntropySGD",
    "Heat",
    "MinibatchClosure",
    "OptimizerInfo",
    "Parle",
    "RelaxationOptimizer",
    "create_optimizer",
    "get",
    "inner_steps",
    "minibatch_closure",
    "scoped",
]

#: name → factory (the registry's factories; kept for existing callers)
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {k: v.factory for k, v in REGISTRY.items()}


def create_optimizer(name: str, params: Iterable[Any], **hparams: Any) -> torch.optim.Optimizer:
    """Build the optimizer registered under ``name`` (see :data:`REGISTRY`).

    Unknown names raise ``ValueError``; hyperparameters the optimizer does not take raise ``TypeError``
    naming them (as calling the class would).
    """
    info = get(name)
    unknown = sorted(set(hparams) - set(info.keywords))
    if unknown:
        raise TypeError(
            f"{info.name} got unexpected hyperparameter(s) {unknown}; it takes {sorted(info.keywords)}"
        )
    return info.factory(params, **hparams)


def inner_steps(optimizer: torch.optim.Optimizer) -> int:
    """Inner steps L of the first parameter group (0 for optimizers without an inner loop).

    One outer step costs ``inner_steps + 1`` closure calls for the relaxation optimizers (1 for SGD);
    the paper's "effective epochs" are ``epochs * max(L, 1)``.
    """
    return int(optimizer.param_groups[0].get("L", 0))
