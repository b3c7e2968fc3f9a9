"""SGD-noise diagnostics: the N×N Gram route against the explicit p×p covariance, ranks, D vs H."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deeprelax.diagnostics import (
    Objective,
    compare_with_hessian,
    gradient_gram,
    noise_eigenvectors,
    noise_spectrum,
    noise_spectrum_from_grads,
    numerical_rank,
    top_eigenpairs,
)


def tiny(n=12, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).to(dtype)  # p = 23 > N
    x, y = torch.randn(n, 4, dtype=dtype), torch.randint(0, 2, (n,))
    return model, x, y


def explicit_grads(model, x, y):
    rows = []
    for k in range(len(x)):
        model.zero_grad()
        F.cross_entropy(model(x[k : k + 1]), y[k : k + 1]).backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).clone())
    return torch.stack(rows)


def test_per_sample_gradients_and_spectrum_match_the_explicit_covariance():
    model, x, y = tiny()
    obj = Objective(model, F.cross_entropy, [(x[:5], y[:5]), (x[5:], y[5:])])
    Gex = explicit_grads(model, x, y)
    assert torch.allclose(obj.per_sample_grads(x, y), Gex, atol=1e-12)
    gbar = Gex.mean(0)
    D = (Gex - gbar).T @ (Gex - gbar) / len(x)  # explicit p×p, only possible on a tiny model
    exact = np.sort(np.linalg.eigvalsh(D.numpy()))[::-1]
    spec = noise_spectrum(obj, chunk=5)
    assert spec.n == 12 and spec.p == obj.p == 23
    assert np.allclose(spec.eigenvalues, exact[:12], atol=1e-12)
    assert spec.rank == numerical_rank(exact, 12) == 11  # centring removes one dimension
    assert spec.trace == pytest.approx(float(torch.trace(D)), rel=1e-10)
    assert spec.mean_grad_norm == pytest.approx(float(obj.grad().norm()), rel=1e-10)
    # eigenvectors of D from the Gram matrix: D u = λ u, unit norm
    U = noise_eigenvectors(obj, spec, 3, chunk=4)
    for j in range(3):
        assert torch.allclose(D @ U[:, j], spec.eigenvalues[j] * U[:, j], atol=1e-10)
        assert float(U[:, j].norm()) == pytest.approx(1.0, abs=1e-10)


def test_blocked_gram_without_cache_equals_cached():
    model, x, y = tiny(n=11, dtype=torch.float32)
    obj = Objective(model, F.cross_entropy, [(x, y)])
    G1, m1 = gradient_gram(obj, chunk=4)
    G2, m2 = gradient_gram(obj, chunk=3, cache_bytes=0)
    assert np.allclose(G1, G2, rtol=1e-6, atol=1e-9) and torch.allclose(m1, m2, atol=1e-7)
    assert np.allclose(G1, G1.T)


def test_rank_of_a_constructed_covariance_of_known_rank():
    gen = torch.Generator().manual_seed(0)
    for r in (1, 4, 9):
        grads = torch.randn(30, r, generator=gen, dtype=torch.float64) @ torch.randn(
            r, 200, generator=gen, dtype=torch.float64
        )
        spec = noise_spectrum_from_grads(grads)
        assert spec.rank == r
        assert spec.rank_percent == pytest.approx(100 * r / 200)
    # all gradients equal: no noise at all
    assert noise_spectrum_from_grads(torch.ones(5, 7)).rank == 0


def test_rank_through_a_model_whose_gradients_live_in_a_known_subspace():
    # least squares without bias: g_k = 2 (x_k·w − y_k) x_k, so with inputs in an r-dimensional subspace of
    # R^20, rank D = r (the residuals are generic)
    torch.manual_seed(0)
    r, d, n = 3, 20, 40
    x = torch.randn(n, r) @ torch.randn(r, d)
    y = torch.randn(n)
    model = nn.Linear(d, 1, bias=False)
    obj = Objective(model, lambda o, t: ((o.squeeze(-1) - t) ** 2).mean(), [(x, y)])
    spec = noise_spectrum(obj)
    assert spec.rank == r
    assert spec.summary()["rank_bound_percent"] == pytest.approx(100 * (n - 1) / d)


def test_numerical_rank_convention():
    n = 10
    eps = np.finfo(np.float32).eps
    lam = np.array([1.0, 1e-3, 1.01 * n * eps, 0.99 * n * eps, 0.0, -1e-9])
    assert numerical_rank(lam, n) == 3  # λ > λ_max · N · eps_float32
    assert numerical_rank(np.zeros(4)) == 0


def test_comparison_with_the_hessian_against_explicit_matrices():
    torch.manual_seed(1)
    n, d = 30, 6
    x, y = torch.randn(n, d, dtype=torch.float64), torch.randn(n, dtype=torch.float64)
    model = nn.Linear(d, 1, bias=False).double()
    obj = Objective(model, lambda o, t: ((o.squeeze(-1) - t) ** 2).mean(), [(x, y)])
    spec = noise_spectrum(obj)
    hess = top_eigenpairs(obj, k=2, tol=1e-12)
    out = compare_with_hessian(obj, spec, hess)
    w = obj.w0
    Gk = 2 * ((x @ w) - y)[:, None] * x
    D = ((Gk - Gk.mean(0)).T @ (Gk - Gk.mean(0)) / n).numpy()
    H = (2 / n) * (x.T @ x).numpy()
    Q = hess.vectors
    assert np.allclose(out["D_along_hessian"], np.diag(Q.T @ D @ Q), rtol=1e-9)
    dvals, dvecs = np.linalg.eigh(D)
    U = dvecs[:, ::-1][:, :2]
    assert np.allclose(out["noise_eigs"], dvals[::-1][:2], rtol=1e-9)
    assert np.allclose(out["H_along_noise"], np.diag(U.T @ H @ U), rtol=1e-8)
    assert out["overlap"] == pytest.approx(np.sum((U.T @ Q) ** 2) / 2, rel=1e-8)
    assert out["isotropic_level"] == pytest.approx(np.trace(D) / d, rel=1e-10)


def test_bad_arguments():
    with pytest.raises(ValueError, match="grads"):
        noise_spectrum_from_grads(torch.zeros(1, 5))
    model, x, y = tiny()
    obj = Objective(model, F.cross_entropy, [(x, y)])
    with pytest.raises(ValueError, match="chunk"):
        noise_spectrum(obj, chunk=0)
    spec = noise_spectrum(obj)
    with pytest.raises(ValueError, match="k must"):
        noise_eigenvectors(obj, spec, 0)
