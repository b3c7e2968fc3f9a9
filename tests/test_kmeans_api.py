"""ESGDKMeans round 2: invariances, units, sample weights, partial_fit, the stopping rule, the schedule."""

import numpy as np
import pytest

from deeprelax.cluster import ESGDKMeans, Schedule, default_schedule, kmeans_energy
from deeprelax.cluster.certify import certify_global_minimum
from deeprelax.cluster.datasets import make_separated_blobs
from deeprelax.cluster.stochastic_backward_euler import _Sampler


@pytest.fixture(scope="module")
def blobs():
    data = make_separated_blobs(n_samples=800, n_clusters=8, separation=26.0, random_state=1)
    cert = certify_global_minimum(data.X, data.labels)
    assert cert.certified
    return data, cert


@pytest.fixture(scope="module")
def reference_fit(blobs):
    data, _ = blobs
    return ESGDKMeans(8, batch_size=100, random_state=3).fit(data.X)


_Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((2, 2)))


@pytest.mark.parametrize(
    "name, forward, backward",
    [
        ("scale by 1000", lambda Z: 1000.0 * Z, lambda C: C / 1000.0),
        ("scale by 1e-150", lambda Z: 1e-150 * Z, lambda C: C / 1e-150),
        ("scale by 1e150", lambda Z: 1e150 * Z, lambda C: C / 1e150),
        ("translate by 1e6", lambda Z: Z + [1e6, -3e5], lambda C: C - [1e6, -3e5]),
        ("rotate", lambda Z: Z @ _Q.T, lambda C: C @ _Q),
        ("rotate, scale, translate", lambda Z: 7.0 * Z @ _Q.T + 50.0, lambda C: ((C - 50.0) / 7.0) @ _Q),
    ],
)
def test_fit_is_invariant_under_similarity_transforms(blobs, reference_fit, name, forward, backward):
    """Same seed, transformed data: the same partition and the transformed centres, to round-off."""
    data, _ = blobs
    a = reference_fit
    b = ESGDKMeans(8, batch_size=100, random_state=3).fit(forward(data.X))
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(backward(b.cluster_centers_), a.cluster_centers_, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(b.predict(forward(data.X)), a.labels_)


def test_inertia_scales_with_the_square_of_the_data(blobs, reference_fit):
    data, _ = blobs
    b = ESGDKMeans(8, batch_size=100, random_state=3).fit(1e150 * data.X)
    assert np.isfinite(b.inertia_)
    assert b.inertia_ == pytest.approx(1e300 * reference_fit.inertia_, rel=1e-10)
    np.testing.assert_allclose(b.transform(1e150 * data.X[:5]), 1e150 * reference_fit.transform(data.X[:5]))


def test_data_whose_inertia_overflows_is_a_clear_error(blobs):
    """Issue 13: data scaled by 1e154 used to give inertia_ = nan without an error."""
    data, _ = blobs
    with pytest.raises(ValueError, match=r"X: the inertia .* overflows float64"):
        ESGDKMeans(8, batch_size=100, random_state=0).fit(1e154 * data.X)
    est = ESGDKMeans(8, batch_size=100, random_state=0).fit(1e150 * data.X)
    np.testing.assert_array_equal(est.predict(1e150 * data.X[:50]), est.labels_[:50])
    assert np.all(np.isfinite(est.transform(1e154 * data.X[:50])))  # distances ~1e155 are representable
    with pytest.raises(ValueError, match="X: the inertia overflows float64"):
        est.score(1e154 * data.X)


def test_bad_input_is_a_clear_error():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 2))
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=4"):
        ESGDKMeans(4).fit(X[:3])
    with pytest.raises(ValueError, match="0 sample"):
        ESGDKMeans(2).fit(np.empty((0, 2)))
    Xinf = X.copy()
    Xinf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        ESGDKMeans(2).fit(Xinf)
    with pytest.raises(ValueError, match="sample_weight"):
        ESGDKMeans(2).fit(X, sample_weight=-np.ones(20))
    with pytest.raises(ValueError, match="sample_weight: only 1 samples have a positive weight"):
        ESGDKMeans(2).fit(X, sample_weight=np.eye(20)[0])


