"""Time every lab of ``deeprelax lab`` (target: all of them in under 60 s on a 2-core CPU).

Usage::

    PYTHONPATH=src python bench/lab_time.py [--out DIR] [--seed S]

Prints wall-clock and CPU seconds per lab and the total. Figures go to a temporary directory unless ``--out``
is given. Timings on a shared machine are noisy: the CPU column is less sensitive to other load than the wall
column, and the load average at the start and end is printed so that a reader can judge.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="keep the figures here (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # imported once here so that the first lab is not charged for it

    from deeprelax.experiments.lab import labs

    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out if args.out is not None else Path(tmp)
        rows = []
        for name, mod in labs().items():
            out = root / name
            out.mkdir(parents=True, exist_ok=True)
            w0, c0 = time.perf_counter(), time.process_time()
            mod.run(out, seed=args.seed)
            rows.append((name, time.perf_counter() - w0, time.process_time() - c0))
            print(f"{name:<18} wall {rows[-1][1]:6.2f} s   cpu {rows[-1][2]:6.2f} s", flush=True)
    wall = sum(r[1] for r in rows)
    cpu = sum(r[2] for r in rows)
    print(f"{'TOTAL':<18} wall {wall:6.2f} s   cpu {cpu:6.2f} s   ({len(rows)} labs, target < 60 s)")
    print(f"load average at start {load0[0]:.2f}, at end {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
