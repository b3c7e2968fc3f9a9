"""ESGD vs mini-batch EM on other members of the benchmark family (held out from tuning the defaults).

Usage::

    PYTHONPATH=src python bench/kmeans_family.py [--seeds 1 2 3] [--trials 100] [--size-concentration C]

For every generator seed: build ``make_separated_blobs(random_state=seed)`` (the ``blobs8`` parameters; equal
sizes unless ``--size-concentration`` is given), certify its global minimum, then run ``--trials`` seeded fits
of ``ESGDKMeans`` (defaults) and ``MiniBatchKMeans(init="random", n_init=1)`` at batch 1000 and 500 and print
the share at f* (f <= f* (1 + 1e-3)) and the share ending in the optimal partition. The defaults of
``ESGDKMeans`` were tuned on seed 0 only.
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from threadpoolctl import threadpool_limits

from deeprelax.cluster import ESGDKMeans, assign, kmeans_energy
from deeprelax.cluster.certify import certify_global_minimum
from deeprelax.cluster.datasets import make_separated_blobs
from deeprelax.experiments.kmeans import same_partition


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--size-concentration", type=float, default=None)
    args = ap.parse_args()
    for seed in args.seeds:
        data = make_separated_blobs(random_state=seed, size_concentration=args.size_concentration)
        cert = certify_global_minimum(data.X, data.labels)
        sizes = data.params["sizes"]
        print(f"== seed {seed}: certified {cert.certified}, f* = {cert.energy:.6f}, sizes {sizes}")
        if not cert.certified:
            continue
        for b in (1000, 500):
            for name, make in [
                ("ESGD", lambda s, b=b: ESGDKMeans(8, batch_size=b, random_state=s)),
                (
                    "mb-EM",
                    lambda s, b=b: MiniBatchKMeans(8, init="random", n_init=1, batch_size=b, random_state=s),
                ),
            ]:
                at, part = [], []
                with threadpool_limits(1):
                    for s in range(args.trials):
                        c = make(s).fit(data.X).cluster_centers_
                        at.append(kmeans_energy(data.X, c) <= cert.energy * (1 + 1e-3))
                        part.append(same_partition(assign(data.X, c)[0], data.labels))
                print(
                    f"   batch {b:4d} {name:6s} at f*: {100 * np.mean(at):5.1f} %   "
                    f"optimal partition: {100 * np.mean(part):5.1f} %"
                )


if __name__ == "__main__":
    main()
