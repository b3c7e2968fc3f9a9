"""Bridges to other training frameworks; each imports its framework lazily (install the matching extra).

* :mod:`deeprelax.integrations.lightning` — PyTorch Lightning (``pip install "deeprelax[lightning]"``).

Layering: integrations may import :mod:`deeprelax.optim` and :mod:`deeprelax.nets`, never the experiments or
the command line.
"""
