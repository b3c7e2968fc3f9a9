"""Parle (n replicas) vs Entropy-SGD vs Elastic-SGD (n replicas) vs SGD at equal effective epochs per replica.

Every run trains LeNet from the same initial weights (seed) through ``deeprelax train`` (the replica runs with
``--replicas N``, i.e. one process per replica over gloo), at the same budget of effective epochs per replica
(epochs × max(L, 1)); the schedules are fractions of the budget as in ``deeprelax compare``. The script prints
a markdown table (final and best validation error, effective epochs at the best, gradient evaluations per
replica and in total, wall time) and writes ``OUT/parle_mnist.json``. Runs already finished under ``OUT`` are
read back, interrupted ones resumed, so the script can be stopped and started again. It also draws each seed's
error and training-loss curves (``OUT/parle_mnist_seedS.png``; run it with ``PYTHONPATH=src`` or the package
installed).

    python bench/parle_mnist.py --data mnist-subset --budget 20 --replicas 3 --seeds 0 --out runs/parle-mnist
    python bench/parle_mnist.py --data mnist --data-dir "$DEEPRELAX_DATA/mnist" --budget 80 --seeds 0 1 ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def settings(budget: int, L: int) -> dict[str, dict]:
    """Per method: (optimizer, L, hyperparameters, schedule as fractions of the budget, replicated)."""
    relax = dict(lr=1.0, momentum=0.9, nesterov=True, L=L, inner_lr=0.1, gamma=1e-4, scoping=1e-3, noise=1e-4)
    return {
        "sgd": dict(
            optimizer="sgd",
            hparams=dict(lr=0.1, momentum=0.9, nesterov=True),
            schedule={"0": 0.1, "0.5": 0.02, "0.75": 0.004},
            replicas=1,
        ),
        "entropy-sgd": dict(
            optimizer="entropy-sgd", hparams=relax, schedule={"0": 1.0, "0.5": 0.1, "0.75": 0.01}, replicas=1
        ),
        "elastic-sgd": dict(
            optimizer="elastic-sgd",
            hparams=dict(lr=0.1, momentum=0.9, nesterov=True, rho=1.0),
            schedule={"0": 0.1, "0.5": 0.02, "0.75": 0.004},
            replicas=None,
        ),
        "parle": dict(
            optimizer="parle",
            hparams=dict(
                relax,
                rho=0.1,
                rho_max=1.0,
                gamma_max=1.0,
                alpha=0.75,
                inner_momentum=0.0,
                inner_nesterov=False,
                inner_momentum_on="gradient",
            ),
            schedule={"0": 1.0, "0.5": 0.1, "0.75": 0.01},
            replicas=None,
        ),
    }


def schedule_arg(fractions: dict[str, float], epochs: int) -> str:
    import math

    points = {}
    for frac, lr in sorted(fractions.items(), key=lambda kv: float(kv[0])):
        k = math.ceil(float(frac) * epochs - 1e-9)
        if k < epochs:
            points[k] = lr
    return ",".join(f"{k}:{v:g}" for k, v in sorted(points.items()))


def command(name: str, spec: dict, args: argparse.Namespace, seed: int, out: Path) -> list[str]:
    hp = spec["hparams"]
    per_epoch = max(int(hp.get("L", 0)), 1)
    epochs = args.budget // per_epoch
    cmd = [
        sys.executable,
        "-m",
        "deeprelax",
        "train",
        "--model",
        args.model,
        "--optimizer",
        spec["optimizer"],
        "--data",
        args.data,
        "--epochs",
        str(epochs),
        "--seed",
        str(seed),
        "--out",
        str(out),
        "--resume",
        "--no-progress",
        "--threads",
        "1",
        "--lr-schedule",
        schedule_arg(spec["schedule"], epochs),
    ]
    for k, v in hp.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            cmd.append(flag if v else "--no-" + k.replace("_", "-"))
        else:
            cmd += [flag, str(v)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    n = spec["replicas"] or args.replicas
    if n > 1:
        cmd += ["--replicas", str(n)]
    return cmd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="mnist-subset")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--model", default="lenet")
    ap.add_argument("--budget", type=int, default=20, help="effective epochs per replica")
    ap.add_argument("--L", type=int, default=5)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--methods", nargs="+", default=["sgd", "entropy-sgd", "elastic-sgd", "parle"])
    ap.add_argument("--out", type=Path, default=Path("runs/parle-mnist"))
    args = ap.parse_args()
    specs = settings(args.budget, args.L)
    rows = []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for seed in args.seeds:
        for name in args.methods:
            out = args.out / f"{name}-seed{seed}"
            if not (out / "result.json").exists():
                cmd = command(name, specs[name], args, seed, out)
                print("$", " ".join(cmd), flush=True)
                t0 = time.time()
                subprocess.run(cmd, check=True, env=env)
                print(f"  {name} seed {seed}: {time.time() - t0:.0f} s", flush=True)
            res = json.loads((out / "result.json").read_text())
            hist = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
            rows.append(
                dict(
                    method=name,
                    seed=seed,
                    final=res["final_error"],
                    best=res["best_error"],
                    best_at=res["best_effective_epochs"],
                    grad_evals=hist[-1]["grad_evals"],
                    grad_evals_total=hist[-1].get("grad_evals_total", hist[-1]["grad_evals"]),
                    wall=res["wall_time"],
                    curve=[(r["effective_epochs"], r["test_error"]) for r in hist],
                    train_loss=[r["train_loss"] for r in hist],
                )
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "parle_mnist.json").write_text(json.dumps(rows, indent=2) + "\n")
    for seed in args.seeds:
        print("figure:", plot_seed(rows, seed, args.out / f"parle_mnist_seed{seed}.png", args))
    print(
        "| method | seed | final error (%) | best error (%) @ eff. epochs "
        "| gradient evaluations per replica | in total | wall time (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | {r['seed']} | {r['final']:.2f} | {r['best']:.2f} @ {r['best_at']} "
            f"| {r['grad_evals']:,} | {r['grad_evals_total']:,} | {r['wall']:.0f} |"
        )
    print()
    print(reach_table(rows))


def plot_seed(rows: list[dict], seed: int, path: Path, args: argparse.Namespace) -> Path:
    """The error and training-loss curves of one seed's runs against effective epochs per replica."""
    from deeprelax.experiments.plots import plot_runs

    runs = {
        r["method"]: [
            dict(effective_epochs=e, test_error=err, train_loss=loss)
            for (e, err), loss in zip(r["curve"], r["train_loss"])
        ]
        for r in rows
        if r["seed"] == seed
    }
    title = f"{args.model} on {args.data}, seed {seed}: {args.replicas} replicas for Elastic-SGD and Parle"
    return plot_runs(runs, path, title=title)


def first_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    """The first effective epoch at which the test error is at or below ``target`` (``None``: never)."""
    return next((e for e, err in curve if err <= target + 1e-9), None)


def reach_table(rows: list[dict]) -> str:
    """Markdown: per seed, the effective epochs each method needs to reach Entropy-SGD's final error (the
    Parle paper's claim is that Parle needs 2-4x fewer), and the ratio to Entropy-SGD's own."""
    lines = [
        "| seed | Entropy-SGD final error (%) | method | eff. epochs to reach it | ÷ Entropy-SGD's |",
        "|---|---|---|---|---|",
    ]
    for seed in sorted({r["seed"] for r in rows}):
        ref = next((r for r in rows if r["seed"] == seed and r["method"] == "entropy-sgd"), None)
        if ref is None:
            continue
        target = ref["final"]
        own = first_reach(ref["curve"], target)
        for r in rows:
            if r["seed"] != seed:
                continue
            e = first_reach(r["curve"], target)
            ratio = f"{e / own:.2f}" if e is not None and own else "–"
            lines.append(
                f"| {seed} | {target:.2f} | {r['method']} | {'never' if e is None else f'{e:g}'} | {ratio} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
