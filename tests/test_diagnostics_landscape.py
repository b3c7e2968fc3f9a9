"""Landscape slices: filter-normalisation invariance under ReLU rescaling, interpolation, determinism."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deeprelax.diagnostics import (
    Objective,
    filter_normalized_direction,
    interpolate,
    landscape_1d,
    landscape_2d,
)


def convnet():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 4 * 4, 3)
    )


def data():
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 3, (16,), generator=g))]


def rescaled(model, c):
    """conv1 (weights and bias) × c, conv2 weights × 1/c: the same function (ReLU is positively
    homogeneous)."""
    out = convnet()
    out.load_state_dict(model.state_dict())
    with torch.no_grad():
        out[0].weight.mul_(c)
        out[0].bias.mul_(c)
        out[2].weight.div_(c)
    return out


@pytest.mark.parametrize("include_1d", [False, True])
def test_filter_normalised_slices_are_invariant_under_relu_rescaling(include_1d):
    torch.manual_seed(0)
    model = convnet()
    other = rescaled(model, 5.0)
    a, b = Objective(model, F.cross_entropy, data()), Objective(other, F.cross_entropy, data())
    assert b.loss() == pytest.approx(a.loss(), rel=1e-5)  # same function
    alphas = np.linspace(-2, 2, 7)
    da = filter_normalized_direction(a, seed=3, include_1d=include_1d)
    db = filter_normalized_direction(b, seed=3, include_1d=include_1d)
    la, lb = landscape_1d(a, da, alphas), landscape_1d(b, db, alphas)
    assert np.allclose(la, lb, rtol=1e-4)
    assert la.max() > 1.1 * la.min()  # the slice is not flat, so the comparison means something
    da2 = filter_normalized_direction(a, seed=4, include_1d=include_1d)
    db2 = filter_normalized_direction(b, seed=4, include_1d=include_1d)
    assert np.allclose(
        landscape_2d(a, da, da2, alphas[:3], alphas[2:5]),
        landscape_2d(b, db, db2, alphas[:3], alphas[2:5]),
        rtol=1e-4,
    )
    # without filter normalisation the same Gaussian direction gives a different slice: the test can fail
    g = torch.Generator().manual_seed(3)
    raw = torch.randn(a.p, generator=g) * float(da.norm() / a.p**0.5)
    assert not np.allclose(landscape_1d(a, raw, alphas), landscape_1d(b, raw, alphas), rtol=1e-2)


def test_direction_has_filter_norms_of_the_weights_and_zero_biases():
    torch.manual_seed(0)
    obj = Objective(convnet(), F.cross_entropy, data())
    d = filter_normalized_direction(obj, seed=0)
    dd, ww = obj.unflatten(d), obj.unflatten(obj.w0)
    for k in dd:
        if ww[k].dim() >= 2:
            assert torch.allclose(dd[k].flatten(1).norm(dim=1), ww[k].flatten(1).norm(dim=1), rtol=1e-5)
        else:
            assert torch.count_nonzero(dd[k]) == 0
    assert torch.equal(d, filter_normalized_direction(obj, seed=0))  # deterministic
    assert not torch.equal(d, filter_normalized_direction(obj, seed=1))
    assert landscape_1d(obj, d, [0.0])[0] == pytest.approx(obj.loss())


def test_interpolation_endpoints_and_buffers():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    b = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    x, y = torch.randn(20, 4), torch.randint(0, 3, (20,))
    a.train(), b.train()
    a(x), b(x * 2)  # different running statistics
    batches = [(x, y)]
    vals = interpolate(a, b, F.cross_entropy, batches, [0.0, 0.5, 1.0])
    assert vals[0] == pytest.approx(Objective(a, F.cross_entropy, batches).loss(), rel=1e-6)
    assert vals[2] == pytest.approx(Objective(b, F.cross_entropy, batches).loss(), rel=1e-6)
    mid = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    sa, sb = a.state_dict(), b.state_dict()
    mid.load_state_dict({k: (sa[k] + sb[k]) / 2 if sa[k].is_floating_point() else sa[k] for k in sa})
    assert vals[1] == pytest.approx(Objective(mid, F.cross_entropy, batches).loss(), rel=1e-6)
    with pytest.raises(ValueError, match="architecture"):
        interpolate(a, nn.Linear(4, 3), F.cross_entropy, batches, [0.5])
    with pytest.raises(ValueError, match="alphas"):
        landscape_1d(Objective(a, F.cross_entropy, batches), torch.zeros(58), [])