def test_sample_weight_equals_repetition_full_batch():
    """Full batch, same initial centres: integer weights give exactly the repeated-rows iteration."""
    rng = np.random.default_rng(1)
    X = np.concatenate([m + rng.standard_normal((15, 2)) for m in ([0, 0], [8, 0], [0, 8])])
    w = rng.integers(0, 4, size=len(X)).astype(float)
    init = np.array([[1.0, 1.0], [7.0, 1.0], [1.0, 6.0]])
    kw = dict(init=init, batch_size=None, max_iter=40, n_explore=20, max_no_improvement=None, random_state=0)
    a = ESGDKMeans(3, **kw).fit(X, sample_weight=w)
    b = ESGDKMeans(3, **kw).fit(np.repeat(X, w.astype(int), axis=0))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=0, atol=1e-9)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-9)
    assert a.energy_ == pytest.approx(a.inertia_ / (2 * w.sum()))


def test_sample_weight_mini_batch_samples_by_weight(blobs):
    """Weight 0 on two blobs: those points never enter a mini-batch, so no centre is spent on them."""
    data, _ = blobs
    keep = data.labels < 6
    w = keep.astype(float)
    est = ESGDKMeans(6, init="k-means++", batch_size=100, random_state=0).fit(data.X, sample_weight=w)
    cert = certify_global_minimum(data.X[keep], data.labels[keep])
    far = np.min(np.linalg.norm(data.X[~keep][:, None] - est.cluster_centers_[None], axis=2), axis=1)
    assert far.min() > 5.0  # no centre near the weight-0 blobs
    idx = _Sampler(len(w), w)(np.random.default_rng(0), 100_000)
    assert keep[idx].all()  # the weighted sampler never draws a weight-0 row
    frac = np.bincount(idx, minlength=len(w))[keep].astype(float) / 100_000
    assert np.abs(frac - 1 / keep.sum()).max() < 5 * np.sqrt(1 / keep.sum() / 100_000)
    assert cert.certified
    assert kmeans_energy(data.X[keep], est.cluster_centers_) <= cert.energy * (1 + 3e-3)
    # uniform weights are the unweighted problem, bit for bit
    a = ESGDKMeans(8, batch_size=100, random_state=0).fit(data.X)
    b = ESGDKMeans(8, batch_size=100, random_state=0).fit(data.X, sample_weight=np.full(len(data.X), 2.5))
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert b.inertia_ == pytest.approx(2.5 * a.inertia_)


def test_partial_fit_streams_to_the_certified_minimum(blobs):
    data, cert = blobs
    rng = np.random.default_rng(0)
    est = ESGDKMeans(8, init="k-means++", batch_size=100, random_state=0)
    for _ in range(120):
        est.partial_fit(data.X[rng.choice(len(data.X), 200, replace=False)])
    # the stopping rule ended the steps; the streaming polish (Lloyd step on the chunks since) removed the
    # mini-batch noise: the certified minimum to 1e-3, and the optimal partition
    assert est.converged_ and est.n_iter_ < 120 and est.n_steps_ == est.n_iter_ * est.n_inner
    assert kmeans_energy(data.X, est.cluster_centers_) <= cert.energy * (1 + 1e-3)
    same = np.unique(np.stack([est.predict(data.X), data.labels]), axis=1).shape[1] == 8
    assert same
    assert est.labels_.shape == (200,)
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(np.zeros((10, 3)))


def _stream_until_converged(est, X, rng, chunk=200, max_calls=200):
    """partial_fit on random chunks until ``converged_``; returns the chunk that stopped the run and the
    number of calls."""
    for call in range(1, max_calls + 1):
        C = X[rng.choice(len(X), chunk, replace=False)]
        est.partial_fit(C)
        if est.converged_:
            return C, call
    raise AssertionError("partial_fit did not converge")


