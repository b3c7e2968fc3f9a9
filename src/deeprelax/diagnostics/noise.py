r"""SGD noise: the diffusion matrix D(w) of the minibatch gradient, through N×N Gram matrices only.

With per-sample gradients g_k = ∇ℓ_k(w) (k = 1..N, computed by ``torch.func.vmap(grad)``) and ḡ their mean,

.. math::  D(w) = \frac{1}{N}\sum_{k=1}^{N} (g_k − ḡ)(g_k − ḡ)ᵀ = \frac{1}{N} CᵀC,\qquad C = J\,[g_1 … g_N]ᵀ,
           \quad J = I − \tfrac{1}{N}\mathbf 1\mathbf 1ᵀ

(Chaudhari & Soatto's D = N⁻¹Σ∇f_k∇f_kᵀ − ∇f∇fᵀ; a minibatch of b drawn with replacement has gradient
covariance D/b, and SGD with step η behaves like Langevin dynamics at temperature β⁻¹ = η/(2b) with
diffusion D). D is p×p and never formed: its non-zero eigenvalues are those of the N×N matrix
N⁻¹CCᵀ = N⁻¹ J G J with G_{kl} = g_k·g_l (accumulated in float64 block by block), and an eigenvector v of
that matrix (v ⊥ 𝟏) gives the eigenvector u = Cᵀv / √(Nλ) = Σ_k v_k g_k / √(Nλ) of D.

**Numerical rank** (the convention of ``pratikac/grad-info``, as ``numpy.linalg.matrix_rank``):
rank = #{λ_i > λ_max · N · ε}, ε = float32 machine epsilon (the gradients are float32), N the size of the
Gram matrix; reported as a percentage of the parameter count p. Since rank ≤ N − 1, a measurement on N
samples can never exceed 100·(N − 1)/p %: on a network with more weights than samples that bound, not
the network, may set the figure — compare with ``rank_bound_percent``. (Eigenvalues below the float64
round-off of the centring, N·ε₆₄·tr G/N, are set to 0 first, so that identical gradients give rank 0.)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from deeprelax.diagnostics.curvature import EigenResult
from deeprelax.diagnostics.objective import Objective

__all__ = [
    "NoiseSpectrum",
    "compare_with_hessian",
    "gradient_gram",
    "noise_eigenvectors",
    "noise_spectrum",
    "noise_spectrum_from_grads",
    "numerical_rank",
]

EPS32 = float(np.finfo(np.float32).eps)


def numerical_rank(eigenvalues: NDArray[np.float64], size: int | None = None, *, eps: float = EPS32) -> int:
    """#{λ > λ_max · size · eps} (``size`` defaults to the number of eigenvalues)."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.size == 0:
        return 0
    size = lam.size if size is None else int(size)
    lmax = lam.max()
    if lmax <= 0:
        return 0
    return int(np.sum(lam > lmax * size * eps))


@dataclass
class NoiseSpectrum:
    """Spectrum of D (descending; N values, the trailing ones ≈ 0) and what is derived from it."""

    eigenvalues: NDArray[np.float64]
    gram_vectors: NDArray[np.float64]  # (N, N) eigenvectors of N⁻¹JGJ, columns in the same order
    n: int
    p: int
    mean_grad_norm: float  # |ḡ| = |∇f(w)|
    eps: float = EPS32
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        return float(max(self.eigenvalues[0], 0.0) * self.n * self.eps)

    @property
    def rank(self) -> int:
        return numerical_rank(self.eigenvalues, self.n, eps=self.eps)

    @property
    def rank_percent(self) -> float:
        return 100.0 * self.rank / self.p

    @property
    def rank_bound_percent(self) -> float:
        return 100.0 * (self.n - 1) / self.p

    @property
    def trace(self) -> float:
        return float(np.clip(self.eigenvalues, 0, None).sum())

    def summary(self) -> dict[str, Any]:
        lam = self.eigenvalues
        kept = lam[: self.rank]
        tr = self.trace
        return {
            "n_samples": self.n,
            "n_params": self.p,
            "rank": self.rank,
            "rank_percent": self.rank_percent,
            "rank_bound_percent": self.rank_bound_percent,
            "threshold": self.threshold,
            "lambda_max": float(lam[0]),
            "trace": tr,
            "eig_mean_above_threshold": float(kept.mean()) if kept.size else 0.0,
            "eig_std_above_threshold": float(kept.std()) if kept.size else 0.0,
            "eig_mean_all_p": tr / self.p,
            # λ_max over the isotropic level tr D / p: 1 for isotropic noise
            "anisotropy": float(lam[0] / (tr / self.p)) if tr > 0 else math.inf,
            "effective_rank": float(tr**2 / np.sum(np.clip(lam, 0, None) ** 2)) if tr > 0 else 0.0,
            "mean_grad_norm": self.mean_grad_norm,
            **self.extra,
        }


