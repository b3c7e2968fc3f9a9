"""deeprelax: Deep Relaxation — PDE-derived optimizers for deep networks, the PDE lab and experiments.

Layers (dependencies point downwards only):

* ``deeprelax.optim``   — pure PyTorch optimizers (Entropy-SGD, HJ, HEAT, ...).
* ``deeprelax.pde``     — pure numpy/scipy PDE and SDE solvers.
* ``deeprelax.cluster`` — pure numpy/scipy k-means by Entropy-SGD (stochastic backward Euler).
* ``deeprelax.nets``    — networks and data loaders (PyTorch, numpy).
* ``deeprelax.experiments`` / ``deeprelax.cli`` — training harness, labs, command line.
"""

__version__ = "0.1.0"
