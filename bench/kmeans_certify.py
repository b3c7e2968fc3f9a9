"""Re-derive the certified global minima of the k-means benchmarks and cross-check them by restarts.

Usage::

    PYTHONPATH=src python bench/kmeans_certify.py [--restarts 1000]

For every instance of ``deeprelax.cluster.datasets.BENCHMARKS``: regenerate the data from its seeded
generator, run the separated-discs certificate (``certify_global_minimum``: the proof is in its docstring)
and print its radii and margins; compare with the stored value; then run ``--restarts`` seeded k-means++
restarts and as many random-init Lloyd (EM) restarts (scikit-learn ``KMeans``, ``n_init=1``) and print the
best value, how many restarts reach f*, and the lowest energy of any *other* local minimum found (the gap that
makes the '% at global minimum' tolerance of ``deeprelax kmeans`` unambiguous). No restart may go below f*:
that would contradict the proof.
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from deeprelax.cluster.certify import certify_global_minimum
from deeprelax.cluster.datasets import BENCHMARKS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--restarts", type=int, default=1000)
    args = ap.parse_args()
    for name, bench in BENCHMARKS.items():
        data = bench.make()
        cert = certify_global_minimum(data.X, data.labels)
        n = len(data.X)
        print(f"== {name}: N = {n}, K = {data.n_clusters}; {bench.description}")
        print(f"   certified: {cert.certified}  f* = {cert.energy:.10f}  inertia* = {cert.inertia:.6f}")
        print(
            f"   stored:    f* = {bench.certified_energy:.10f}  (match: "
            f"{np.isclose(cert.energy, bench.certified_energy, rtol=1e-9)})"
        )
        print(f"   disc radii D_g = {np.round(cert.radii, 3).tolist()}")
        print(f"   margins: disc {cert.disc_margin:.3f}, point {cert.point_margin:.3f} (both must be >= 0)")
        for init in ("k-means++", "random"):
            with threadpool_limits(1):
                f = np.array(
                    [
                        KMeans(data.n_clusters, init=init, n_init=1, random_state=s).fit(data.X).inertia_
                        / (2 * n)
                        for s in range(args.restarts)
                    ]
                )
            hit = f <= cert.energy * (1 + 1e-9)
            other = f[~hit]
            gap = f"{(other.min() / cert.energy - 1):.3g}" if other.size else "none found"
            below = int(np.sum(f < cert.energy * (1 - 1e-12)))
            print(
                f"   {init:9s} x{args.restarts}: min f = {f.min():.10f}, below f*: {below}, "
                f"at f*: {int(hit.sum())}, best other local minimum: +{gap} (relative)"
            )


if __name__ == "__main__":
    main()
