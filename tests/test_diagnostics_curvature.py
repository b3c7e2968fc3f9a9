"""Curvature diagnostics against exact oracles: linear least squares has the Hessian (2/N) X̃ᵀX̃ exactly."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deeprelax.diagnostics import (
    Objective,
    hutchinson_trace,
    hutchinson_trace_of,
    make_batches,
    slq,
    top_eigenpairs,
    top_eigenvalues,
)


def mse(out, t):
    return ((out.squeeze(-1) - t) ** 2).mean()


def least_squares(n=60, d=7, seed=0):
    """Linear model with bias on (X, y) in float64; f(w) = mean (x̃·w − y)², H = (2/N) X̃ᵀX̃."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.linspace(0.3, 3.0, d, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    torch.manual_seed(seed)
    model = nn.Linear(d, 1).double()
    Xt = torch.cat([X, torch.ones(n, 1, dtype=torch.float64)], 1)  # parameter order: weight, then bias
    H = (2.0 / n) * (Xt.T @ Xt)
    return model, make_batches(X, y, batch_size=16), H.numpy()


def test_objective_matches_explicit_loss_gradient_and_hessian():
    model, batches, H = least_squares()
    obj = Objective(model, mse, batches)
    X = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    w = obj.w0.clone().requires_grad_(True)
    Xt = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], 1)
    f = ((Xt @ w - y) ** 2).mean()
    (g,) = torch.autograd.grad(f, w)
    assert obj.loss() == pytest.approx(float(f.detach()), rel=1e-12)
    assert torch.allclose(obj.grad(), g, rtol=1e-10, atol=1e-12)
    v = torch.randn(obj.p, dtype=torch.float64)
    assert np.allclose(obj.hvp(v).numpy(), H @ v.numpy(), rtol=1e-10, atol=1e-12)


HVP_METHODS = ["reverse-over-forward", "autograd", "func"]


def test_the_default_hvp_method_is_reverse_over_forward():
    model, batches, _ = least_squares()
    assert Objective(model, mse, batches).hvp_method == "reverse-over-forward"


@pytest.mark.parametrize("method", HVP_METHODS)
def test_hvp_methods_agree_with_autograd_hessian_on_a_nonlinear_net(method):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    x, y = torch.randn(10, 3, dtype=torch.float64), torch.randint(0, 3, (10,))
    a = Objective(model, F.cross_entropy, [(x[:6], y[:6]), (x[6:], y[6:])], hvp_method=method)
    b = Objective(model, F.cross_entropy, [(x, y)], hvp_method=method)

    def f(w):
        return F.cross_entropy(torch.func.functional_call(model, a.unflatten(w), (x,)), y)

    H = torch.autograd.functional.hessian(f, a.w0.clone())
    v = torch.randn(a.p, dtype=torch.float64)
    assert torch.allclose(a.hvp(v), H @ v, atol=1e-12)
    assert torch.allclose(b.hvp(v), H @ v, atol=1e-12)


def small_convnet():
    """Conv → BatchNorm (non-trivial running statistics) → ReLU → max-pool → linear, in float64."""
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(27, 4)
    ).double()
    bn = model[1]
    bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3]))
    bn.running_var.copy_(torch.tensor([0.5, 2.0, 1.5]))
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.2, 0.7, -0.9]))
        bn.bias.copy_(torch.tensor([0.05, -0.1, 0.2]))
    x, y = torch.randn(12, 1, 8, 8, dtype=torch.float64), torch.randint(0, 4, (12,))
    return model, x, y


