"""Cost of the curvature diagnostics on LeNet (CPU): HVP time ÷ gradient time, and the wall time of the top
Hessian eigenvalue to 1e-3 relative accuracy.

1. Ratio: on one objective (``--n-ratio`` images), a full-data gradient and an HVP by each of the three
   exact routes of ``Objective`` (``reverse-over-forward``, the default: gradient of a forward-mode
   directional derivative; ``autograd``: double backward; ``func``: ``torch.func`` jvp of grad) are timed
   **interleaved**, ``--repeats`` rounds after one warm-up round, so that changes of the machine's load hit
   all of them alike; the medians of the per-round ratios HVP ÷ gradient are reported, and the largest
   relative difference between the routes' products (they are the same exact product).
2. Top eigenvalue: ARPACK (``eigsh``, which="LA", tol=1e-3) on a ``--n-eig``-image subset (default 10 000);
   wall time, HVPs, and the residual r = ‖Hu − λu‖, which certifies |λ − λ_true| ≤ r for the symmetric H
   (the printed relative bound r/λ).

    python bench/diagnostics_cost.py --data mnist --data-dir $DEEPRELAX_DATA/mnist \
        [--checkpoint RUN_DIR/checkpoint.pt] [--threads 1]

Without ``--checkpoint`` the weights are LeNet's random initialisation (seed 0). Prints one JSON line.
With ``--profile``, also prints to stderr, for the gradient and each HVP route, the operations that took the
most self CPU time (``torch.profiler``, mean of 3 profiled calls, grouped by operation and input shapes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from deeprelax import diagnostics as dg
from deeprelax.diagnostics.objective import HVP_METHODS
from deeprelax.nets import create_model
from deeprelax.nets.datasets import load_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="mnist")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--n-ratio", type=int, default=1000)
    ap.add_argument("--n-eig", type=int, default=10000)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ncv", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-eig", action="store_true")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model("lenet", dropout=0.25)
    if args.checkpoint:
        state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        cfg = state["config"]
        model = create_model(cfg["model"], **cfg.get("model_options", {}))
        model.load_state_dict(state["model"])
    data = load_dataset(args.data, args.data_dir, progress=False)
    x, y = data.x_train, data.y_train
    out: dict[str, object] = {"threads": args.threads, "cpus": os.cpu_count(), "load_before": os.getloadavg()}

    batches = dg.make_batches(x, y, batch_size=args.batch_size, n=args.n_ratio, seed=0)
    methods = HVP_METHODS
    objs = {m: dg.Objective(model, F.cross_entropy, batches, hvp_method=m) for m in methods}
    a = objs[methods[0]]
    v = torch.randn(a.p, generator=torch.Generator().manual_seed(1))
    rows: list[tuple[float, dict[str, float]]] = []
    products: dict[str, torch.Tensor] = {}
    for r in range(args.repeats + 1):
        t0 = time.perf_counter()
        a.grad()
        tg = time.perf_counter() - t0
        th = {}
        for m, obj in objs.items():
            t0 = time.perf_counter()
            products[m] = obj.hvp(v)
            th[m] = time.perf_counter() - t0
        if r:  # round 0 warms up
            rows.append((tg, th))
    out["n_ratio"] = args.n_ratio
    out["grad_s"] = statistics.median(g for g, _ in rows)
    ref = products["autograd"].double()
    for m in methods:
        key = m.replace("-", "_")
        out[f"hvp_{key}_s"] = statistics.median(h[m] for _, h in rows)
        out[f"ratio_{key}"] = statistics.median(h[m] / g for g, h in rows)
        out[f"ratios_{key}_all"] = [round(h[m] / g, 3) for g, h in rows]
        out[f"rel_diff_{key}_vs_autograd"] = float((products[m].double() - ref).norm() / ref.norm())

    if args.profile:
        calls = {"gradient": a.grad, **{m: (lambda o=o: o.hvp(v)) for m, o in objs.items()}}
        for name, call in calls.items():
            profile(name, call)

    if not args.skip_eig:
        eb = dg.make_batches(x, y, batch_size=args.batch_size, n=min(args.n_eig, len(x)), seed=0)
        obj = dg.Objective(model, F.cross_entropy, eb)
        t0 = time.perf_counter()
        res = dg.top_eigenpairs(obj, 1, tol=1e-3, ncv=args.ncv, seed=0)
        out["n_eig"] = obj.n
        out["eig_wall_s"] = time.perf_counter() - t0
        out["lambda_max"] = float(res.values[0])
        out["eig_hvps"] = res.n_hvp
        out["residual"] = float(res.residuals[0])
        out["relative_error_bound"] = float(res.residuals[0] / abs(res.values[0]))
    out["load_after"] = os.getloadavg()
    print(json.dumps(out))


def profile(name: str, call: Callable[[], object], reps: int = 3, top: int = 8) -> None:
    """Print the ``top`` operations (by self CPU time, mean over ``reps`` profiled calls) of ``call()``."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    call()  # warm-up
    total: dict[tuple[str, str], list[float]] = {}
    for _ in range(reps):
        with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            call()
        for e in prof.key_averages(group_by_input_shape=True):
            row = total.setdefault((e.key, str(e.input_shapes)), [0.0, 0.0])
            row[0] = e.count
            row[1] += e.self_cpu_time_total / 1e3 / reps
    ms = sum(t for _, t in total.values())
    print(f"{name}: {ms:.0f} ms self CPU", file=sys.stderr)
    for (op, shapes), (count, t) in sorted(total.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"  {t:7.1f} ms {100 * t / ms:5.1f} %  {op} x{count:.0f}  {shapes[:100]}", file=sys.stderr)


if __name__ == "__main__":
    main()