def _spectrum_from_gram(G: NDArray[np.float64], p: int, mean_norm2: float, eps: float) -> NoiseSpectrum:
    n = G.shape[0]
    J = np.eye(n) - 1.0 / n
    M = J @ G @ J / n
    M = (M + M.T) / 2
    lam, vec = np.linalg.eigh(M)
    # float64 round-off of the centring, relative to the raw second moment tr G / N: values below it are 0
    lam[np.abs(lam) <= n * np.finfo(np.float64).eps * max(np.trace(G) / n, 0.0)] = 0.0
    order = np.argsort(lam)[::-1]
    return NoiseSpectrum(lam[order], vec[:, order], n, p, math.sqrt(max(mean_norm2, 0.0)), eps)


def noise_spectrum_from_grads(grads: Tensor | NDArray[np.float64], *, eps: float = EPS32) -> NoiseSpectrum:
    """The spectrum of D for an explicit (N, p) matrix of per-sample gradients (N ≥ 2)."""
    g = torch.as_tensor(grads).double()
    if g.dim() != 2 or g.shape[0] < 2:
        raise ValueError(f"grads must be an (N, p) matrix with N >= 2, got shape {tuple(g.shape)}")
    G = (g @ g.T).cpu().numpy()
    mean = g.mean(0)
    return _spectrum_from_gram(G, g.shape[1], float(mean @ mean), eps)


class _SampleBlocks:
    """Per-sample gradients of the objective's examples in blocks of ``chunk`` (float64), cached if small."""

    def __init__(self, obj: Objective, chunk: int, cache_bytes: int, w: Tensor | None) -> None:
        if not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
        x = torch.cat([xb for xb, _ in obj.batches])
        y = torch.cat([yb for _, yb in obj.batches])
        self.obj, self.w = obj, w
        self.slices = [(x[i : i + chunk], y[i : i + chunk]) for i in range(0, len(x), chunk)]
        # the cache keeps float32 copies (the gradients' own precision); products are formed in float64
        self.cache: dict[int, Tensor] | None = {} if obj.n * obj.p * 4 <= cache_bytes else None

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, i: int) -> Tensor:
        if self.cache is not None and i in self.cache:
            return self.cache[i].double()
        xb, yb = self.slices[i]
        g = self.obj.per_sample_grads(xb, yb, self.w)
        if self.cache is not None:
            self.cache[i] = g
        return g.double()


def gradient_gram(
    obj: Objective, *, chunk: int = 128, cache_bytes: int = 1 << 30, w: Tensor | None = None
) -> tuple[NDArray[np.float64], Tensor]:
    """G_{kl} = g_k·g_l over the objective's N examples (float64, N×N) and ḡ (float64, p).

    Per-sample gradients are computed block by block; when all N·p of them fit in ``cache_bytes`` (in
    their own dtype, float32 for the networks) they are kept, otherwise off-diagonal blocks are recomputed
    (memory: one or two blocks).
    """
    blocks = _SampleBlocks(obj, chunk, cache_bytes, w)
    n = obj.n
    G = np.zeros((n, n))
    mean = torch.zeros(obj.p, dtype=torch.float64, device=obj.device)
    offs = np.cumsum([0] + [len(s[0]) for s in blocks.slices])
    for i in range(len(blocks)):
        gi = blocks[i]
        mean += gi.sum(0)
        for j in range(i + 1):
            gj = gi if j == i else blocks[j]
            b = (gi @ gj.T).cpu().numpy()
            G[offs[i] : offs[i + 1], offs[j] : offs[j + 1]] = b
            G[offs[j] : offs[j + 1], offs[i] : offs[i + 1]] = b.T
    return G, mean / n


