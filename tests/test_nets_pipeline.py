"""Minibatch sampling, augmentation and the BatchNorm dry feed."""

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from deeprelax.nets.augment import crop, random_crop_flip
from deeprelax.nets.batchnorm import refresh_batchnorm
from deeprelax.nets.sampler import MinibatchSampler


def test_sampling_with_replacement_is_uniform_and_repeats():
    s = MinibatchSampler(10, 8, seed=0)
    batches = torch.stack([s.next() for _ in range(2000)])
    counts = torch.bincount(batches.flatten(), minlength=10).numpy()
    # chi-square goodness of fit against the uniform law (16000 draws); fixed seed, so deterministic
    assert stats.chisquare(counts).pvalue > 0.01
    # with replacement: most batches of 8 out of 10 contain a repeat (P(no repeat) = 10!/(2!·10^8) ≈ 0.018)
    repeats = sum(len(set(b.tolist())) < 8 for b in batches)
    assert repeats > 0.9 * len(batches)


def test_shuffled_passes_are_permutations():
    n, b = 10, 4
    s = MinibatchSampler(n, b, replacement=False, seed=3)
    stream = torch.cat([s.next() for _ in range(15)])  # 60 indices = 6 full passes
    for k in range(6):
        assert sorted(stream[k * n : (k + 1) * n].tolist()) == list(range(n))
    assert not torch.equal(stream[:n], stream[n : 2 * n])


@pytest.mark.parametrize("replacement", [True, False])
def test_sampler_state_round_trip_continues_the_same_stream(replacement):
    a = MinibatchSampler(37, 5, replacement=replacement, seed=1)
    for _ in range(9):
        a.next()
    state = a.state_dict()
    expected = [a.next() for _ in range(20)]
    b = MinibatchSampler(37, 5, replacement=replacement, seed=999)
    b.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(expected, [b.next() for _ in range(20)]))
    with pytest.raises(ValueError, match="batch_size"):
        MinibatchSampler(37, 6, replacement=replacement).load_state_dict(state)


def test_sampler_validates():
    with pytest.raises(ValueError, match="batch_size"):
        MinibatchSampler(10, 0)
    with pytest.raises(ValueError, match="n must"):
        MinibatchSampler(0, 3)


def test_crop_matches_naive_slicing():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 7, 5, generator=g)
    pad = 2
    dy = torch.randint(0, 2 * pad + 1, (6,), generator=g)
    dx = torch.randint(0, 2 * pad + 1, (6,), generator=g)
    padded = torch.zeros(6, 3, 7 + 2 * pad, 5 + 2 * pad)
    padded[:, :, pad : pad + 7, pad : pad + 5] = x
    naive = torch.stack([padded[i, :, dy[i] : dy[i] + 7, dx[i] : dx[i] + 5] for i in range(6)])
    assert torch.equal(crop(x, dy, dx, pad), naive)
    # the centre offset is the identity
    centre = torch.full((6,), pad)
    assert torch.equal(crop(x, centre, centre, pad), x)


def test_random_crop_flip_properties():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 3, 8, 8)
    assert torch.equal(random_crop_flip(x, g, pad=0, flip=False), x)
    flipped = random_crop_flip(x, g, pad=0, flip=True)
    same = (flipped == x).flatten(1).all(1)
    mirrored = (flipped == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all())
    frac = mirrored.float().mean().item()
    assert abs(frac - 0.5) < 4 * 0.025  # binomial(400, 1/2): standard error 0.025
    # translations keep the image content (zero padding) and move it by at most pad pixels
    out = random_crop_flip(x, g, pad=2, flip=False)
    assert out.shape == x.shape


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(5, 4)
        self.drop = nn.Dropout(0.5)
        self.bn = nn.BatchNorm1d(4, momentum=0.3)

    def forward(self, x):
        return self.bn(self.drop(self.lin(x)))


def test_dry_feed_estimates_exact_statistics_with_dropout_off():
    torch.manual_seed(0)
    net = _Net()
    x = torch.randn(120, 5) * 3 + 1
    net.eval()
    fed = refresh_batchnorm(net, x, batch_size=30)
    assert fed == 120
    assert not net.training and net.bn.momentum == 0.3 and not net.drop.training
    h = net.lin(x).detach()
    # equal batches and plain averaging: the running mean is the exact mean over the data fed (dropout off)
    torch.testing.assert_close(net.bn.running_mean, h.mean(0), rtol=1e-5, atol=1e-5)
    batch_vars = torch.stack([h[i : i + 30].var(0, unbiased=True) for i in range(0, 120, 30)])
    torch.testing.assert_close(net.bn.running_var, batch_vars.mean(0), rtol=1e-5, atol=1e-5)
    # deterministic: a second feed gives the same statistics
    m1 = net.bn.running_mean.clone()
    net.train()
    refresh_batchnorm(net, x, batch_size=30)
    assert net.training and net.drop.training
    assert torch.equal(net.bn.running_mean, m1)


def test_dry_feed_max_batches_and_no_bn():
    net = _Net()
    x = torch.arange(200 * 5, dtype=torch.float32).reshape(200, 5)
    assert refresh_batchnorm(net, x, batch_size=16, max_batches=3) == 48
    torch.testing.assert_close(net.bn.running_mean, net.lin(x[:48]).detach().mean(0), rtol=1e-5, atol=1e-4)
    assert refresh_batchnorm(nn.Linear(5, 2), x) == 0


def test_dry_feed_changes_eval_predictions_to_the_data_statistics():
    """After training-mode updates the running stats lag; the dry feed makes eval BN match batch BN."""
    torch.manual_seed(1)
    net = _Net()
    x = torch.randn(64, 5) * 2 + 5
    refresh_batchnorm(net, x, batch_size=64)
    net.eval()
    out_eval = net(x)
    np.testing.assert_allclose(out_eval.mean(0).detach().numpy(), 0, atol=1e-4)
