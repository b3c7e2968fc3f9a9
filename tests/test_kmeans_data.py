"""The benchmark data: seeded generators, stored certified values, certificate and k-means++ cross-check."""

import numpy as np
import pytest
from sklearn.cluster import KMeans

from deeprelax.cluster.certify import certify_global_minimum
from deeprelax.cluster.datasets import (
    BENCHMARKS,
    load_benchmark,
    make_four_means_three_clusters,
    make_separated_blobs,
)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_is_certified_with_the_stored_value(name):
    data, bench = load_benchmark(name)
    cert = certify_global_minimum(data.X, data.labels)
    assert cert.certified, cert.reasons
    assert cert.inertia == pytest.approx(bench.certified_inertia, rel=1e-9)
    assert cert.energy == pytest.approx(bench.certified_energy, rel=1e-9)
    assert cert.energy == pytest.approx(cert.inertia / (2 * len(data.X)))
    assert cert.disc_margin > 0 and cert.point_margin > 0


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_k_means_plus_plus_restarts_agree_with_the_certificate(name):
    """No restart goes below the certified value (it is a proof) and the best restart reaches it."""
    data, bench = load_benchmark(name)
    inertias = [KMeans(data.n_clusters, n_init=1, random_state=s).fit(data.X).inertia_ for s in range(5)]
    assert min(inertias) >= bench.certified_inertia * (1 - 1e-12)
    assert min(inertias) == pytest.approx(bench.certified_inertia, rel=1e-9)


def test_generators_are_seeded_and_documented():
    a = make_separated_blobs(n_samples=400, random_state=3)
    b = make_separated_blobs(n_samples=400, random_state=3)
    c = make_separated_blobs(n_samples=400, random_state=4)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)
    assert a.X.shape == (400, 2) and np.bincount(a.labels).tolist() == [50] * 8
    assert a.params["separation"] == 26.0 and len(a.params["sizes"]) == 8
    u = make_separated_blobs(n_samples=400, size_concentration=8.0, random_state=3)
    assert sum(u.params["sizes"]) == 400 and len(set(u.params["sizes"])) > 1
    # truncation: every point within truncate * sigma of its blob mean
    r = np.linalg.norm(a.X - a.means[a.labels], axis=1)
    assert np.all(r <= 3.0 * np.asarray(a.params["sigmas"])[a.labels] + 1e-12)
    f = make_four_means_three_clusters(n_per_lump=20)
    assert f.X.shape == (80, 2) and f.n_clusters == 4


def test_generator_input_validation():
    with pytest.raises(ValueError, match="n_clusters"):
        make_separated_blobs(n_samples=4, n_clusters=8)
    with pytest.raises(ValueError, match="spread"):
        make_separated_blobs(spread=(2.0, 1.0))
    with pytest.raises(ValueError, match="separation"):
        make_separated_blobs(separation=-1.0)
    with pytest.raises(ValueError, match="positive"):
        make_four_means_three_clusters(sigma=0.0)
    with pytest.raises(ValueError, match="unknown k-means benchmark"):
        load_benchmark("nope")