@pytest.mark.parametrize("method", HVP_METHODS)
def test_hvp_methods_match_the_explicit_hessian_of_a_convnet_with_frozen_batchnorm(method):
    model, x, y = small_convnet()
    obj = Objective(model, F.cross_entropy, [(x[:5], y[:5]), (x[5:], y[5:])], hvp_method=method)
    buffers = dict(model.named_buffers())
    model.eval()

    def f(w):
        return F.cross_entropy(torch.func.functional_call(model, {**buffers, **obj.unflatten(w)}, (x,)), y)

    H = torch.autograd.functional.hessian(f, obj.w0.clone())
    assert H.abs().max() > 1e-2  # a non-trivial Hessian, so the comparison can fail
    for seed in range(3):
        v = torch.randn(obj.p, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        assert torch.allclose(obj.hvp(v), H @ v, rtol=1e-10, atol=1e-12)


def test_reverse_over_forward_equals_double_backward_on_lenet_to_float64_round_off():
    from deeprelax.nets import create_model

    torch.manual_seed(0)
    model = create_model("lenet", dropout=0.25).double()
    x, y = torch.randn(16, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (16,))
    batches = [(x[:10], y[:10]), (x[10:], y[10:])]
    new = Objective(model, F.cross_entropy, batches)
    old = Objective(model, F.cross_entropy, batches, hvp_method="autograd")
    fwd = Objective(model, F.cross_entropy, batches, hvp_method="func")
    v = torch.randn(new.p, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    a, b, c = new.hvp(v), old.hvp(v), fwd.hvp(v)
    scale = float(b.abs().max())
    assert scale > 1e-3
    assert float((a - b).abs().max()) < 1e-12 * scale
    assert float((c - b).abs().max()) < 1e-12 * scale
    assert new.n_hvp == 1


def test_top_eigenvalues_match_eigh():
    model, batches, H = least_squares()
    exact = np.linalg.eigh(H)[0][::-1]
    lam = top_eigenvalues(model, mse, batches, k=3, tol=1e-10)
    assert np.all(np.diff(lam) <= 0)  # descending
    assert np.allclose(lam, exact[:3], rtol=1e-8)
    res = top_eigenpairs(Objective(model, mse, batches), k=2, tol=1e-10)
    assert np.all(res.residuals < 1e-8 * exact[0])
    for i in range(2):  # eigenvectors up to sign
        assert abs(abs(res.vectors[:, i] @ np.linalg.eigh(H)[1][:, -1 - i]) - 1) < 1e-8


def test_top_eigenvalue_on_lenet_is_certified_by_its_residual():
    from deeprelax.nets import create_model

    torch.manual_seed(0)
    model = create_model("lenet", dropout=0.25)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    obj = Objective(model, F.cross_entropy, [(x, y)])
    res = top_eigenpairs(obj, k=1, tol=1e-3)
    # power-iteration check: the Rayleigh quotient of the returned vector is the value, and r bounds the error
    u = torch.as_tensor(res.vectors[:, 0], dtype=torch.float32)
    assert float(u @ obj.hvp(u)) == pytest.approx(res.values[0], rel=1e-3)
    assert res.residuals[0] < 0.05 * abs(res.values[0])


def test_hutchinson_trace_is_unbiased_with_the_right_standard_error():
    model, batches, H = least_squares()
    n = 400
    est, se = hutchinson_trace(model, mse, batches, n_samples=n, seed=3)
    assert abs(est - np.trace(H)) < 4 * se
    # Var(zᵀHz) = 2(‖H‖_F² − Σ H_ii²) for Rademacher z
    exact_se = np.sqrt(2 * (np.sum(H**2) - np.sum(np.diag(H) ** 2)) / n)
    assert se == pytest.approx(exact_se, rel=0.25)


def test_hutchinson_trace_of_a_diagonal_hessian_is_exact():
    # Rademacher probes: zᵀ diag(h) z = Σ h exactly, so the estimate is exact with zero error
    model = nn.Linear(5, 1, bias=False).double()
    X = torch.eye(5, dtype=torch.float64) * torch.arange(1, 6, dtype=torch.float64)
    y = torch.zeros(5, dtype=torch.float64)
    est, se = hutchinson_trace(model, mse, [(X, y)], n_samples=5, seed=0)
    assert est == pytest.approx(2 / 5 * 55, rel=1e-12) and se < 1e-12


def test_slq_quadrature_is_exact_for_low_degree_polynomials_and_full_krylov_space():
    model, batches, H = least_squares()
    obj = Objective(model, mse, batches)
    evals = np.linalg.eigh(H)[0]
    p = obj.p
    # m = p: the Ritz values are the eigenvalues, and the quadrature is exact for every g
    full = slq(obj, n_probes=3, m=p, seed=0)
    gen = torch.Generator().manual_seed(0)
    for nodes, wts in zip(full.nodes, full.weights):
        v = (torch.randint(0, 2, (p,), generator=gen) * 2 - 1).double().numpy() / np.sqrt(p)
        assert np.allclose(np.sort(nodes), evals, rtol=1e-7)
        assert wts.sum() == pytest.approx(1.0, abs=1e-12)
        Hexp = np.linalg.eigh(H)[1] @ np.diag(np.exp(evals / evals.max())) @ np.linalg.eigh(H)[1].T
        assert np.sum(wts * np.exp(nodes / evals.max())) == pytest.approx(v @ Hexp @ v, rel=1e-8)
    # m = 3 < p: exact for polynomials of degree <= 2m - 1 = 5
    part = slq(obj, n_probes=2, m=3, seed=1)
    gen = torch.Generator().manual_seed(1)
    for nodes, wts in zip(part.nodes, part.weights):
        v = (torch.randint(0, 2, (p,), generator=gen) * 2 - 1).double().numpy() / np.sqrt(p)
        for j in (1, 3, 5):
            assert np.sum(wts * nodes**j) == pytest.approx(v @ np.linalg.matrix_power(H, j) @ v, rel=1e-8)
        assert len(nodes) == 3


def test_slq_density_approaches_the_smoothed_exact_density():
    model, batches, H = least_squares(d=11)
    obj = Objective(model, mse, [(torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]))])
    evals = np.linalg.eigh(H)[0]
    res = slq(obj, n_probes=80, m=obj.p, seed=0)
    sigma = 0.3 * (evals.max() - evals.min()) / obj.p
    grid = np.linspace(evals.min() - 6 * sigma, evals.max() + 6 * sigma, 800)
    exact = np.exp(-0.5 * ((grid[:, None] - evals[None]) / sigma) ** 2).sum(1) / (
        obj.p * sigma * np.sqrt(2 * np.pi)
    )
    dens = res.density(grid, sigma)
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-3)
    assert np.abs(dens - exact).max() < 0.25 * exact.max()  # 80 probes: statistical error ~ 10 %
    assert res.trace() == pytest.approx(np.trace(H), rel=0.05)


