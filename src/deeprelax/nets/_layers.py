"""Building blocks shared by the networks: affine → ReLU → BatchNorm blocks of the reference runs."""

from __future__ import annotations

from torch import nn

BN_POSITIONS = ("after", "before", "none")


def check_bn(bn: str) -> str:
    if bn not in BN_POSITIONS:
        raise ValueError(f"bn must be one of {BN_POSITIONS}, got {bn!r}")
    return bn


def check_dropout(name: str, p: float) -> float:
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {p!r}")
    return float(p)


def affine_block(
    affine: nn.Module, width: int, bn: str, *, pool: nn.Module | None = None, dims: int = 1
) -> list[nn.Module]:
    """``affine → ReLU [→ pool] → BN`` (``bn="after"``, the reference order), ``affine → BN → ReLU [→ pool]``
    (``bn="before"``, the usual placement elsewhere) or ``affine → ReLU [→ pool]`` (``bn="none"``)."""
    norm = nn.BatchNorm1d(width) if dims == 1 else nn.BatchNorm2d(width)
    layers: list[nn.Module] = [affine]
    if bn == "before":
        layers.append(norm)
    layers.append(nn.ReLU(inplace=True))
    if pool is not None:
        layers.append(pool)
    if bn == "after":
        layers.append(norm)
    return layers
