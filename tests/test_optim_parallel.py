"""Elastic-SGD and Parle: special cases, a readable n-replica reference, and real multi-process gloo runs.

* world size 1: Parle ≡ EntropySGD bit for bit (x̄ = x, whatever ρ); ElasticSGD with ρ = 0 ≡ torch.optim.SGD;
* :func:`spec_step` simulates n replicas in one loop with plain tensor arithmetic — the specification;
* 2 and 3 processes spawned here (gloo, CPU, float64) match it to 1e-12; Parle with L = 0 equals ElasticSGD;
  on a quadratic the replicas and their mean follow the closed form of the linear elastic system;
* a rank with different hyperparameters is refused at construction, on every rank, naming the key.
"""

import math
import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from deeprelax.optim import ElasticSGD, EntropySGD, Parle
from deeprelax.optim._relaxation import NoiseRNG

HP = dict(
    lr=0.3,
    momentum=0.9,
    nesterov=True,
    weight_decay=1e-3,
    L=3,
    inner_lr=0.05,
    gamma=0.2,
    gamma_max=0.5,
    rho=0.4,
    rho_max=0.6,
    scoping=0.2,
    noise=1e-2,
    alpha=0.7,
    inner_momentum=0.5,
    inner_nesterov=True,
    inner_momentum_on="step",
)
SEED = 11
STEPS = 4


def make_model(replica):
    torch.manual_seed(100 + replica)  # replicas start from different points, so the coupling matters
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def stream(replica, n=40):
    g = torch.Generator().manual_seed(1000 + replica)
    return [
        (torch.randn(8, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (8,), generator=g))
        for _ in range(n)
    ]


def closure_for(model, data):
    it = iter(data)

    def closure():
        x, y = next(it)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    return closure


# ------------------------------------------------------------------------------ the specification
def spec_run(n, hp, steps, L=None, reference="anchors"):
    """n replicas of Parle in one loop, written from the equations (L = 0: Elastic-SGD).

    Per outer step t:  x̄ = mean_b x_b;  for every replica a: μ_a from the Langevin loop around x_a,
    d_a = x_a − μ_a (or ∇f(x_a) when L = 0) + ρ_t (x_a − x̄); then SGD with weight decay and Nesterov.
    """
    L = hp["L"] if L is None else L
    models = [make_model(a) for a in range(n)]
    closures = [closure_for(m, stream(a)) for a, m in enumerate(models)]
    gens = [NoiseRNG(SEED, a).generator(torch.device("cpu")) for a in range(n)]
    bufs = [None] * n
    lr, m, wd = hp["lr"], hp["momentum"], hp["weight_decay"]
    for t in range(steps):
        gamma = min(hp["gamma"] * (1 + hp["scoping"]) ** t, hp["gamma_max"])
        rho = min(hp["rho"] * (1 + hp["scoping"]) ** t, hp["rho_max"])
        xs = [[p.detach().clone() for p in mod.parameters()] for mod in models]
        directions, means = [], []
        for a, mod in enumerate(models):
            params = list(mod.parameters())
            for p in params:
                p.grad = None
            closures[a]()
            grad = [p.grad.clone() for p in params]
            if L == 0:
                directions.append(grad)
                means.append(xs[a])
                continue
            mu = [x.clone() for x in xs[a]]
            ib = [None] * len(params)
            for _k in range(L):
                for p in params:
                    p.grad = None
                closures[a]()
                with torch.no_grad():
                    for i, p in enumerate(params):
                        d = p.grad + wd * p + gamma * (p - xs[a][i])
                        d = d + hp["noise"] / math.sqrt(hp["inner_lr"] / 2) * torch.randn(
                            p.shape, generator=gens[a], dtype=p.dtype
                        )
                        ib[i] = d.clone() if ib[i] is None else hp["inner_momentum"] * ib[i] + d
                        d = d + hp["inner_momentum"] * ib[i]
                        p -= hp["inner_lr"] * d
                        mu[i] = hp["alpha"] * mu[i] + (1 - hp["alpha"]) * p
            with torch.no_grad():
                for p, x in zip(params, xs[a]):
                    p.copy_(x)
            directions.append([x - u for x, u in zip(xs[a], mu)])
            means.append(mu)
        ref = means if reference == "means" else xs
        xbar = [sum(r[i] for r in ref) / n for i in range(len(xs[0]))]
        for a, mod in enumerate(models):
            with torch.no_grad():
                for i, p in enumerate(mod.parameters()):
                    d = directions[a][i] + rho * (xs[a][i] - xbar[i]) + wd * xs[a][i]
                    if bufs[a] is None:
                        bufs[a] = [None] * len(xs[a])
                    bufs[a][i] = d.clone() if bufs[a][i] is None else m * bufs[a][i] + d
                    p -= lr * (d + m * bufs[a][i])
    return [[p.detach().clone() for p in mod.parameters()] for mod in models]