def noise_spectrum(
    obj: Objective,
    *,
    chunk: int = 128,
    cache_bytes: int = 1 << 30,
    eps: float = EPS32,
    w: Tensor | None = None,
) -> NoiseSpectrum:
    """The spectrum of D(w) over the objective's examples (all of its batches), its rank and summary."""
    G, mean = gradient_gram(obj, chunk=chunk, cache_bytes=cache_bytes, w=w)
    return _spectrum_from_gram(G, obj.p, float(mean @ mean), eps)


def _block_pass(obj: Objective, chunk: int, w: Tensor | None) -> Iterator[tuple[int, Tensor]]:
    blocks = _SampleBlocks(obj, chunk, 0, w)
    off = 0
    for i in range(len(blocks)):
        g = blocks[i]
        yield off, g
        off += len(g)


def noise_eigenvectors(
    obj: Objective, spec: NoiseSpectrum, k: int = 1, *, chunk: int = 128, w: Tensor | None = None
) -> Tensor:
    """The top-k unit eigenvectors u_j = Σ_k v_{kj} g_k / √(Nλ_j) of D, as a (p, k) float64 tensor."""
    if not 1 <= k <= spec.rank:
        raise ValueError(f"k must be in [1, rank = {spec.rank}], got {k!r}")
    V = torch.as_tensor(spec.gram_vectors[:, :k], device=obj.device)
    U = torch.zeros(obj.p, k, dtype=torch.float64, device=obj.device)
    for off, g in _block_pass(obj, chunk, w):
        U += g.T @ V[off : off + len(g)]
    lam = torch.as_tensor(spec.eigenvalues[:k].copy(), device=obj.device)
    return U / torch.sqrt(spec.n * lam)


def compare_with_hessian(
    obj: Objective,
    spec: NoiseSpectrum,
    hess: EigenResult,
    *,
    k: int | None = None,
    chunk: int = 128,
    w: Tensor | None = None,
    hess_obj: Objective | None = None,
) -> dict[str, Any]:
    """How D and H relate in their top directions. ``obj`` is the objective D was computed on; H's products
    are taken on ``hess_obj`` (default ``obj``; pass the objective ``hess`` came from when it used more
    examples — both then estimate the same population quantities from different samples).

    Returns, for the k top eigenpairs (λ_i(H), q_i) of H and (λ_j(D), u_j) of D:
    ``hessian_eigs``, ``D_along_hessian`` = q_iᵀ D q_i, ``noise_eigs``, ``H_along_noise`` = u_jᵀ H u_j,
    ``ratio_D_over_H`` = q_iᵀDq_i / λ_i(H) (constant if D ∝ H, the case Φ = f), ``overlap`` = ‖UᵀQ‖²_F / k
    (1: same top-k subspace, k/p: random), ``overlap_random`` = k/p, ``isotropic_level`` = tr D / p.
    """
    kk = hess.vectors.shape[1] if k is None else int(k)
    kk = min(kk, hess.vectors.shape[1], spec.rank)
    if kk < 1:
        raise ValueError("need at least one Hessian eigenvector and a non-zero noise spectrum")
    Q = torch.as_tensor(hess.vectors[:, :kk].copy(), device=obj.device)
    s1 = torch.zeros(kk, dtype=torch.float64, device=obj.device)
    s2 = torch.zeros(kk, dtype=torch.float64, device=obj.device)
    for _, g in _block_pass(obj, chunk, w):
        proj = g @ Q
        s1 += proj.sum(0)
        s2 += (proj**2).sum(0)
    n = spec.n
    d_along_h = (s2 / n - (s1 / n) ** 2).cpu().numpy()
    U = noise_eigenvectors(obj, spec, kk, chunk=chunk, w=w)
    hobj = obj if hess_obj is None else hess_obj
    h_along_u = np.array([float(torch.dot(U[:, j], hobj.hvp(U[:, j], w).double())) for j in range(kk)])
    overlap = float(((U.T @ Q) ** 2).sum() / kk)
    return {
        "k": kk,
        "hessian_eigs": hess.values[:kk].tolist(),
        "D_along_hessian": d_along_h.tolist(),
        "ratio_D_over_H": (d_along_h / hess.values[:kk]).tolist(),
        "noise_eigs": spec.eigenvalues[:kk].tolist(),
        "H_along_noise": h_along_u.tolist(),
        "overlap": overlap,
        "overlap_random": kk / obj.p,
        "isotropic_level": spec.trace / obj.p,
    }
