"""Argument checks and grid sampling shared by the PDE solvers (private)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def check_positive(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def uniform_grid(name: str, grid: ArrayLike) -> tuple[FloatArray, float]:
    """Validate a strictly increasing uniform 1-D grid and return it with its spacing."""
    g = np.asarray(grid, dtype=float)
    if g.ndim != 1 or g.size < 2:
        raise ValueError(f"{name} must be a 1-D array with at least 2 points, got shape {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError(f"{name} must be finite")
    d = np.diff(g)
    h = float(d.mean())
    if h <= 0.0 or np.max(np.abs(d - h)) > 1e-6 * h:
        raise ValueError(f"{name} must be strictly increasing and uniformly spaced")
    return g, h


def sample_on_grid(name: str, f: Callable[..., ArrayLike] | ArrayLike, *grids: FloatArray) -> FloatArray:
    """``f`` on the tensor grid: called (1-D ``f(y)``, 2-D ``f(Y1, Y2)``) or given as samples."""
    shape = tuple(g.size for g in grids)
    if callable(f):
        if len(grids) == 1:
            vals = np.asarray(f(grids[0]), dtype=float)
        else:
            mesh = np.meshgrid(*grids, indexing="ij")
            vals = np.asarray(f(*mesh), dtype=float)
    else:
        vals = np.asarray(f, dtype=float)
    if vals.shape != shape:
        raise ValueError(f"{name} sampled on the grid must have shape {shape}, got {vals.shape}")
    if not np.all(np.isfinite(vals)):
        raise ValueError(f"{name} must be finite on the grid")
    return vals


def tensor_grid_problem(
    f: Callable[..., ArrayLike] | ArrayLike,
    y1: ArrayLike,
    y2: ArrayLike,
    x1: ArrayLike | None,
    x2: ArrayLike | None,
) -> tuple[FloatArray, float, FloatArray, float, FloatArray, FloatArray, FloatArray]:
    """Checked inputs of a 2-D grid problem: ``(y1, h1, y2, h2, f on the grid, x1, x2)``.

    ``x1``/``x2`` (the output grids) default to ``y1``/``y2``.
    """
    ya, h1 = uniform_grid("y1", y1)
    yb, h2 = uniform_grid("y2", y2)
    fy = sample_on_grid("f", f, ya, yb)
    xa = ya if x1 is None else np.asarray(x1, dtype=float).ravel()
    xb = yb if x2 is None else np.asarray(x2, dtype=float).ravel()
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(xb))):
        raise ValueError("x1 and x2 must be finite")
    return ya, h1, yb, h2, fy, xa, xb
