"""Overhead of the relaxation optimizers' own arithmetic, next to the gradient evaluations.

ratio = (time of one outer step with L = 20) / (21 × time of one plain SGD step with the same closure)

A LeNet-sized network (REFERENCE §3), batch 128, MNIST-shaped random data; the closure draws a fresh minibatch
from a pool of pre-made batches, so data loading does not enter. SGD and relaxation steps are timed in
interleaved blocks, so that a change of machine load affects both. Goal: ratio ≤ 1.02.

    python bench/optim_overhead.py [--device cpu|cuda] [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from deeprelax.optim import create_optimizer

try:
    from deeprelax.nets import build_model

    def lenet() -> nn.Module:
        return build_model("lenet")
except ImportError:  # the networks module is not there: the same architecture, inline
    def lenet() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(3, 3), nn.BatchNorm2d(20), nn.Dropout(0.25),
            nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.BatchNorm2d(50), nn.Dropout(0.25),
            nn.Flatten(), nn.Linear(200, 500), nn.ReLU(), nn.Dropout(0.25), nn.Linear(500, 10))


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
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    pool = [(torch.randn(128, 1, 28, 28, device=device), torch.randint(0, 10, (128,), device=device))
            for _ in range(32)]
    L = args.L
    configs = {
        "entropy-sgd": dict(lr=1.0, L=L, gamma=0.03, noise=1e-4),
        "heat": dict(lr=1.0, L=L, gamma=0.03, noise=1e-4),
        "hj": dict(lr=0.1, L=L, gamma=10.0),
    }
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} L={L} batch=128")
    model = lenet().to(device)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"LeNet parameters: {nparams}")

    def timed(opt: torch.optim.Optimizer, steps: int) -> float:
        counter = [0]

        def closure():
            x, y = pool[counter[0] % len(pool)]
            counter[0] += 1
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        opt.step(closure)  # warm-up (allocates state)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.step(closure)
        sync(device)
        return (time.perf_counter() - t0) / steps

    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        sgd_steps = (L + 1) * args.outer_steps
        t_sgd = timed(create_optimizer("sgd", model.parameters(), lr=0.01), sgd_steps)
        for name, kw in configs.items():
            for foreach in (False, True):
                t = timed(create_optimizer(name, model.parameters(), foreach=foreach, **kw), args.outer_steps)
                results.setdefault(f"{name} foreach={foreach}", []).append(t / ((L + 1) * t_sgd))
        results.setdefault("sgd step [ms]", []).append(1e3 * t_sgd)
    print(f"{'':28s} {'median':>8s} {'min':>8s} {'max':>8s}   (ratio = outer step / ((L+1) × SGD step))")
    for k, v in results.items():
        print(f"{k:28s} {statistics.median(v):8.4f} {min(v):8.4f} {max(v):8.4f}")


if __name__ == "__main__":
    main()
