"""Smoke test on real data: every registered optimizer trains an MLP on scikit-learn's digits (8×8 images,
1797 samples, 25 % held out) to at least 94 % test accuracy with the same budget of 720 minibatch gradients
(SGD: 720 steps; the relaxation optimizers: 120 outer steps of L = 5, i.e. L + 1 = 6 closure calls each).
Measured: 95.3–97.8 % over seeds 0–2 for all four."""

import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from deeprelax.optim import create_optimizer

CONFIGS = {
    "sgd": dict(lr=0.1),
    "entropy-sgd": dict(lr=1.0, L=5, gamma=0.03, inner_lr=0.1),
    "heat": dict(lr=1.0, L=5, gamma=0.03, inner_lr=0.1),
    "hj": dict(lr=0.1, L=5, gamma=10.0),
}
BUDGET = 720


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    f = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return f(Xtr), f(Xte), torch.tensor(ytr), torch.tensor(yte)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_each_optimizer_trains_digits(name, digits):
    Xtr, Xte, ytr, yte = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = create_optimizer(name, model.parameters(), **CONFIGS[name])
    gen = torch.Generator().manual_seed(0)
    calls = 0

    def closure():
        nonlocal calls
        calls += 1
        idx = torch.randint(0, len(Xtr), (32,), generator=gen)  # a fresh minibatch, with replacement
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(Xtr[idx]), ytr[idx])
        loss.backward()
        return loss

    steps = BUDGET // (CONFIGS[name].get("L", 0) + 1)
    for _ in range(steps):
        opt.step(closure)
    assert calls == BUDGET
    with torch.no_grad():
        accuracy = (model(Xte).argmax(1) == yte).float().mean().item()
    assert accuracy >= 0.94, f"{name}: test accuracy {accuracy:.3f}"
