r"""Loss-landscape slices: filter-normalised random directions (Li et al. 2018) and linear interpolation.

A random direction d has, for every weight tensor with ≥ 2 axes, Gaussian entries rescaled *filter by filter*
(a filter = a slice along the first axis, an output channel or a row of a linear layer):

.. math::  d_f \leftarrow \frac{d_f}{‖d_f‖}\, ‖w_f‖,

and zero entries for 1-D parameters (biases, BatchNorm scales and shifts; ``include_1d=True`` gives them
d_i·|w_i| instead). Because d_f scales with w_f, the slice α ↦ f(w + αd) is unchanged by the rescalings
w_f → c·w_f (and 1/c on the next layer) that leave a ReLU network's function unchanged, so slices of
different networks can be compared. The plots are

- 1-D: α ↦ f(w + α d);   2-D: (α, β) ↦ f(w + α d₁ + β d₂) (d₁, d₂ independent);
- interpolation: t ↦ f((1 − t) w_a + t w_b), with the floating-point buffers (BatchNorm running statistics)
  interpolated the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from deeprelax.diagnostics.objective import Batches, LossFn, Objective

__all__ = ["filter_normalized_direction", "interpolate", "landscape_1d", "landscape_2d"]


def filter_normalized_direction(
    obj: Objective, *, seed: int = 0, include_1d: bool = False, w: Tensor | None = None
) -> Tensor:
    """A filter-normalised Gaussian direction at ``w`` (see the module docstring), seeded."""
    w = obj._w(w).detach()
    gen = torch.Generator().manual_seed(int(seed))
    parts = []
    for t in obj.unflatten(w).values():
        d = torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.dtype).to(t.device)
        if t.dim() >= 2:
            wf = t.reshape(t.shape[0], -1)
            df = d.reshape(t.shape[0], -1)
            df = df * (wf.norm(dim=1, keepdim=True) / df.norm(dim=1, keepdim=True).clamp_min(1e-30))
            parts.append(df.reshape(-1))
        elif include_1d:
            parts.append((d * t.abs()).reshape(-1))
        else:
            parts.append(torch.zeros(t.numel(), dtype=t.dtype, device=t.device))
    return torch.cat(parts)


def _grid(name: str, values: Sequence[float] | NDArray[np.float64]) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a non-empty sequence of finite numbers")
    return arr


def landscape_1d(
    obj: Objective,
    direction: Tensor,
    alphas: Sequence[float] | NDArray[np.float64],
    *,
    w: Tensor | None = None,
) -> NDArray[np.float64]:
    """f(w + α d) for each α."""
    w = obj._w(w).detach()
    a = _grid("alphas", alphas)
    return np.array([obj.loss(w + float(x) * direction) for x in a])


def landscape_2d(
    obj: Objective,
    d1: Tensor,
    d2: Tensor,
    alphas: Sequence[float] | NDArray[np.float64],
    betas: Sequence[float] | NDArray[np.float64],
    *,
    w: Tensor | None = None,
) -> NDArray[np.float64]:
    """f(w + α d₁ + β d₂) on the grid, shape ``(len(betas), len(alphas))`` (rows β, as ``imshow`` wants)."""
    w = obj._w(w).detach()
    a, b = _grid("alphas", alphas), _grid("betas", betas)
    return np.array([[obj.loss(w + float(x) * d1 + float(y) * d2) for x in a] for y in b])


def interpolate(
    model_a: nn.Module,
    model_b: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    ts: Sequence[float] | NDArray[np.float64],
) -> NDArray[np.float64]:
    """f((1 − t) w_a + t w_b) for each t, parameters and floating-point buffers interpolated alike."""
    sa, sb = model_a.state_dict(), model_b.state_dict()
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        raise ValueError("model_a and model_b must have the same architecture (state-dict keys and shapes)")
    t_grid = _grid("ts", ts)
    batches = list(batches)
    import copy

    work = copy.deepcopy(model_a)
    out = []
    for t in t_grid:
        mixed = {k: (torch.lerp(sa[k], sb[k], float(t)) if sa[k].is_floating_point() else sa[k]) for k in sa}
        work.load_state_dict(mixed)
        out.append(Objective(work, loss_fn, batches).loss())
    return np.array(out)
