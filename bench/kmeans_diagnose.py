"""Where do ESGD's misses on a family member come from: the seeding or the exploration?

Usage::

    PYTHONPATH=src python bench/kmeans_diagnose.py m02 m03 m10 m14 [--trials 20] [--report PATH]

For each named member (prefix of its name in ``benchmark_family()``), with the reference value stored in the
report JSON (``--report``, default the held-out v1 report), prints the rate at f_ref (f <= f_ref (1 + 1e-3))
of ESGD with its defaults, ESGD without exploration (T = 0, gamma = 0.35K throughout) and the k-means++
seeding followed by the polish step only (one outer step with a negligible gamma). A diagnostic, not a
tuning tool: nothing here feeds back into the defaults.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from deeprelax.cluster import ESGDKMeans, kmeans_energy
from deeprelax.cluster.datasets import benchmark_family


def rate(X: np.ndarray, K: int, batch_size: int, f_ref: float, trials: int, **kw: object) -> float:
    """% of ``trials`` seeded ESGD fits (keyword overrides ``kw``) ending at f <= f_ref (1 + 1e-3)."""
    ok = [
        kmeans_energy(X, ESGDKMeans(K, batch_size=batch_size, random_state=s, **kw).fit(X).cluster_centers_)
        <= f_ref * (1 + 1e-3)
        for s in range(trials)
    ]
    return 100 * float(np.mean(ok))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("members", nargs="+")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--report", type=Path, default=Path("docs/kmeans/kmeans_family_held-out_v1.json"))
    args = ap.parse_args()
    refs = {r["name"]: r["reference"]["f_ref"] for r in json.loads(args.report.read_text())["records"]}
    fam = {m.name: m for m in benchmark_family()}
    with threadpool_limits(limits=1):
        for prefix in args.members:
            name = next(n for n in refs if n.split("-")[0] == prefix)
            mem = fam[name]
            data = mem.make()
            K = data.n_clusters
            common = (data.X, K, mem.batch_size, refs[name], args.trials)
            default = rate(*common)
            no_explore = rate(*common, n_explore=0, step_size=0.35 * K)
            seed_only = rate(*common, n_explore=0, step_size=1e-9, max_iter=1, max_no_improvement=None)
            print(
                f"{prefix}: default {default:.0f} %, no exploration {no_explore:.0f} %, "
                f"seeding + polish only {seed_only:.0f} %",
                flush=True,
            )


if __name__ == "__main__":
    main()
