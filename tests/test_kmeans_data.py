"""The benchmark data: seeded generators, stored certified values, certificate and k-means++ cross-check."""

import numpy as np
import pytest
from sklearn.cluster import KMeans

from deeprelax.cluster.certify import certify_global_minimum
from deeprelax.cluster.datasets import (
    BENCHMARKS,
    benchmark_family,
    load_benchmark,
    make_four_means_three_clusters,
    make_gaussian_mixture,
    make_separated_blobs,
)
from deeprelax.experiments.kmeans import family_reference


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


# ------------------------------------------------------------------------------------ the benchmark family
def test_gaussian_mixture_has_the_requested_geometry():
    d = make_gaussian_mixture(
        n_samples=6000,
        n_clusters=5,
        n_features=3,
        separation=3.0,
        imbalance=4.0,
        anisotropy=9.0,
        random_state=2,
    )
    sizes = np.bincount(d.labels)
    assert sizes.sum() == 6000 and d.X.shape == (6000, 3)
    assert sizes.max() / sizes.min() == pytest.approx(4.0, rel=0.01)  # imbalance = largest / smallest
    sig = np.asarray(d.params["sigmas"])
    gaps = np.linalg.norm(d.means[:, None] - d.means[None], axis=2) / (sig[:, None] + sig[None, :])
    gaps[np.eye(5, dtype=bool)] = np.inf
    assert gaps.min() == pytest.approx(3.0, rel=1e-5)  # separation is exact for the closest pair
    g = int(np.argmax(sizes))
    ev = np.linalg.eigvalsh(np.cov((d.X[d.labels == g] - d.means[g]).T))
    assert 6.0 < ev.max() / ev.min() < 11.0  # anisotropy 9 (truncation shrinks the sample variances a bit)
    assert np.sqrt(ev.max()) == pytest.approx(sig[g], rel=0.1)
    # truncation: Mahalanobis radius <= sqrt(chi2_3(0.999)) = 4.03 (in units of the largest axis sd, <= that)
    r = np.linalg.norm(d.X - d.means[d.labels], axis=1) / sig[d.labels]
    assert r.max() <= 4.04
    again = make_gaussian_mixture(
        n_samples=6000,
        n_clusters=5,
        n_features=3,
        separation=3.0,
        imbalance=4.0,
        anisotropy=9.0,
        random_state=2,
    )
    np.testing.assert_array_equal(d.X, again.X)
    eq = make_gaussian_mixture(n_samples=1000, n_clusters=4, random_state=0)
    assert np.bincount(eq.labels).tolist() == [250] * 4


def test_gaussian_mixture_input_validation():
    with pytest.raises(ValueError, match="imbalance"):
        make_gaussian_mixture(imbalance=0.5)
    with pytest.raises(ValueError, match="n_clusters"):
        make_gaussian_mixture(n_samples=3, n_clusters=4)
    with pytest.raises(ValueError, match="truncate_quantile"):
        make_gaussian_mixture(truncate_quantile=1.0)


def test_benchmark_family_split_and_ranges():
    fam = benchmark_family()
    assert len(fam) == 24 and len({m.name for m in fam}) == 24
    held = [m for m in fam if m.split == "held-out"]
    assert len(held) == 12
    assert sum(m.equal_sizes for m in held) == 6 and sum(m.equal_sizes for m in fam) == 12
    for m in fam:
        k = m.kwargs
        assert 4 <= k["n_clusters"] <= 20 and 2 <= k["n_features"] <= 50
        assert 2.0 <= k["separation"] <= 16.0 and 1.0 <= k["anisotropy"] <= 10.0
        assert (k["imbalance"] == 1.0) == m.equal_sizes and k["imbalance"] <= 10.0
        assert 2000 <= k["n_samples"] <= 20000 and m.batch_size <= k["n_samples"] // 4
    assert [m.kwargs for m in benchmark_family()] == [m.kwargs for m in fam]  # seeded


def test_family_reference_uses_the_certificate_where_it_applies():
    well = make_gaussian_mixture(n_samples=800, n_clusters=4, n_features=2, separation=14.0, random_state=0)
    ref = family_reference(well, restarts=5)
    cert = certify_global_minimum(well.X, well.labels)
    assert cert.certified and ref["certified"]
    assert ref["f_ref"] == cert.energy and ref["best_restart"] >= cert.energy * (1 - 1e-9)
    close = make_gaussian_mixture(n_samples=800, n_clusters=4, n_features=5, separation=2.0, random_state=0)
    ref = family_reference(close, restarts=5)
    assert not ref["certified"] and ref["f_ref"] == ref["best_restart"]
    assert ref["f_ref"] <= ref["generating_partition_energy"] * (1 + 1e-9)  # restarts beat or tie the truth
