"""The global-minimum certificate against brute force over all partitions (tiny instances)."""

import itertools

import numpy as np
import pytest

from deeprelax.cluster.certify import brute_force_kmeans, certify_global_minimum


def _tiny(seed, k, per, spread, dist):
    rng = np.random.default_rng(seed)
    means = rng.uniform(-dist, dist, size=(k, 2))
    X = np.concatenate([m + spread * rng.standard_normal((per, 2)) for m in means])
    return X, np.repeat(np.arange(k), per)


def _partition_key(labels):
    """Canonical form of a partition (labels up to renaming)."""
    seen = {}
    return tuple(seen.setdefault(int(v), len(seen)) for v in labels)


def test_brute_force_matches_a_direct_enumeration():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((7, 2))
    best = np.inf
    for lab in itertools.product(range(2), repeat=7):
        lab = np.array(lab)
        best = min(
            best, sum(np.sum((X[lab == g] - X[lab == g].mean(0)) ** 2) for g in range(2) if np.any(lab == g))
        )
    value, labels = brute_force_kmeans(X, 2)
    assert value == pytest.approx(best, rel=1e-12)
    assert sum(np.sum((X[labels == g] - X[labels == g].mean(0)) ** 2) for g in range(2)) == pytest.approx(
        value
    )


def test_certificate_is_sound_against_brute_force():
    """Whenever the certificate says 'global minimum', brute force over all partitions agrees exactly."""
    n_certified = n_refused = 0
    for seed in range(40):
        k = 2 + seed % 2
        per = 4 if k == 2 else 3
        spread = [0.05, 0.3, 1.0, 3.0][seed % 4]
        X, labels = _tiny(seed, k, per, spread, dist=10.0)
        cert = certify_global_minimum(X, labels)
        value, best_labels = brute_force_kmeans(X, k)
        assert cert.inertia >= value - 1e-9 * max(1.0, value)  # a candidate is never below the optimum
        if cert.certified:
            n_certified += 1
            assert cert.inertia == pytest.approx(value, rel=1e-10, abs=1e-12)
            assert _partition_key(best_labels) == _partition_key(labels)  # and the minimiser is unique
            assert cert.disc_margin >= 0 and cert.point_margin >= 0 and not cert.reasons
        else:
            n_refused += 1
            assert cert.reasons
    assert n_certified >= 10 and n_refused >= 5  # both branches were exercised


def test_certificate_refuses_a_non_optimal_partition():
    # two tight pairs of points far apart plus one far group: with K=3 the optimum splits nothing wrongly;
    # label one point of group 0 as group 1 -> not the optimum, must not be certified
    X, labels = _tiny(0, 3, 3, 0.05, dist=10.0)
    bad = labels.copy()
    bad[0] = 1
    value, _ = brute_force_kmeans(X, 3)
    cert = certify_global_minimum(X, bad)
    assert cert.inertia > value
    assert not cert.certified


def test_certificate_refuses_overlapping_groups():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    labels = (X[:, 0] > 0).astype(int)
    cert = certify_global_minimum(X, labels)
    assert not cert.certified
    assert any("condition" in r for r in cert.reasons)


def test_certificate_input_validation():
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="every value"):
        certify_global_minimum(X, np.array([0, 0, 2, 2]))
    with pytest.raises(ValueError, match="same length"):
        certify_global_minimum(X, np.array([0, 1]))
    with pytest.raises(ValueError, match="too large"):
        brute_force_kmeans(np.zeros((30, 2)), 3)