def test_partial_fit_stopping_rule_as_documented(blobs):
    from deeprelax.cluster.stochastic_backward_euler import _no_improvement

    data, _ = blobs
    est = ESGDKMeans(8, batch_size=100, random_state=1)
    _, calls = _stream_until_converged(est, data.X, np.random.default_rng(1))
    T, W = est.schedule_.n_explore, est.max_no_improvement
    path = list(est.energy_path_)
    # one chunk energy per call after the T exploration calls; no step on the call that stopped the run
    assert len(path) == calls - T and est.n_iter_ == calls - 1 and calls > T + W
    # the rule fired on this call and not before: best of the last W not better than the best before them
    # by more than the standard deviation of those W values
    assert min(path[-W:]) > min(path[:-W]) - np.std(path[-W:])
    assert not any(_no_improvement(path[:j], W) for j in range(1, len(path)))
    # the chunk energy is the energy of the current centres on that chunk (original units)
    n_iter = est.n_iter_
    est.partial_fit(data.X[:300])
    assert est.n_iter_ == n_iter  # no more steps
    assert est.energy_path_[-1] == pytest.approx(path[-1])  # nothing appended after convergence


def test_partial_fit_polish_is_the_lloyd_step_on_the_streamed_data(blobs):
    data, _ = blobs
    rng = np.random.default_rng(2)
    est = ESGDKMeans(8, batch_size=100, random_state=2)
    C0, _ = _stream_until_converged(est, data.X, rng)
    x_star = est._shift + est._scale * est._x  # the frozen iterate, original units
    w = rng.uniform(0.5, 2.0, 400)
    chunks = [(data.X[:400], w), (data.X[400:], None)]
    for C, cw in chunks:
        est.partial_fit(C, sample_weight=cw)
    np.testing.assert_allclose(est._shift + est._scale * est._x, x_star, rtol=0, atol=0)  # frozen
    # oracle: weighted mean of all points streamed since convergence, by nearest frozen centre
    Y = np.concatenate([C0, data.X])
    wy = np.concatenate([np.ones(len(C0)), w, np.ones(len(data.X) - 400)])
    lab = np.argmin(((Y[:, None, :] - x_star[None]) ** 2).sum(-1), axis=1)
    expect = x_star.copy()
    for i in range(8):
        if np.any(lab == i):
            expect[i] = (wy[lab == i, None] * Y[lab == i]).sum(0) / wy[lab == i].sum()
    np.testing.assert_allclose(est.cluster_centers_, expect, rtol=1e-10, atol=1e-10)
    assert kmeans_energy(data.X, est.cluster_centers_) <= kmeans_energy(data.X, x_star)
    # n_polish=0: the centres stay at the frozen iterate
    raw = ESGDKMeans(8, batch_size=100, random_state=2, n_polish=0)
    _stream_until_converged(raw, data.X, np.random.default_rng(2))
    raw.partial_fit(data.X)
    np.testing.assert_array_equal(raw.cluster_centers_, raw._shift + raw._scale * raw._x)
    # max_no_improvement=None: never stops
    never = ESGDKMeans(8, batch_size=100, random_state=2, max_no_improvement=None)
    for _ in range(60):
        never.partial_fit(data.X[rng.choice(len(data.X), 200, replace=False)])
    assert not never.converged_ and never.n_iter_ == 60


def test_partial_fit_after_fit_starts_a_new_stream_from_the_fitted_centres(blobs):
    data, _ = blobs
    est = ESGDKMeans(8, batch_size=100, random_state=0).fit(data.X)
    assert not hasattr(est, "converged_")
    n_iter, centres = est.n_iter_, est.cluster_centers_.copy()
    est.partial_fit(data.X[:200])
    assert est.converged_ is False and est.n_iter_ == n_iter + 1 and len(est.energy_path_) == 1
    d2 = ((data.X[:200, None] - centres[None]) ** 2).sum(-1).min(1)
    assert est.energy_path_[0] == pytest.approx(d2.mean() / 2, rel=1e-9)  # scored before the step
    est.fit(data.X)
    assert not hasattr(est, "converged_")


def test_partial_fit_first_chunk_needs_n_clusters_rows():
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=5"):
        ESGDKMeans(5).partial_fit(np.zeros((3, 2)))


