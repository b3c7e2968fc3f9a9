"""Diagnostics of the minima found: curvature, local entropy, landscape slices and SGD noise.

Pure PyTorch + numpy/scipy (no plotting: the figures are drawn by :mod:`deeprelax.experiments.diagnose`).
Everything is measured on an :class:`Objective`: the mean loss over a fixed list of batches, the network in
eval mode with its BatchNorm statistics frozen, so every number is a deterministic function of the weights
(and of the seed of the estimator).

>>> import torch, torch.nn.functional as F
>>> from deeprelax.diagnostics import top_eigenvalues, hutchinson_trace
>>> model = torch.nn.Linear(3, 2)
>>> batches = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
>>> lam = top_eigenvalues(model, F.cross_entropy, batches, k=1)
>>> tr, se = hutchinson_trace(model, F.cross_entropy, batches, n_samples=10, seed=0)
"""

from deeprelax.diagnostics.curvature import (
    EigenResult,
    SLQResult,
    hessian_operator,
    hutchinson_trace,
    hutchinson_trace_of,
    lanczos,
    slq,
    top_eigenpairs,
    top_eigenvalues,
)
from deeprelax.diagnostics.landscape import (
    filter_normalized_direction,
    interpolate,
    landscape_1d,
    landscape_2d,
)
from deeprelax.diagnostics.local_entropy import (
    Estimate,
    local_energy,
    local_entropy_langevin,
    local_entropy_mc,
    local_entropy_quadratic,
)
from deeprelax.diagnostics.noise import (
    NoiseSpectrum,
    compare_with_hessian,
    gradient_gram,
    noise_eigenvectors,
    noise_spectrum,
    noise_spectrum_from_grads,
    numerical_rank,
)
from deeprelax.diagnostics.objective import Objective, make_batches

__all__ = [
    "EigenResult",
    "Estimate",
    "NoiseSpectrum",
    "Objective",
    "SLQResult",
    "compare_with_hessian",
    "filter_normalized_direction",
    "gradient_gram",
    "hessian_operator",
    "hutchinson_trace",
    "hutchinson_trace_of",
    "interpolate",
    "lanczos",
    "landscape_1d",
    "landscape_2d",
    "local_energy",
    "local_entropy_langevin",
    "local_entropy_mc",
    "local_entropy_quadratic",
    "make_batches",
    "noise_eigenvectors",
    "noise_spectrum",
    "noise_spectrum_from_grads",
    "numerical_rank",
    "slq",
    "top_eigenpairs",
    "top_eigenvalues",
]
