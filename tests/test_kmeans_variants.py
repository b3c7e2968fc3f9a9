"""bench/kmeans_variants.py: the rejected ESGDKMeans variants stay valid scikit-learn estimators and do what
their docstrings say (light checks; the bench scripts use them)."""

import numpy as np
import pytest
from sklearn.base import clone

from _bench import load_bench
from deeprelax.cluster import ESGDKMeans

kv = load_bench("kmeans_variants")


def _two_clusters_1d():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(0.0, 1.0, (900, 1)), rng.normal(10.0, 1.0, (100, 1))])


def test_configured_variants_keep_the_estimator_parameters_and_survive_clone():
    cls = kv.MassCapped.configured(mass_start=0.8, mass_end=0.4)
    assert cls is kv.MassCapped.configured(mass_end=0.4, mass_start=0.8)  # cached: one class per value set
    assert issubclass(cls, kv.MassCapped) and (cls.mass_start, cls.mass_end) == (0.8, 0.4)
    assert (kv.MassCapped.mass_start, kv.MassCapped.mass_end) == (1.0, 0.5)  # the base is untouched
    est = cls(3, batch_size=50, random_state=0)
    assert est.get_params() == ESGDKMeans(3, batch_size=50, random_state=0).get_params()
    twin = clone(est)
    assert type(twin) is cls and twin.get_params() == est.get_params()
    with pytest.raises(TypeError, match="no constant"):
        kv.InnerFromNoise.configured(mass_start=1.0)


def test_mass_capped_caps_the_steps_by_the_heaviest_initial_centre():
    X = _two_clusters_1d()
    kw = dict(init=np.array([[0.0], [10.0]]), batch_size=None, n_explore=5, max_iter=8, random_state=0)
    kw.update(step_size=2.0, final_step_size=0.7)
    assert ESGDKMeans(2, **kw).fit(X).schedule_.step_size == pytest.approx(2.0)
    sched = kv.MassCapped(2, **kw).fit(X).schedule_
    assert sched.step_size == pytest.approx(1.0 / 0.9, rel=1e-9)  # gamma_0 <= 1 / p_max, p_max = 0.9
    assert sched.final_step_size == pytest.approx(min(0.7, 0.5 / 0.9), rel=1e-9)
    with pytest.raises(NotImplementedError):
        kv.MassCapped(2, **kw).partial_fit(X)


def test_inner_from_noise_slope_bounds_and_seeding_rows():
    inner = kv.InnerFromNoise.configured(inner_points=100.0)
    assert [inner(8, batch_size=B)._schedule().n_inner for B in (100, 200, 400)] == [5, 4, 2]
    assert inner(8, batch_size=None, n_inner=7)._schedule().n_inner == 7
    slopes = kv.SlopeBoundedExploration.configured(explore_slopes=(0.0, 2.0))(3, n_explore=4)
    sched = slopes._schedule()
    assert slopes._slopes(4, sched) == (0.0, 2.0) and slopes._slopes(5, sched) == (0.5, 0.5)
    assert ESGDKMeans(3, batch_size=100)._seeding_rows(10_000) == 300
    for factor, rows in ((3, 300), (10, 1000), (None, 10_000)):
        est = kv.SeedingSubsample.configured(seeding_factor=factor)(3, batch_size=100)
        assert est._seeding_rows(10_000) == rows
