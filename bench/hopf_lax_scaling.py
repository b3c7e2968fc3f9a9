"""Time the lower-envelope Hopf-Lax transform against brute-force O(N^2) minimisation.

Usage: PYTHONPATH=src python bench/hopf_lax_scaling.py
Prints seconds per call (best of 3) for the 1-D transform (N nodes -> N points), the brute force where it
fits in memory, and the 2-D two-pass transform on N x N grids. Single-threaded numpy is assumed
(OMP_NUM_THREADS=1); timings on a shared machine are noisy, compare ratios within one run.
"""

from __future__ import annotations

import time

import numpy as np

from deeprelax.pde.hopf_lax import hopf_lax_2d, lower_envelope_of_parabolas


def best_of(fn, k: int = 3) -> float:
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def brute(c: np.ndarray, y: np.ndarray, x: np.ndarray, t: float, chunk: int = 500) -> np.ndarray:
    out = np.empty(x.size)
    for i in range(0, x.size, chunk):
        xs = x[i : i + chunk]
        out[i : i + chunk] = (c[None, :] + (xs[:, None] - y[None, :]) ** 2 / (2 * t)).min(axis=1)
    return out


def main() -> None:
    rng = np.random.default_rng(0)
    print("1-D: N nodes -> N query points, t = 0.1")
    print(f"{'N':>9} {'envelope s':>11} {'brute s':>10} {'ratio':>7}")
    for n in (1_000, 4_000, 16_000, 100_000, 1_000_000):
        y = np.linspace(-3, 3, n)
        c = np.cos(5 * y) + 0.1 * rng.standard_normal(n)
        te = best_of(lambda: lower_envelope_of_parabolas(c, y, y, 0.1))  # noqa: B023
        if n <= 16_000:
            tb = best_of(lambda: brute(c, y, y, 0.1), k=1)  # noqa: B023
            ok = np.allclose(lower_envelope_of_parabolas(c, y, y, 0.1)[0], brute(c, y, y, 0.1), atol=1e-12)
            assert ok
            print(f"{n:>9} {te:>11.4f} {tb:>10.4f} {tb / te:>7.1f}")
        else:
            print(f"{n:>9} {te:>11.4f} {'-':>10} {'-':>7}")
    print("2-D: N x N grid -> same grid, t = 0.1 (two passes, row-vectorised sweep)")
    print(f"{'N':>9} {'seconds':>11} {'ns/point':>10}")
    for n in (101, 201, 401, 801):
        g = np.linspace(-2, 2, n)
        F = np.cos(3 * g)[:, None] * np.sin(2 * g)[None, :]
        ts = best_of(lambda: hopf_lax_2d(F, g, g, 0.1, refine=False))  # noqa: B023
        print(f"{n:>9} {ts:>11.4f} {1e9 * ts / n**2:>10.0f}")


if __name__ == "__main__":
    main()
