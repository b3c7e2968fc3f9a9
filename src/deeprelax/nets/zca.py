"""CIFAR preprocessing of the reference runs: per-image normalisation, then ZCA whitening fitted on train.

Per-image normalisation maps each image, as a vector v ∈ R^D, to (v − mean(v)) / std(v).
ZCA whitening with regulariser ε: with m the training mean and C = (1/N) Σ_i (x_i − m)(x_i − m)ᵀ = U Λ Uᵀ,

    W = U (Λ + ε I)^(-1/2) Uᵀ,        x ↦ (x − m) W,

the symmetric whitening matrix (the one closest to the identity), so whitened training data have covariance
U Λ (Λ + ε I)^(-1) Uᵀ, the identity up to ε.
"""

from __future__ import annotations

import numpy as np


def per_image_normalize(x: np.ndarray, eps: float = 1e-8, dtype: type = np.float64) -> np.ndarray:
    """Subtract each image's mean and divide by its standard deviation (floored at ``eps``); one row each."""
    x = np.asarray(x, dtype=dtype).reshape(len(x), -1)
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.maximum(x.std(axis=1, keepdims=True), eps)


class ZCA:
    """ZCA whitening ``x ↦ (x − m) W`` with ``W = U (Λ + εI)^(-1/2) Uᵀ`` fitted on the training rows."""

    def __init__(self, eps: float = 1e-2) -> None:
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.eps = float(eps)
        self.mean: np.ndarray | None = None
        self.matrix: np.ndarray | None = None

    def fit(self, x: np.ndarray, chunk: int = 4096, method: str = "auto") -> ZCA:
        """Fit m and W on the rows of ``x``.

        ``method="eigh"`` diagonalises the D×D covariance; ``method="svd"`` uses the thin SVD of the centred
        N×D data (C = V (S²/N) Vᵀ), with W = ε^(-1/2) I + V ((S²/N + ε)^(-1/2) − ε^(-1/2)) Vᵀ — the same
        matrix, cheaper when N < D. ``"auto"`` picks svd when N < D.
        """
        if method not in ("auto", "eigh", "svd"):
            raise ValueError(f"method must be 'auto', 'eigh' or 'svd', got {method!r}")
        x = np.asarray(x).reshape(len(x), -1)
        n, d = x.shape
        self.mean = x.mean(axis=0, dtype=np.float64)
        if method == "svd" or (method == "auto" and n < d):
            _, s, vt = np.linalg.svd(x.astype(np.float64) - self.mean, full_matrices=False)
            lam = s**2 / n
            shrink = 1.0 / np.sqrt(lam + self.eps) - 1.0 / np.sqrt(self.eps)
            self.matrix = (vt.T * shrink) @ vt + np.eye(d) / np.sqrt(self.eps)
            return self
        cov = np.zeros((d, d))
        for i in range(0, n, chunk):
            c = x[i : i + chunk].astype(np.float64) - self.mean
            cov += c.T @ c
        cov /= n
        lam, u = np.linalg.eigh(cov)
        lam = np.clip(lam, 0.0, None)
        self.matrix = (u / np.sqrt(lam + self.eps)) @ u.T
        return self

    def transform(self, x: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        if self.matrix is None or self.mean is None:
            raise RuntimeError("ZCA.transform called before fit")
        x = np.asarray(x).reshape(len(x), -1)
        w: np.ndarray = self.matrix.astype(dtype)
        m: np.ndarray = self.mean.astype(dtype)
        return (x.astype(dtype) - m) @ w
