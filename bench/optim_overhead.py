"""Overhead of the relaxation optimizers' own arithmetic, next to the gradient evaluations.

ratio = (time of one outer step with L = 20) / (21 × time of one plain SGD step with the same closure)

The LeNet of the reference runs (``deeprelax.nets``, REFERENCE §3), batch 128, MNIST-shaped random data;
the closure draws a fresh minibatch
from a pool of pre-made batches, so data loading does not enter. SGD and relaxation steps are timed in
interleaved blocks, so that a change of machine load affects both. Goal: ratio ≤ 1.02.

    python bench/optim_overhead.py [--device cpu|cuda] [--rounds 5] [--threads N] [--clock wall|cpu]

``--clock cpu`` (with ``--threads 1``) measures the process's CPU time instead of wall time: on a machine that
other jobs share, it is insensitive to time-slicing and still measures exactly what the ratio is about.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from deeprelax.nets import create_model
from deeprelax.optim import create_optimizer


def lenet() -> nn.Module:
    return create_model("lenet")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    ap.add_argument("--outer-steps", type=int, default=3, help="outer steps per relaxation block")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--L", type=int, default=20)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    pool = [
        (torch.randn(128, 1, 28, 28, device=device), torch.randint(0, 10, (128,), device=device))
        for _ in range(32)
    ]
    L = args.L
    configs = {
        "entropy-sgd": dict(lr=1.0, L=L, gamma=0.03, noise=1e-4),
        "heat": dict(lr=1.0, L=L, gamma=0.03, noise=1e-4),
        "hj": dict(lr=0.1, L=L, gamma=10.0),
    }
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    print(
        f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} L={L} batch=128 "
        f"clock={args.clock}"
    )
    model = lenet().to(device)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"LeNet parameters: {nparams}")

    def timed(opt: torch.optim.Optimizer, steps: int) -> tuple[float, float, int]:
        """(total time, time inside the closure, closure calls) over ``steps`` steps."""
        counter, inside = [0], [0.0]

        def closure():
            t = clock()
            x, y = pool[counter[0] % len(pool)]
            counter[0] += 1
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            sync(device)
            inside[0] += clock() - t
            return loss

        opt.step(closure)  # warm-up (allocates state)
        sync(device)
        counter[0], inside[0] = 0, 0.0
        t0 = clock()
        for _ in range(steps):
            opt.step(closure)
        sync(device)
        return clock() - t0, inside[0], counter[0]

    direct: dict[str, list[float]] = {}
    own: dict[str, list[float]] = {}  # the optimizer's own time per outer step [ms]
    closure_times, sgd_steps = [], (L + 1) * args.outer_steps
    for _ in range(args.rounds):
        total, inside, calls = timed(create_optimizer("sgd", model.parameters(), lr=0.01), sgd_steps)
        t_sgd = total / sgd_steps
        own.setdefault("sgd", []).append(1e3 * (total - inside) / sgd_steps)
        closure_times.append(inside / calls)
        for name, kw in configs.items():
            for foreach in (False, True):
                opt = create_optimizer(name, model.parameters(), foreach=foreach, **kw)
                total, inside, calls = timed(opt, args.outer_steps)
                assert calls == (L + 1) * args.outer_steps
                key = f"{name} foreach={foreach}"
                direct.setdefault(key, []).append(total / args.outer_steps / ((L + 1) * t_sgd))
                own.setdefault(key, []).append(1e3 * (total - inside) / args.outer_steps)
                closure_times.append(inside / calls)
    c = 1e3 * statistics.median(closure_times)
    o_sgd = statistics.median(own["sgd"])
    print(f"closure (forward + backward, batch 128): {c:.2f} ms; SGD's own update: {o_sgd:.3f} ms/step")
    print(f"{'':26s} {'own ms/outer':>12s} {'ratio':>8s} {'direct ratio: median [min, max]':>34s}")
    for key, values in direct.items():
        o = statistics.median(own[key])
        ratio = ((L + 1) * c + o) / ((L + 1) * (c + o_sgd))
        print(
            f"{key:26s} {o:12.3f} {ratio:8.4f}   {statistics.median(values):8.4f} "
            f"[{min(values):.4f}, {max(values):.4f}]"
        )
    print("ratio = ((L+1)·closure + own) / ((L+1)·(closure + SGD's own)); direct = measured step-time ratios")


if __name__ == "__main__":
    main()