def test_same_seed_same_numbers_other_seed_other_numbers():
    model, batches, _ = least_squares()
    obj = Objective(model, mse, batches)
    assert hutchinson_trace_of(obj, 20, seed=5) == hutchinson_trace_of(obj, 20, seed=5)
    assert hutchinson_trace_of(obj, 20, seed=5) != hutchinson_trace_of(obj, 20, seed=6)
    a, b = slq(obj, 2, 4, seed=2), slq(obj, 2, 4, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a.nodes, b.nodes))
    assert np.array_equal(top_eigenpairs(obj, 2, seed=4).values, top_eigenpairs(obj, 2, seed=4).values)


def test_bad_arguments_raise_value_errors_naming_them():
    model, batches, _ = least_squares()
    obj = Objective(model, mse, batches)
    with pytest.raises(ValueError, match="k must"):
        top_eigenvalues(model, mse, batches, k=0)
    with pytest.raises(ValueError, match="tol"):
        top_eigenpairs(obj, 1, tol=0)
    with pytest.raises(ValueError, match="n_samples"):
        hutchinson_trace(model, mse, batches, n_samples=1)
    with pytest.raises(ValueError, match="data"):
        Objective(model, mse, [])
    with pytest.raises(ValueError, match="model"):
        Objective(lambda x: x, mse, batches)
    with pytest.raises(ValueError, match="hvp_method"):
        Objective(model, mse, batches, hvp_method="fd")
    with pytest.raises(ValueError, match="loss_fn"):
        Objective(model, 3, batches)
    with pytest.raises(ValueError, match="n must"):
        make_batches(torch.zeros(4, 2), torch.zeros(4), n=9)
    with pytest.raises(ValueError, match="length"):
        obj.hvp(torch.zeros(3))


def test_objective_is_eval_mode_with_frozen_batchnorm_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 2))
    x, y = torch.randn(20, 4), torch.randint(0, 2, (20,))
    model.train()
    model(x)  # give BN non-trivial running statistics
    stats = [b.clone() for b in model.buffers()]
    obj = Objective(model, F.cross_entropy, make_batches(x, y, batch_size=7))
    l1 = obj.loss()
    obj.hvp(torch.randn(obj.p))
    assert obj.loss() == l1  # deterministic: no dropout, no BN update
    assert all(torch.equal(a, b) for a, b in zip(stats, model.buffers()))
    assert model.training
    model.eval()
    with torch.no_grad():
        assert l1 == pytest.approx(float(F.cross_entropy(model(x), y)), rel=1e-6)
    # batch size does not change the objective (a mean over all examples)
    assert Objective(model, F.cross_entropy, make_batches(x, y, batch_size=20)).loss() == pytest.approx(
        l1, rel=1e-6
    )
    # a seeded subset is reproducible and differs from the first-n subset
    s1 = make_batches(x, y, n=8, seed=1)
    assert torch.equal(s1[0][0], make_batches(x, y, n=8, seed=1)[0][0])
    assert not torch.equal(s1[0][0], make_batches(x, y, n=8)[0][0])