def test_stopping_rule_ends_the_settling_phase_early(blobs):
    data, _ = blobs
    est = ESGDKMeans(8, batch_size=100, random_state=0).fit(data.X)
    sched = est.schedule_
    W = est.max_no_improvement
    assert sched.n_explore + W < est.n_iter_ < sched.max_iter
    path = est.energy_path_
    assert len(path) == est.n_iter_ - sched.n_explore
    # the rule as documented: the best of the last W values is not better than the best before them by
    # more than the spread (standard deviation) of those W values
    assert path[-W:].min() > path[:-W].min() - path[-W:].std()
    full = ESGDKMeans(8, batch_size=100, max_no_improvement=None, random_state=0).fit(data.X)
    assert full.n_iter_ == sched.max_iter


def test_schedule_is_geometric_and_never_overflows():
    s = default_schedule(8)
    assert s.gamma(1) == pytest.approx(1.0 * 8)
    assert s.gamma(s.n_explore + 1) == pytest.approx(0.35 * 8)
    assert s.gamma(10**9) == pytest.approx(0.35 * 8)
    assert s.step_size * (1 + s.scoping) ** (-s.n_explore) == pytest.approx(s.final_step_size)
    ratios = [s.gamma(k + 1) / s.gamma(k) for k in range(1, s.n_explore + 1)]
    np.testing.assert_allclose(ratios, 1 / (1 + s.scoping))
    flat = Schedule(3.0, 3.0, 0, 5, 0.9, 10)
    assert flat.scoping == 0.0 and flat.gamma(1) == flat.gamma(7) == 3.0


def test_verbose_reports_progress_and_the_stop(blobs, capsys):
    data, _ = blobs
    est = ESGDKMeans(8, batch_size=100, verbose=1, random_state=0).fit(data.X)
    out = capsys.readouterr().out
    assert f"ESGDKMeans step 1: gamma={est.schedule_.gamma(1):.4g}" in out
    assert f"stopped after {est.n_iter_} outer steps" in out


def test_n_init_keeps_the_best_run(blobs, monkeypatch):
    """Every run's final centres are recorded; the fitted model is the one with the lowest energy."""
    data, _ = blobs
    energies = []
    original = ESGDKMeans._run_once

    def recording(self, X_aug, *args, **kwargs):
        out = original(self, X_aug, *args, **kwargs)
        energies.append(kmeans_energy(X_aug[:, :-1], out[0]))
        return out

    monkeypatch.setattr(ESGDKMeans, "_run_once", recording)
    est = ESGDKMeans(8, n_init=6, batch_size=50, n_explore=3, max_iter=6, n_polish=0, random_state=5)
    est.fit(data.X)
    assert len(energies) == 6 and len(set(np.round(energies, 9))) > 1  # the runs differ
    assert est.energy_ == pytest.approx(min(energies) * est._scale**2, rel=1e-9)


def test_slopes_are_plain_in_the_exploration_and_preconditioned_in_the_settling():
    """``_slopes(k, sched)``: (0, inf) for k <= T, (tau, tau) after; (0, inf) always if settle_slope=None."""
    T = 4
    for tau in (0.5, 0.8):
        est = ESGDKMeans(3, n_explore=T, settle_slope=tau)
        sched = est._schedule()
        assert [est._slopes(k, sched) for k in range(1, T + 1)] == [(0.0, np.inf)] * T
        assert [est._slopes(k, sched) for k in (T + 1, T + 2, 50)] == [(tau, tau)] * 3
    est = ESGDKMeans(3, n_explore=T, settle_slope=None)
    sched = est._schedule()
    assert {est._slopes(k, sched) for k in range(1, 30)} == {(0.0, np.inf)}


def test_an_overridden_slopes_rule_drives_fit_and_partial_fit():
    """A subclass's ``_slopes`` is the rule every outer step uses (the hook of bench/kmeans_variants.py)."""

    class FixedSlope(ESGDKMeans):
        def _slopes(self, k, sched):
            return (0.3, 0.3)

    X, x0 = _two_clusters()
    lab = np.argmin(((X[:, None] - x0[None]) ** 2).sum(-1), axis=1)
    c = np.stack([X[lab == i].mean(0) for i in range(2)])
    kw = dict(init=x0, batch_size=None, n_explore=1, max_iter=1, n_inner=1, averaging=0.0, n_polish=0)
    kw.update(max_no_improvement=None, random_state=0)
    expected = x0 - 0.3 * (x0 - c)  # slope 0.3 for both centres in the exploration step k = 1
    np.testing.assert_allclose(FixedSlope(2, **kw).fit(X).cluster_centers_, expected, rtol=1e-9, atol=1e-9)
    est = FixedSlope(2, **kw).partial_fit(X)
    np.testing.assert_allclose(est.cluster_centers_, expected, rtol=1e-9, atol=1e-9)
    plain = ESGDKMeans(2, **kw).fit(X).cluster_centers_  # the plain exploration step differs
    assert not np.allclose(plain, expected)


