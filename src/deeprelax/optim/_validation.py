"""Hyperparameter checks shared by every optimizer: one place, ``ValueError`` naming the argument.

Numbers are accepted as PyTorch accepts them: Python ``int``/``float``, NumPy scalars (``np.float32(0.1)``,
``np.int64(5)``), and — for ``lr`` only — a one-element tensor (``torch.tensor(0.1)``, for schedules that
update the learning rate in place); ``bool`` is never a number.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch


def real(name: str, value: Any, *, tensor_ok: bool = False) -> float:
    """``value`` as a finite float, or ``ValueError`` naming ``name``."""
    if isinstance(value, torch.Tensor):
        if not tensor_ok:
            raise ValueError(f"{name} as a Tensor is not supported (only lr may be a Tensor), got {value!r}")
        if value.numel() != 1 or value.dtype == torch.bool or value.is_complex():
            raise ValueError(f"{name} must be a one-element real tensor, got {value!r}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def check_nonneg(name: str, value: Any, *, tensor_ok: bool = False) -> None:
    if real(name, value, tensor_ok=tensor_ok) < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def check_positive(name: str, value: Any) -> None:
    if real(name, value) <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def check_unit_interval(name: str, value: Any) -> None:
    """0 <= value < 1."""
    v = real(name, value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")


def check_at_least(name: str, value: Any, minimum: float) -> None:
    if real(name, value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


def check_int(name: str, value: Any, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_cap(name: str, cap: Any, start_name: str, start: Any) -> None:
    """An optional cap (``None`` = no cap) on a scoped coefficient: ``cap >= start``."""
    if cap is None:
        return
    check_nonneg(name, cap)
    if cap < start:
        raise ValueError(f"{name} must be >= {start_name}, got {name}={cap!r} < {start_name}={start!r}")
