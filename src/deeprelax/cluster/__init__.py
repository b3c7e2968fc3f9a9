"""Clustering by Entropy-SGD / stochastic backward Euler (pure numpy/scipy; scikit-learn estimator API)."""

from deeprelax.cluster.energy import assign, inertia_to_energy, kmeans_energy, kmeans_gradient
from deeprelax.cluster.stochastic_backward_euler import (
    ESGDKMeans,
    Schedule,
    backward_euler_step,
    default_schedule,
    default_step_size,
    strong_exploration,
)

__all__ = [
    "ESGDKMeans",
    "Schedule",
    "assign",
    "backward_euler_step",
    "default_schedule",
    "default_step_size",
    "inertia_to_energy",
    "kmeans_energy",
    "kmeans_gradient",
    "strong_exploration",
]
