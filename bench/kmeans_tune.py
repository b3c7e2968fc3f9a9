"""Choose ESGDKMeans's default schedule on the *training* half of the benchmark family only.

Usage::

    PYTHONPATH=src python bench/kmeans_tune.py [--trials 10] [--restarts 50] [--configs NAME ...]

For every training member (``deeprelax.cluster.datasets.benchmark_family``, split "train"): the reference
value (certificate, else the best of ``--restarts`` k-means++ restarts) and the k-means++ success rate are
computed once; then every candidate schedule is fitted ``--trials`` times (seeds 0..trials-1) and scored by
its rate at f_ref (f <= f_ref (1 + 1e-3)) and its wall time relative to ``MiniBatchKMeans`` at the same
batch size (measured interleaved). The candidates are dimensionless: ``start`` = gamma_0 / K,
``end`` = gamma_T / K, ``T`` exploration steps, ``L`` inner iterations, ``a`` averaging, ``W`` patience of the
stopping rule; all use the final full-data polish step (``n_polish=1``). The held-out half is never loaded.

The rejected variants (mass cap, seeding subsample) are the subclasses of ``bench/kmeans_variants.py``. The
spread-scaled candidates (``kmeans_tune_train_3_spread.txt``) were removed with their code; it is at commit
19039d2, where this list also had them at indices 14-16 and 19, so the records' ``--configs 17 18`` (seeding
on all rows, on 10 x B rows) are ``--configs 14 15`` now.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from kmeans_variants import MassCapped, SeedingSubsample  # bench/ is sys.path[0] when run as a script
from sklearn.cluster import KMeans, MiniBatchKMeans
from threadpoolctl import threadpool_limits

from deeprelax.cluster import ESGDKMeans, kmeans_energy
from deeprelax.cluster.datasets import benchmark_family
from deeprelax.experiments.kmeans import family_reference

#: the rejected variants (bench/kmeans_variants.py): mass cap, seeding on all rows / on 10 x B rows
MASS = MassCapped.configured(mass_start=1.0, mass_end=0.5)
ALL_ROWS = SeedingSubsample.configured(seeding_factor=None)
TEN_B_ROWS = SeedingSubsample.configured(seeding_factor=10)

CANDIDATES: dict[str, dict] = {
    "round 1 (random, 2.5-0.35, T60, L5, a0.9, W10) + polish": dict(
        init="random", start=2.5, end=0.35, T=60, L=5, a=0.9, W=10
    ),
    "k-means++, no exploration (0.35, T0, L3, a0.5, W5)": dict(
        init="k-means++", start=0.35, end=0.35, T=0, L=3, a=0.5, W=5
    ),
    "k-means++, 1.0-0.35, T15, L3, a0.5, W5": dict(
        init="k-means++", start=1.0, end=0.35, T=15, L=3, a=0.5, W=5
    ),
    "k-means++, 1.5-0.35, T15, L3, a0.5, W5": dict(
        init="k-means++", start=1.5, end=0.35, T=15, L=3, a=0.5, W=5
    ),
    "k-means++, 2.5-0.35, T15, L3, a0.5, W5": dict(
        init="k-means++", start=2.5, end=0.35, T=15, L=3, a=0.5, W=5
    ),
    "k-means++, 1.5-0.35, T30, L3, a0.5, W5": dict(
        init="k-means++", start=1.5, end=0.35, T=30, L=3, a=0.5, W=5
    ),
    "k-means++, 1.5-0.35, T15, L5, a0.5, W5": dict(
        init="k-means++", start=1.5, end=0.35, T=15, L=5, a=0.5, W=5
    ),
    "random, 2.5-0.35, T30, L3, a0.5, W5": dict(init="random", start=2.5, end=0.35, T=30, L=3, a=0.5, W=5),
    # steps capped by the heaviest initial centre: gamma_0 <= 1/p_max, gamma_T <= 0.5/p_max (MassCapped)
    "k-means++, mass-capped 1.5-0.35, T15, L3, a0.5, W5": dict(
        init="k-means++", start=1.5, end=0.35, T=15, L=3, a=0.5, W=5, cls=MASS
    ),
    "k-means++, mass-capped 2.5-0.35, T15, L3, a0.5, W5": dict(
        init="k-means++", start=2.5, end=0.35, T=15, L=3, a=0.5, W=5, cls=MASS
    ),
    "k-means++, mass-capped 2.5-0.35, T30, L3, a0.5, W5": dict(
        init="k-means++", start=2.5, end=0.35, T=30, L=3, a=0.5, W=5, cls=MASS
    ),
    "random, mass-capped 2.5-0.35, T30, L3, a0.5, W5": dict(
        init="random", start=2.5, end=0.35, T=30, L=3, a=0.5, W=5, cls=MASS
    ),
    "k-means++, mass-capped 1.0-0.35, T15, L3, a0.5, W5": dict(
        init="k-means++", start=1.0, end=0.35, T=15, L=3, a=0.5, W=5, cls=MASS
    ),
    "k-means++, mass-capped 1.5-0.35, T10, L2, a0.5, W4": dict(
        init="k-means++", start=1.5, end=0.35, T=10, L=2, a=0.5, W=4, cls=MASS
    ),
    "k-means++ on all rows, 1.0-0.35, T15, L3, a0.5, W5": dict(
        init="k-means++", start=1.0, end=0.35, T=15, L=3, a=0.5, W=5, cls=ALL_ROWS
    ),
    "k-means++ on 10 x batch rows, 1.0-0.35, T15, L3, a0.5, W5": dict(
        init="k-means++", start=1.0, end=0.35, T=15, L=3, a=0.5, W=5, cls=TEN_B_ROWS
    ),
}


def esgd(c: dict, K: int, B: int, seed: int) -> ESGDKMeans:
    """Candidate ``c`` (class ``c["cls"]``, default ``ESGDKMeans``) for ``K`` clusters and batch ``B``."""
    cls = c.get("cls", ESGDKMeans)
    return cls(
        K,
        init=c["init"],
        batch_size=B,
        step_size=c["start"] * K,
        final_step_size=c["end"] * K,
        n_explore=c["T"],
        n_inner=c["L"],
        averaging=c["a"],
        max_no_improvement=c["W"],
        n_seedings=1,  # the round-2 candidates: one seeding, settling at gamma_T (see kmeans_attribution.py)
        settle_slope=None,
        n_swaps=0,  # no swap move (round 4)
        random_state=seed,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--restarts", type=int, default=50)
    ap.add_argument("--configs", nargs="*", default=None, help="indices into CANDIDATES (default: all)")
    ap.add_argument(
        "--family-seed",
        type=int,
        default=None,
        help="draw a fresh family with this seed and use its training half (default: the reported family)",
    )
    args = ap.parse_args()
    names = list(CANDIDATES) if args.configs is None else [list(CANDIDATES)[int(i)] for i in args.configs]
    seed = {} if args.family_seed is None else {"random_state": args.family_seed}
    family = benchmark_family(**seed)
    members = [m for m in family if m.split == "train"]
    res: dict[str, list[tuple[float, float, float, float]]] = {n: [] for n in names}
    kpp_rates = []
    with threadpool_limits(limits=1):
        for mem in members:
            data = mem.make()
            X, K, B = data.X, data.n_clusters, mem.batch_size
            f_ref = family_reference(data, restarts=args.restarts)["f_ref"]
            kpp = 100 * np.mean(
                [
                    KMeans(K, n_init=1, random_state=s).fit(X).inertia_ / (2 * len(X)) <= f_ref * (1 + 1e-3)
                    for s in range(args.trials)
                ]
            )
            kpp_rates.append(kpp)
            line = [f"{mem.name} (B={B}, k-means++ {kpp:.0f}%)"]
            for n in names:
                ok = basin = 0
                t_es = t_mr = t_mk = 0.0
                for s in range(args.trials):
                    t0 = time.perf_counter()
                    e = esgd(CANDIDATES[n], K, B, s).fit(X)
                    t1 = time.perf_counter()
                    MiniBatchKMeans(K, init="random", n_init=1, batch_size=B, random_state=s).fit(X)
                    t2 = time.perf_counter()
                    MiniBatchKMeans(K, init="k-means++", n_init=1, batch_size=B, random_state=s).fit(X)
                    t3 = time.perf_counter()
                    t_es, t_mr, t_mk = t_es + t1 - t0, t_mr + t2 - t1, t_mk + t3 - t2
                    ok += kmeans_energy(X, e.cluster_centers_) <= f_ref * (1 + 1e-3)
                    pol = KMeans(K, init=e.cluster_centers_, n_init=1).fit(X).inertia_ / (2 * len(X))
                    basin += pol <= f_ref * (1 + 1e-6)
                r = (100 * ok / args.trials, 100 * basin / args.trials, t_es / t_mr, t_es / t_mk)
                res[n].append(r)
                line.append(f"{r[0]:.0f}%/{r[3]:.2f}x")
            print(" | ".join(line), flush=True)
    print(
        f"\ntraining half: {len(members)} members, {args.trials} trials each; time = ESGD / MiniBatchKMeans"
    )
    eq = np.array([m.equal_sizes for m in members])
    ok90 = np.array(kpp_rates) >= 90
    for n in names:
        a = np.array(res[n])
        sel = eq & ok90
        print(
            f"{n}\n    rate mean {a[:, 0].mean():5.1f}% (basin {a[:, 1].mean():5.1f}%); "
            f"equal & k-means++>=90%: min {a[sel, 0].min() if sel.any() else np.nan:.0f}%; "
            f"unequal: mean {a[~eq, 0].mean():.1f}% min {a[~eq, 0].min():.0f}%; "
            f"time vs MBKM(random) median {np.median(a[:, 2]):.2f} max {a[:, 2].max():.2f}, "
            f"vs MBKM(k-means++) median {np.median(a[:, 3]):.2f} max {a[:, 3].max():.2f}"
        )


if __name__ == "__main__":
    main()
