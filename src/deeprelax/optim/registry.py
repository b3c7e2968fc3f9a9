"""One registry of optimizer metadata that the command line, ``compare``, ``table1``, plots and benches read.

Each entry says how to build the optimizer, what it is called and drawn as, which hyperparameters it takes
(with their defaults), and what a step costs: ``closure_calls(hparams) = L + 1`` gradient evaluations, and
``effective_epoch_factor(hparams) = max(L, 1)`` (the paper's effective epochs = epochs × max(L, 1)). ``L``
comes from the hyperparameters given, else the optimizer's own default — never an assumed 0.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from deeprelax.optim._validation import check_bool, check_nonneg, check_unit_interval
from deeprelax.optim.elastic_sgd import ElasticSGD
from deeprelax.optim.entropy_sgd import EntropySGD
from deeprelax.optim.heat import Heat
from deeprelax.optim.hj import HJ
from deeprelax.optim.parle import Parle


def _sgd(
    params: Iterable[Any],
    lr: float = 0.1,
    momentum: float = 0.9,
    nesterov: bool = True,
    weight_decay: float = 0.0,
    dampening: float = 0.0,
) -> torch.optim.Optimizer:
    """Plain SGD with (by default) Nesterov momentum 0.9, the paper's baseline: ``torch.optim.SGD``.

    The hyperparameters are checked as ours are (``weight_decay=True`` is a ``ValueError`` here, where torch
    would fail at the first step)."""
    check_nonneg("lr", lr, tensor_ok=True)
    check_unit_interval("momentum", momentum)
    check_unit_interval("dampening", dampening)
    check_nonneg("weight_decay", weight_decay)
    check_bool("nesterov", nesterov)
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, dampening=dampening
    )


def _keywords(factory: Callable[..., Any]) -> dict[str, Any]:
    hp = getattr(factory, "hyperparameters", None)
    if isinstance(hp, dict) and hp:
        options = getattr(factory, "_object_options", ())
        sig = inspect.signature(factory.__init__)
        extra = {n: p.default for n, p in sig.parameters.items() if n in options}
        return {**hp, **extra}
    sig = inspect.signature(factory)
    return {
        n: p.default
        for n, p in sig.parameters.items()
        if n != "params" and p.default is not inspect.Parameter.empty
    }


@dataclass(frozen=True)
class OptimizerInfo:
    """Metadata of one registered optimizer."""

    name: str
    label: str
    color: str
    factory: Callable[..., torch.optim.Optimizer]
    parallel: bool = False
    description: str = ""
    keywords: dict[str, Any] = field(default_factory=dict)

    def inner_steps(self, hparams: dict[str, Any] | None = None) -> int:
        """L for these hyperparameters (the optimizer's default where ``L`` is not given; 0 for SGD)."""
        hparams = hparams or {}
        return int(hparams.get("L", self.keywords.get("L", 0)))

    def closure_calls(self, hparams: dict[str, Any] | None = None) -> int:
        """Gradient evaluations per outer step: L + 1."""
        return self.inner_steps(hparams) + 1

    def effective_epoch_factor(self, hparams: dict[str, Any] | None = None) -> int:
        """Effective epochs per epoch, max(L, 1) (the paper's convention)."""
        return max(self.inner_steps(hparams), 1)

    def check_hyperparameters(self, hparams: dict[str, Any]) -> None:
        """``ValueError`` naming the hyperparameters this optimizer does not take."""
        unknown = sorted(set(hparams) - set(self.keywords))
        if unknown:
            raise ValueError(
                f"optimizer {self.name!r} does not take {', '.join(unknown)}; it takes "
                f"{', '.join(sorted(self.keywords))}"
            )

    def create(self, params: Any, **hparams: Any) -> torch.optim.Optimizer:
        self.check_hyperparameters(hparams)
        return self.factory(params, **hparams)


def _info(name: str, label: str, color: str, factory: Callable[..., Any], **kw: Any) -> OptimizerInfo:
    return OptimizerInfo(name, label, color, factory, keywords=_keywords(factory), **kw)


REGISTRY: dict[str, OptimizerInfo] = {
    i.name: i
    for i in (
        _info("sgd", "SGD (Nesterov)", "tab:gray", _sgd, description="torch.optim.SGD, Nesterov 0.9"),
        _info(
            "entropy-sgd",
            "Entropy-SGD",
            "tab:blue",
            EntropySGD,
            description="Langevin inner loop, exponential mean",
        ),
        _info("hj", "HJ", "tab:red", HJ, description="proximal (Hopf-Lax) fixed point"),
        _info("heat", "HEAT", "tab:green", Heat, description="Langevin inner loop, uniform mean"),
        _info(
            "elastic-sgd",
            "Elastic-SGD",
            "tab:orange",
            ElasticSGD,
            parallel=True,
            description="SGD replicas with elastic coupling",
        ),
        _info(
            "parle",
            "Parle",
            "tab:purple",
            Parle,
            parallel=True,
            description="Entropy-SGD replicas with elastic coupling",
        ),
    )
}


def normalize(name: str) -> str:
    return name.lower().replace("_", "-")


def get(name: str) -> OptimizerInfo:
    """The registry entry for ``name`` (case and ``_``/``-`` insensitive); ``ValueError`` if unknown."""
    key = normalize(name)
    if key not in REGISTRY:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(REGISTRY)}")
    return REGISTRY[key]
