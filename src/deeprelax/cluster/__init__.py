"""Clustering by Entropy-SGD / stochastic backward Euler (pure numpy/scipy)."""
