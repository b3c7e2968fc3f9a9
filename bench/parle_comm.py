"""Communication ÷ outer-step time of Parle and Elastic-SGD on gloo (CPU), LeNet, n = 2 and 3 replicas.

Each replica is a process (``torch.multiprocessing.spawn``, gloo, one torch thread each) that trains LeNet on
synthetic MNIST-shaped minibatches of 128. Per outer step it records

* ``step``: the wall time of ``optimizer.step`` (L + 1 gradient evaluations + communication + update);
* ``comm``: the time the step spends in the elastic coupling — copying the parameters into the flat buffer
  and launching the all-reduce (``begin``), then waiting for it and unflattening (``apply``). The all-reduce
  is launched before the inner loop, so with L > 0 most of it overlaps with computation and ``comm`` is
  what stays exposed;
* ``allreduce``: one blocking all-reduce of the same buffer, timed alone between steps (the raw cost).

Parle (L = 20) and Elastic-SGD (L = 0) alternate within one run, so the load of the machine affects both
alike. Rank 0 prints the medians and the ratio comm / step.

    python bench/parle_comm.py --steps 6 --elastic-steps 40
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from deeprelax import distributed
from deeprelax.nets import create_model
from deeprelax.optim import ElasticSGD, Parle


def _instrument(opt, sink):
    coupling = opt._couplings[0]
    begin, apply = coupling.begin, coupling.apply

    def timed_begin(o):
        t0 = time.perf_counter()
        h = begin(o)
        sink.append(time.perf_counter() - t0)
        return h

    def timed_apply(o, parts, directions, h):
        t0 = time.perf_counter()
        out = apply(o, parts, directions, h)
        sink[-1] += time.perf_counter() - t0
        return out

    coupling.begin, coupling.apply = timed_begin, timed_apply


def _worker(rank, world, init_file, steps, elastic_steps, queue):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(rank)
    data = [
        (torch.rand(128, 1, 28, 28, generator=gen), torch.randint(0, 10, (128,), generator=gen))
        for _ in range(16)
    ]
    runs = {}
    for name, make, _n_steps in (
        ("parle L=20", lambda ps: Parle(ps, L=20, gamma=1e-4, gamma_max=1.0, seed=0), steps),
        ("elastic-sgd", lambda ps: ElasticSGD(ps, lr=0.01), elastic_steps),
    ):
        model = create_model("lenet")
        opt = make(model.parameters())
        comm: list[float] = []
        _instrument(opt, comm)
        k = [0]

        def closure(model=model, k=k):
            x, y = data[k[0] % len(data)]
            k[0] += 1
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            return loss

        runs[name] = (model, opt, closure, comm, [], [])
    rounds = max(steps, 1)
    for r in range(rounds + 1):  # round 0 is warm-up; Parle and Elastic-SGD alternate
        for _name, (model, opt, closure, comm, step_t, ar_t) in runs.items():
            repeat = 1 if "parle" in _name else max(elastic_steps // rounds, 1)
            for _ in range(repeat):
                dist.barrier()
                t0 = time.perf_counter()
                opt.step(closure)
                dt = time.perf_counter() - t0
                params = [p.detach() for p in model.parameters()]
                dist.barrier()
                t1 = time.perf_counter()
                distributed.mean(params)
                dt_ar = time.perf_counter() - t1
                if r > 0:
                    step_t.append(dt)
                    ar_t.append(dt_ar)
                else:
                    comm.pop()
    if rank == 0:
        out = {}
        for name, (_m, _o, _c, comm, step_t, ar_t) in runs.items():
            out[name] = dict(
                step=statistics.median(step_t),
                comm=statistics.median(comm),
                allreduce=statistics.median(ar_t),
                n=len(step_t),
                ratio=statistics.median(c / s for c, s in zip(comm, step_t)),
            )
        queue.put(out)
    dist.destroy_process_group()


def measure(world: int, steps: int, elastic_steps: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(
            _worker,
            args=(world, os.path.join(tmp, "init"), steps, elastic_steps, queue),
            nprocs=world,
            join=True,
        )
    return queue.get()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--steps", type=int, default=6, help="measured Parle steps per replica count")
    ap.add_argument("--elastic-steps", type=int, default=60, help="measured Elastic-SGD steps")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()})")
    print(
        "| replicas | optimizer | outer step (ms) | exposed comm (ms) | comm / step "
        "| blocking all-reduce (ms) | steps |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in args.replicas:
        res = measure(n, args.steps, args.elastic_steps)
        for name, r in res.items():
            print(
                f"| {n} | {name} | {1e3 * r['step']:.1f} | {1e3 * r['comm']:.2f} | {100 * r['ratio']:.2f} % "
                f"| {1e3 * r['allreduce']:.2f} | {r['n']} |",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
