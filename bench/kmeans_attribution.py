"""Where do ESGD's misses come from? Seeding vs schedule, per trial, for candidate defaults.

Usage::

    PYTHONPATH=src python bench/kmeans_attribution.py [--split train] [--trials 20] [--restarts 50]
        [--configs NAME ...] [--members m00 m04 ...] [--family-seed 7]

For every member of the split (``benchmark_family()``; the defaults are chosen on ``train`` only; ``held-out``
is for the diagnosis of a finished report and must not feed back into the defaults) and every trial
``s``: the first k-means++ seeding of ``ESGDKMeans(random_state=s)`` followed by scikit-learn's Lloyd to
convergence ("seed+Lloyd"), the same for the best of 3 seedings ("seed3+Lloyd"), and every candidate
configuration of ``ESGDKMeans``. Per candidate: the rate at f_ref (f <= f_ref (1 + 1e-3)), the trials it
*repaired* (seed+Lloyd misses, the candidate does not) and *destroyed* (seed+Lloyd at f_ref, the candidate
not), the mean outer steps, and the time relative to ``MiniBatchKMeans(init="k-means++")`` at the same
batch size. The reference f_ref: the certificate where it applies, else the best of ``--restarts``
k-means++ restarts. The rejected variants (per-centre slope bounds in the exploration, L from the
mini-batch noise) are the subclasses of ``bench/kmeans_variants.py``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from kmeans_variants import InnerFromNoise, SlopeBoundedExploration  # bench/ is sys.path[0] as a script
from sklearn.cluster import KMeans, MiniBatchKMeans
from threadpoolctl import threadpool_limits

from deeprelax.cluster import ESGDKMeans, kmeans_energy
from deeprelax.cluster.datasets import benchmark_family
from deeprelax.experiments.kmeans import family_reference

ROUND2 = dict(n_seedings=1, n_inner=3, settle_slope=None, n_swaps=0)
ROUND3 = dict(n_seedings=3, n_swaps=0)  # the round-3 defaults, before the swap move (round 4)
SLOPE_CAP_2 = SlopeBoundedExploration.configured(explore_slopes=(0.0, 2.0))
SLOPE_CAP_15 = SlopeBoundedExploration.configured(explore_slopes=(0.0, 1.5))
INNER_100 = InnerFromNoise.configured(inner_points=100.0)
#: name -> (keyword arguments, gamma keywords in units of K, estimator class)
CANDIDATES: dict[str, tuple[dict[str, Any], dict[str, float], type[ESGDKMeans]]] = {
    "round-2 defaults (1 seeding, L=3, settling at gamma_T)": (ROUND2, {}, ESGDKMeans),
    "round 2 + 3 seedings": (dict(ROUND2, n_seedings=3), {}, ESGDKMeans),
    "round 2 + preconditioned settling (slope 0.5)": (dict(ROUND2, settle_slope=0.5), {}, ESGDKMeans),
    "round 2 + per-centre slope cap 2 in the exploration": (ROUND2, {}, SLOPE_CAP_2),
    "round 2, gamma_0 = 2.5K, exploration slope cap 2": (ROUND2, dict(step_size=2.5), SLOPE_CAP_2),
    "round 2, gamma_0 = 2.5K, exploration slope cap 1.5": (ROUND2, dict(step_size=2.5), SLOPE_CAP_15),
    "round 2, L = ceil(100 K / B) in [2, 5]": (ROUND2, {}, INNER_100),
    "round 2, no exploration": (dict(ROUND2, n_explore=0), dict(step_size=0.35), ESGDKMeans),
    "3 seedings + preconditioned, L=3": (dict(ROUND3, n_inner=3), {}, ESGDKMeans),
    "3 seedings, L=2, settling at gamma_T": (dict(ROUND3, settle_slope=None), {}, ESGDKMeans),
    "round-3 defaults (3 seedings, L=2, preconditioned settling 0.5)": (ROUND3, {}, ESGDKMeans),
    "round 3, settle slope 0.35": (dict(ROUND3, settle_slope=0.35), {}, ESGDKMeans),
    "round 3, T = 8": (dict(ROUND3, n_explore=8), {}, ESGDKMeans),
    "round 3, 4 seedings": (dict(ROUND3, n_seedings=4), {}, ESGDKMeans),
    "round 3, 5 seedings": (dict(ROUND3, n_seedings=5), {}, ESGDKMeans),
    "round 3, no exploration": (dict(ROUND3, n_explore=0), dict(step_size=0.35), ESGDKMeans),
    # round 4 (docs/kmeans.md): the swap move at the end of the descent
    "round-4 defaults (1 seeding, swaps)": ({}, {}, ESGDKMeans),
    "round 4 with 3 seedings": (dict(n_seedings=3), {}, ESGDKMeans),
    "round 4, T = 8": (dict(n_explore=8), {}, ESGDKMeans),
    "round 4, no exploration": (dict(n_explore=0), dict(step_size=0.35), ESGDKMeans),
}


def make(name: str, K: int, B: int, seed: int) -> ESGDKMeans:
    kw, gam, cls = CANDIDATES[name]
    return cls(K, batch_size=B, random_state=seed, **kw, **{k: v * K for k, v in gam.items()})


def seed_lloyd(X: np.ndarray, K: int, B: int, seed: int, n_seedings: int) -> np.ndarray:
    """The seeding of ``ESGDKMeans(n_seedings=...)`` (a negligible step, no polish), then Lloyd."""
    x0 = ESGDKMeans(
        K,
        batch_size=B,
        random_state=seed,
        n_seedings=n_seedings,
        n_explore=0,
        step_size=1e-12,
        settle_slope=None,
        max_iter=1,
        n_polish=0,
        max_no_improvement=None,
        n_swaps=0,
    ).fit(X)
    return KMeans(K, init=x0.cluster_centers_, n_init=1).fit(X).cluster_centers_


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["train", "held-out"], default="train")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--restarts", type=int, default=50)
    ap.add_argument("--configs", nargs="*", default=None, help="indices into CANDIDATES (default: all)")
    ap.add_argument("--members", nargs="*", default=None, help="member prefixes (default: the whole split)")
    ap.add_argument(
        "--family-seed",
        type=int,
        default=None,
        help="draw a fresh family with this seed (default: the reported family, random_state=2026)",
    )
    args = ap.parse_args()
    names = list(CANDIDATES) if args.configs is None else [list(CANDIDATES)[int(i)] for i in args.configs]
    seed = {} if args.family_seed is None else {"random_state": args.family_seed}
    members = [m for m in benchmark_family(**seed) if m.split == args.split]
    if args.members:
        members = [m for m in members if m.name.split("-")[0] in args.members]
    for n in names:
        print(f"[{list(CANDIDATES).index(n)}] {n}")
    agg: dict[str, list[tuple[float, float, bool, int, int]]] = {n: [] for n in names}
    with threadpool_limits(limits=1):
        for mem in members:
            data = mem.make()
            X, K, B = data.X, data.n_clusters, mem.batch_size
            f_ref = family_reference(data, restarts=args.restarts)["f_ref"]

            def at_ref(c: np.ndarray, X: np.ndarray = X, f_ref: float = f_ref) -> bool:
                return bool(kmeans_energy(X, c) <= f_ref * (1 + 1e-3))

            s1 = np.array([at_ref(seed_lloyd(X, K, B, s, 1)) for s in range(args.trials)])
            s3 = np.array([at_ref(seed_lloyd(X, K, B, s, 3)) for s in range(args.trials)])
            t_mb = 0.0
            for s in range(args.trials):
                t0 = time.perf_counter()
                MiniBatchKMeans(K, init="k-means++", n_init=1, batch_size=B, random_state=s).fit(X)
                t_mb += time.perf_counter() - t0
            line = (
                f"{mem.name} (B={B}, K p_max={K * max(data.params['sizes']) / len(X):.2f}): "
                f"seed+Lloyd {100 * s1.mean():.0f}%, seed3+Lloyd {100 * s3.mean():.0f}%"
            )
            for n in names:
                ok, t_es, steps = [], 0.0, 0
                for s in range(args.trials):
                    est = make(n, K, B, s)
                    t0 = time.perf_counter()
                    est.fit(X)
                    t_es += time.perf_counter() - t0
                    ok.append(at_ref(est.cluster_centers_))
                    steps += est.n_iter_
                r = np.array(ok)
                rep, des = int(np.sum(r & ~s1)), int(np.sum(~r & s1))
                agg[n].append((100 * r.mean(), t_es / t_mb, mem.equal_sizes, rep, des))
                line += (
                    f" | [{list(CANDIDATES).index(n)}] {100 * r.mean():.0f}% +{rep}-{des} "
                    f"{t_es / t_mb:.2f}x {steps / args.trials:.0f} steps"
                )
            print(line, flush=True)
    fam = "" if args.family_seed is None else f" of family {args.family_seed}"
    print(
        f"\n{args.split}{fam}: {len(members)} members, {args.trials} trials; "
        "+repaired -destroyed vs seed+Lloyd"
    )
    for n in names:
        a = agg[n]
        r = np.array([x[0] for x in a])
        t = np.array([x[1] for x in a])
        eq = np.array([x[2] for x in a])
        print(
            f"[{list(CANDIDATES).index(n)}] {n}\n    mean {r.mean():5.1f}%, equal {r[eq].mean():5.1f}%, "
            f"unequal {r[~eq].mean():5.1f}%, repaired {sum(x[3] for x in a)}, destroyed "
            f"{sum(x[4] for x in a)}; time / MBKM(k-means++) median {np.median(t):.2f} max {t.max():.2f}"
        )


if __name__ == "__main__":
    main()
