"""Networks of the reference runs and their data (no torchvision).

>>> from deeprelax.nets import create_model, load_dataset
>>> model = create_model("lenet", dropout=0.25)
>>> data = load_dataset("mnist-subset")          # bundled: no download; also "mnist", "cifar10", ...
>>> tuple(data.x_train.shape), tuple(data.x_test.shape)
((8000, 1, 28, 28), (2000, 1, 28, 28))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from deeprelax.nets.allcnn import AllCNN
from deeprelax.nets.datasets import DATASETS, ImageDataset, load_dataset
from deeprelax.nets.lenet import LeNet
from deeprelax.nets.mnistfc import MnistFC

__all__ = [
    "DATASETS",
    "MODELS",
    "MODEL_INPUT_SHAPES",
    "AllCNN",
    "ImageDataset",
    "LeNet",
    "MnistFC",
    "count_parameters",
    "create_model",
    "load_dataset",
    "model_option_names",
]

MODELS: dict[str, Callable[..., nn.Module]] = {"mnistfc": MnistFC, "lenet": LeNet, "allcnn": AllCNN}
MODEL_INPUT_SHAPES: dict[str, tuple[int, int, int]] = {
    "mnistfc": (1, 28, 28),
    "lenet": (1, 28, 28),
    "allcnn": (3, 32, 32),
}


def model_option_names(name: str) -> set[str]:
    """The keyword options the network ``name`` accepts (``dropout``, ``bn``, …)."""
    import inspect

    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {n for n, p in inspect.signature(MODELS[name.lower()]).parameters.items() if p.kind in kinds}


def create_model(name: str, **options: Any) -> nn.Module:
    """Build the network ``name`` (``"mnistfc"``, ``"lenet"``, ``"allcnn"``) with its keyword options.

    An unknown name or option, or an option value of the wrong type, raises ``ValueError`` naming it."""
    key = name.lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    accepted = model_option_names(key)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(
            f"model {name!r} has no option(s) {', '.join(unknown)}; its options are "
            f"{', '.join(sorted(accepted))}"
        )
    try:
        return MODELS[key](**options)
    except (TypeError, ValueError) as exc:  # a value of the wrong type or range
        raise ValueError(f"model {name!r} with options {options}: {exc}") from exc


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