def _two_clusters():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0.0, 1.0, (900, 2)), rng.normal(6.0, 1.0, (100, 2))])
    return X, np.array([[1.0, 0.5], [5.0, 5.5]])


def test_per_centre_slopes_clip_gamma_p_and_settle_slope_is_the_preconditioned_step():
    from deeprelax.cluster import stochastic_backward_euler as sbe

    X, x0 = _two_clusters()
    lab = np.argmin(((X[:, None] - x0[None]) ** 2).sum(-1), axis=1)
    p = np.bincount(lab, minlength=2) / len(X)
    c = np.stack([X[lab == i].mean(0) for i in range(2)])
    X_aug = sbe._augment(X)
    rng = np.random.default_rng(0)
    for gamma, (lo, hi) in [(2.0, (0.0, np.inf)), (2.0, (0.0, 1.0)), (2.0, (0.5, 0.5)), (0.3, (0.4, 2.0))]:
        y, _ = sbe._backward_euler_step(X_aug, x0, gamma, 1, 0.0, None, rng, slopes=(lo, hi))
        s = np.clip(gamma * p, lo, hi)  # the slope gamma_i p_i of every centre, bounded
        np.testing.assert_allclose(y, x0 - s[:, None] * (x0 - c), rtol=1e-12, atol=1e-12)
    # the estimator's settling phase uses slope settle_slope for every centre, whatever its mass p_i
    kw = dict(init=x0, batch_size=None, n_explore=0, max_iter=1, n_inner=1, averaging=0.0, n_polish=0)
    kw.update(max_no_improvement=None, random_state=0)
    for tau in (0.5, 0.8):
        est = ESGDKMeans(2, settle_slope=tau, **kw).fit(X)
        np.testing.assert_allclose(est.cluster_centers_, x0 - tau * (x0 - c), rtol=1e-9, atol=1e-9)
    plain = ESGDKMeans(2, settle_slope=None, final_step_size=0.7, **kw).fit(X)
    s = 0.7 * p
    np.testing.assert_allclose(plain.cluster_centers_, x0 - s[:, None] * (x0 - c), rtol=1e-9, atol=1e-9)


def test_k_means_plus_plus_seedings_keep_the_lowest_seeding_energy():
    from sklearn.utils import check_random_state

    from deeprelax.cluster import stochastic_backward_euler as sbe

    X, _ = _two_clusters()
    X = np.concatenate([X, X + 20.0, X - 20.0])  # 3000 rows, seeding subsample of 3 * 100
    est = ESGDKMeans(4, batch_size=100, n_seedings=4, random_state=0)
    shift, scale = sbe._standardization(X, None)
    Xs = (X - shift) / scale
    got = est._initial_centers(X, Xs, None, check_random_state(0), shift, scale)
    rs = check_random_state(0)
    sub = rs.choice(len(X), size=300, replace=False)
    S = Xs[sub]
    seeds = [sbe._kmeans_plusplus(S, 4, rs) for _ in range(4)]
    for centres, energy in seeds:  # the energy returned is that of the centres on the seeding rows
        d2 = ((S[:, None] - centres[None]) ** 2).sum(-1).min(1)
        assert energy == pytest.approx(d2.mean() / 2, rel=1e-10)
        assert all(np.any(np.all(S == c, axis=1)) for c in centres)  # centres are seeding rows
    best = min(seeds, key=lambda t: t[1])[0]
    np.testing.assert_array_equal(got, best)
    assert len({e for _, e in seeds}) > 1  # the draws differ, so the choice is not vacuous