# ------------------------------------------------------------------------------- one process
def test_parle_in_one_process_is_entropy_sgd_bit_for_bit():
    for rho in (0.0, 0.4):
        runs = []
        for cls in (Parle, EntropySGD):
            model = make_model(0)
            hp = {k: v for k, v in HP.items() if cls is Parle or k not in ("rho", "rho_max")}
            opt = cls(model.parameters(), seed=SEED, **dict(hp, rho=rho) if cls is Parle else hp)
            c = closure_for(model, stream(0))
            for _ in range(STEPS):
                opt.step(c)
            runs.append([p.detach() for p in model.parameters()])
        assert all(torch.equal(p, q) for p, q in zip(*runs))


def test_elastic_sgd_with_rho_zero_is_torch_sgd():
    m1, m2 = make_model(0), make_model(0)
    ref = torch.optim.SGD(m1.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    opt = ElasticSGD(m2.parameters(), lr=0.1, weight_decay=1e-3, rho=0.0)
    c1, c2 = closure_for(m1, stream(0)), closure_for(m2, stream(0))
    for _ in range(5):
        ref.zero_grad()
        ref.step(c1)
        opt.step(c2)
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))


def test_the_specification_with_one_replica_is_entropy_sgd():
    # anchors the spec itself: with n = 1 it must be our EntropySGD (momentum on the whole inner step)
    model = make_model(0)
    opt = EntropySGD(model.parameters(), seed=SEED, **{k: v for k, v in HP.items() if "rho" not in k})
    c = closure_for(model, stream(0))
    for _ in range(STEPS):
        opt.step(c)
    spec = spec_run(1, HP, STEPS)[0]
    for p, q in zip(model.parameters(), spec):
        torch.testing.assert_close(p.detach(), q, rtol=0, atol=1e-13)


# ---------------------------------------------------------------------------- many processes
def _quadratic_case():
    lam = torch.tensor([0.5, 2.0, 4.0], dtype=torch.float64)
    return lam, 0.1, 0.7  # curvatures, lr, rho


def _worker(rank, world, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    results = {}
    try:
        for name, cls, kw in (
            ("parle", Parle, dict(HP)),
            ("parle-means", Parle, dict(HP, reference="means")),
            ("parle-foreach", Parle, dict(HP, foreach=True)),
            ("parle-L0", Parle, dict(HP, L=0)),
            (
                "elastic",
                ElasticSGD,
                {
                    k: HP[k]
                    for k in ("lr", "momentum", "nesterov", "weight_decay", "rho", "rho_max", "scoping")
                },
            ),
        ):
            model = make_model(rank)
            extra = dict(seed=SEED) if cls is Parle else {}
            opt = cls(model.parameters(), **kw, **extra)
            c = closure_for(model, stream(rank))
            for _ in range(STEPS):
                opt.step(c)
            results[name] = [p.detach().clone() for p in model.parameters()]
        # the linear elastic system: f_a(x) = Σ λ_i (x_i − c_a,i)²/2, momentum 0, constant ρ
        lam, lr, rho = _quadratic_case()
        c_a = torch.arange(3, dtype=torch.float64) * (rank + 1) - rank
        x = torch.full((3,), float(rank), dtype=torch.float64, requires_grad=True)
        opt = ElasticSGD([x], lr=lr, momentum=0.0, nesterov=False, rho=rho, rho_max=None)

        def quad():
            loss = 0.5 * (lam * (x - c_a) ** 2).sum()
            loss.backward()
            return loss

        traj = [x.detach().clone()]
        for _ in range(6):
            opt.step(quad)
            traj.append(x.detach().clone())
        results["quadratic"] = traj
        # EASGD's centre variable, communication period 2
        x2 = torch.full((3,), float(rank), dtype=torch.float64, requires_grad=True)
        opt = ElasticSGD([x2], lr=lr, momentum=0.0, nesterov=False, center="easgd", moving_rate=0.2, period=2)

        def quad2():
            loss = 0.5 * (lam * (x2 - c_a) ** 2).sum()
            loss.backward()
            return loss

        traj = [x2.detach().clone()]
        for _ in range(7):
            opt.step(quad2)
            traj.append(x2.detach().clone())
        results["easgd"] = traj
        results["easgd_center"] = opt.state_dict()["deeprelax"]["couplings"][0]["center"][0]
        # a rank that disagrees is refused at construction, on every rank
        try:
            ElasticSGD(make_model(0).parameters(), lr=0.1 if rank == 0 else 0.2)
            results["mismatch"] = None
        except ValueError as exc:
            results["mismatch"] = str(exc)
    finally:
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.destroy_process_group()


def _spawn(world):
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(world, os.path.join(tmp, "init"), tmp), nprocs=world, join=True)
        return [torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(world)]


