"""Wall time per fit: ESGDKMeans vs scikit-learn's MiniBatchKMeans at the same batch size (interleaved).

Both use k-means++ seeding (the default of both estimators) and ``n_init=1``.

Usage::

    PYTHONPATH=src python bench/kmeans_timing.py [--dataset blobs8] [--fits 30]
    PYTHONPATH=src python bench/kmeans_timing.py --member m03 [--fits 30]   # a family member, its batch size

Both run single-threaded (``threadpool_limits(1)``), alternating fit by fit (same seeds), so the ratio sees
the same machine load; the machine is shared, absolute numbers are noisy, the ratio less so. Also prints the
number of mini-batch gradient evaluations (``n_steps_``) of each and ESGD's cost per evaluation, and the
time of ESGD's seeding alone (one negligible step, no polish: the fixed cost before the iteration).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from threadpoolctl import threadpool_limits

from deeprelax.cluster import ESGDKMeans
from deeprelax.cluster.datasets import benchmark_family, load_benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="blobs8")
    ap.add_argument("--fits", type=int, default=30)
    ap.add_argument("--member", default=None, help="a benchmark_family() member prefix, e.g. m03")
    args = ap.parse_args()
    if args.member is None:
        data, _ = load_benchmark(args.dataset)
        batches: tuple[int, ...] = (1000, 500)
    else:
        mem = next(m for m in benchmark_family() if m.name.split("-")[0] == args.member)
        data, batches = mem.make(), (mem.batch_size,)
        print(mem.name)
    K = data.n_clusters
    seed_only = dict(n_explore=0, step_size=1e-12, max_iter=1, n_polish=0, max_no_improvement=None, n_swaps=0)
    for b in batches:
        t_es, t_mb, s_es, s_mb, t_seed, t_nosw, swaps = [], [], [], [], [], [], []
        with threadpool_limits(1):
            for s in range(args.fits):
                es = ESGDKMeans(K, batch_size=b, random_state=s)
                t0 = time.perf_counter()
                es.fit(data.X)
                t_es.append(time.perf_counter() - t0)
                mb = MiniBatchKMeans(K, init="k-means++", n_init=1, batch_size=b, random_state=s)
                t0 = time.perf_counter()
                mb.fit(data.X)
                t_mb.append(time.perf_counter() - t0)
                s_es.append(es.n_steps_)
                s_mb.append(mb.n_steps_)
                swaps.append(es.n_swaps_)
                t0 = time.perf_counter()
                ESGDKMeans(K, batch_size=b, random_state=s, n_swaps=0).fit(data.X)
                t_nosw.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                ESGDKMeans(K, batch_size=b, random_state=s, **seed_only).fit(data.X)  # type: ignore[arg-type]
                t_seed.append(time.perf_counter() - t0)
        me, mm = 1e3 * np.mean(t_es), 1e3 * np.mean(t_mb)
        per_step = 1e3 * me / np.mean(s_es)
        print(
            f"batch {b}: ESGD {me:.1f} ms/fit ({np.mean(s_es):.0f} mini-batch gradients, {per_step:.0f} us "
            "each); "
            f"MiniBatchKMeans(k-means++) {mm:.1f} ms/fit ({np.mean(s_mb):.0f} steps); ratio {me / mm:.2f}; "
            f"ESGD seeding + validation alone {1e3 * np.mean(t_seed):.1f} ms; without the swap search "
            f"(n_swaps=0) {1e3 * np.mean(t_nosw):.1f} ms/fit, ratio {np.mean(t_nosw) / np.mean(t_mb):.2f}; "
            f"swaps per fit {np.mean(swaps):.2f} ({int(np.count_nonzero(swaps))} of {len(swaps)} fits swap)"
        )


if __name__ == "__main__":
    main()