@pytest.fixture(scope="module", params=[2, 3])
def ranks(request):
    return request.param, _spawn(request.param)


def test_multiprocess_parle_matches_the_specification(ranks):
    n, results = ranks
    for name, L, reference in (("parle", None, "anchors"), ("parle-means", None, "means")):
        spec = spec_run(n, HP, STEPS, L=L, reference=reference)
        for a in range(n):
            for p, q in zip(results[a][name], spec[a]):
                torch.testing.assert_close(p, q, rtol=0, atol=1e-12)


def test_multiprocess_foreach_path_equals_the_reference_loop(ranks):
    n, results = ranks
    for a in range(n):
        for p, q in zip(results[a]["parle"], results[a]["parle-foreach"]):
            torch.testing.assert_close(p, q, rtol=0, atol=1e-14)


def test_multiprocess_parle_with_L0_is_elastic_sgd_and_matches_the_specification(ranks):
    n, results = ranks
    spec = spec_run(n, HP, STEPS, L=0)
    for a in range(n):
        for p, q, s in zip(results[a]["parle-L0"], results[a]["elastic"], spec[a]):
            assert torch.equal(p, q)
            torch.testing.assert_close(p, s, rtol=0, atol=1e-12)


def test_multiprocess_elastic_sgd_on_a_quadratic_follows_the_closed_form(ranks):
    # mean:       x̄_t = c̄ + (1 − lr λ)^t (x̄_0 − c̄)
    # deviations: δ_a,t = δ*_a + (1 − lr(λ + ρ))^t (δ_a,0 − δ*_a),  δ*_a = λ (c_a − c̄)/(λ + ρ)
    n, results = ranks
    lam, lr, rho = _quadratic_case()
    cs = [torch.arange(3, dtype=torch.float64) * (a + 1) - a for a in range(n)]
    x0 = [torch.full((3,), float(a), dtype=torch.float64) for a in range(n)]
    cbar, xbar0 = sum(cs) / n, sum(x0) / n
    for t in range(7):
        xbar = cbar + (1 - lr * lam) ** t * (xbar0 - cbar)
        for a in range(n):
            dstar = lam * (cs[a] - cbar) / (lam + rho)
            delta = dstar + (1 - lr * (lam + rho)) ** t * (x0[a] - xbar0 - dstar)
            torch.testing.assert_close(results[a]["quadratic"][t], xbar + delta, rtol=0, atol=1e-12)
        got_mean = sum(results[a]["quadratic"][t] for a in range(n)) / n
        torch.testing.assert_close(got_mean, xbar, rtol=0, atol=1e-12)


def test_multiprocess_easgd_centre_variable_follows_its_recursion(ranks):
    # every τ = 2 steps: x_a ← x_a − lr ∇f_a(x_a) − α(x_a − x̃), x̃ ← x̃ + α Σ_b (x_b − x̃); else plain steps
    n, results = ranks
    lam, lr, _ = _quadratic_case()
    alpha = 0.2
    cs = [torch.arange(3, dtype=torch.float64) * (a + 1) - a for a in range(n)]
    xs = [torch.full((3,), float(a), dtype=torch.float64) for a in range(n)]
    center = sum(xs) / n
    for t in range(8):
        for a in range(n):
            torch.testing.assert_close(results[a]["easgd"][t], xs[a], rtol=0, atol=1e-12)
        if t == 7:
            break
        new = [x - lr * lam * (x - c) for x, c in zip(xs, cs)]
        if t % 2 == 0:
            new = [y - alpha * (x - center) for y, x in zip(new, xs)]
            center = center + alpha * sum(x - center for x in xs)
        xs = new
    for a in range(n):
        torch.testing.assert_close(results[a]["easgd_center"], center, rtol=0, atol=1e-12)


def test_a_rank_with_other_hyperparameters_is_refused_naming_the_key(ranks):
    n, results = ranks
    for a in range(n):
        assert results[a]["mismatch"] is not None and "lr" in results[a]["mismatch"]
        assert "rank 1" in results[a]["mismatch"]
