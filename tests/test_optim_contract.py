"""The torch.optim contract in its corners: each probe that once failed, now a test.

Scoping in log space, the hyperparameter schema and old checkpoints, validation of everything that enters
(constructor, add_param_group, load_state_dict), numeric types, exception safety of the inner loop, the
optimizer's own random stream, diagnostics that survive state_dict / deepcopy / pickle, and the closure
contract (zeroing, the in_inner_loop flag).
"""

import copy
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from deeprelax.optim import HJ, DivergenceError, ElasticSGD, EntropySGD, Heat, Parle, scoped
from deeprelax.optim.langevin import stability_limit
from deeprelax.optim.scoping import scoped_value

RELAX = [EntropySGD, Heat, HJ]
ALL = [EntropySGD, Heat, HJ, ElasticSGD, Parle]
SMALL = {
    EntropySGD: dict(L=3, noise=1e-3, gamma=0.1),
    Heat: dict(L=3, noise=1e-3, gamma=0.1),
    HJ: dict(L=3, gamma=5.0),
    ElasticSGD: dict(),
    Parle: dict(L=3, noise=1e-3),
}


def make_model(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2)).to(dtype)


def batches(n=16, seed=1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(12, 5, generator=g, dtype=dtype), torch.randint(0, 2, (12,), generator=g))
        for _ in range(n)
    ]


class Closure:
    def __init__(self, model, data, zero=None, fail_at=None, loss_hook=None):
        self.model, self.data, self.calls, self.zero, self.fail_at = model, data, 0, zero, fail_at
        self.loss_hook = loss_hook

    def __call__(self):
        if self.fail_at is not None and self.calls == self.fail_at:
            self.calls += 1
            raise StopIteration("end of the data")
        x, y = self.data[self.calls % len(self.data)]
        self.calls += 1
        if self.zero is not None:
            self.zero.zero_grad()
        loss = nn.functional.cross_entropy(self.model(x), y)
        if self.loss_hook is not None:
            loss = self.loss_hook(loss, self.calls)
        loss.backward()
        return loss


def params_of(model):
    return [p.detach().clone() for p in model.parameters()]


# ------------------------------------------------------------------------------------------ scoping
def test_scoping_is_computed_in_log_space_and_capped_before_it_overflows():
    assert scoped_value(0.5, 0.1, 7500, cap=10.0) == 10.0  # (1.1)^7500 overflows a float
    assert scoped_value(1e-4, 1e-3, 1000) == pytest.approx(1e-4 * 1.001**1000, rel=1e-12)
    assert scoped_value(0.0, 0.1, 10**6) == 0.0
    assert scoped_value(2.0, 0.5, 3, cap=3.9) == 3.9
    with pytest.raises(OverflowError, match="cap"):
        scoped_value(0.5, 0.1, 7500)
    group = {"rho": 0.01, "rho_max": 1.0, "scoping": 0.5, "outer_steps": 3}
    assert scoped(group, "rho") == pytest.approx(0.01 * 1.5**3)
    opt = EntropySGD(make_model().parameters(), L=1, gamma=0.5, scoping=0.1, gamma_max=1.0)
    opt.param_groups[0]["outer_steps"] = 7500
    assert opt.gammas == [1.0]


# ----------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "name,value",
    [
        ("momentum", 1.0),
        ("momentum", 1.5),
        ("scoping", 1e300),
        ("divergence_factor", 0.5),
        ("lr", torch.tensor([0.1, 0.2])),
        ("gamma", torch.tensor(0.1)),
    ],
)
def test_values_torch_would_accept_but_that_make_no_sense_are_rejected(name, value):
    cls = HJ if name != "divergence_factor" else EntropySGD
    with pytest.raises(ValueError, match=name):
        cls(make_model().parameters(), **{name: value})


def test_numbers_are_accepted_as_torch_accepts_them():
    batches_ = batches()
    runs = []
    for kw in (
        dict(lr=0.5, L=3, alpha=0.75),
        dict(lr=np.float32(0.5), L=np.int64(3), alpha=np.float64(0.75)),
        dict(lr=torch.tensor(0.5, dtype=torch.float64), L=3, alpha=0.75),
    ):
        model = make_model()
        opt = EntropySGD(model.parameters(), noise=0.0, gamma=0.1, **kw)
        c = Closure(model, batches_)
        for _ in range(3):
            opt.step(c)
        runs.append(params_of(model))
    for other in runs[1:]:
        for p, q in zip(runs[0], other):
            torch.testing.assert_close(p, q, rtol=0, atol=1e-15)


def test_params_none_is_a_clear_type_error():
    with pytest.raises(TypeError, match="params must be an iterable"):
        EntropySGD(None)


@pytest.mark.parametrize("cls", RELAX)
def test_an_invalid_param_group_is_never_installed(cls):
    model = make_model()
    opt = cls(model[0].parameters(), **SMALL[cls])
    with pytest.raises(ValueError, match="lr"):
        opt.add_param_group({"params": model[2].parameters(), "lr": -1.0})
    assert len(opt.param_groups) == 1
    opt.step(Closure(model, batches()))  # still works, and model[2] was not touched by lr = -1


@pytest.mark.parametrize(
    "src,dst", [(EntropySGD, HJ), (HJ, EntropySGD), (Heat, EntropySGD), (EntropySGD, Parle)]
)
def test_load_state_dict_refuses_another_optimizers_state(src, dst):
    model = make_model()
    state = src(model.parameters(), **SMALL[src]).state_dict()
    opt = dst(model.parameters(), **SMALL[dst])
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match="another optimizer|written by"):
        opt.load_state_dict(state)
    assert opt.state_dict()["param_groups"] == before["param_groups"]


def test_load_state_dict_refuses_torch_sgd_state():
    model = make_model()
    sd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9).state_dict()
    with pytest.raises(ValueError, match="another optimizer"):
        EntropySGD(model.parameters()).load_state_dict(sd)


@pytest.mark.parametrize(
    "key,value", [("lr", float("nan")), ("L", -3), ("outer_steps", -5), ("gamma", -1.0), ("momentum", 2.0)]
)
def test_load_state_dict_validates_values_and_names_the_key(key, value):
    model = make_model()
    opt = EntropySGD(model.parameters(), L=2)
    sd = opt.state_dict()
    sd["param_groups"][0][key] = value
    fresh = EntropySGD(model.parameters(), L=2)
    with pytest.raises(ValueError, match=rf"param_groups\[0\].*{key}"):
        fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["L"] == 2 and fresh.param_groups[0]["outer_steps"] == 0


def test_an_old_checkpoint_without_the_newer_keys_still_loads():
    model = make_model()
    opt = EntropySGD(model.parameters(), L=2, gamma=0.1)
    c = Closure(model, batches())
    opt.step(c)
    sd = opt.state_dict()
    del sd["deeprelax"]  # what the first release wrote: no metadata, no generator
    for g in sd["param_groups"]:
        for k in ("foreach", "inner_momentum_on", "divergence_factor"):
            del g[k]
    fresh = EntropySGD(model.parameters(), L=2, gamma=0.1)
    fresh.load_state_dict(sd)
    g = fresh.param_groups[0]
    assert g["foreach"] is None and g["inner_momentum_on"] == "gradient" and g["divergence_factor"] == 10.0
    assert g["outer_steps"] == 1
    fresh.step(c)


# ------------------------------------------------------------------------------ torch.optim.SGD parity
def test_momentum_zero_state_dict_equals_torch_sgd():
    data = batches()
    m1, m2 = make_model(), make_model()
    ref = torch.optim.SGD(m1.parameters(), lr=0.1, momentum=0.0)
    opt = EntropySGD(m2.parameters(), lr=0.1, momentum=0.0, nesterov=False, L=0)
    for _ in range(3):
        ref.step(Closure(m1, data, zero=ref))
        opt.step(Closure(m2, data))
    assert ref.state_dict()["state"] == opt.state_dict()["state"] == {}
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)


# ----------------------------------------------------------------------------------- exception safety
@pytest.mark.parametrize("cls", [EntropySGD, Heat, HJ, Parle])
@pytest.mark.parametrize("fail_at", [1, 2])
def test_a_closure_that_raises_in_the_inner_loop_leaves_the_anchor(cls, fail_at):
    model = make_model()
    opt = cls(model.parameters(), **SMALL[cls])
    anchor = params_of(model)
    with pytest.raises(StopIteration):
        opt.step(Closure(model, batches(), fail_at=fail_at))
    for p, a in zip(model.parameters(), anchor):
        assert torch.equal(p, a)
    assert opt.param_groups[0]["outer_steps"] == 0
    assert not opt.in_inner_loop


@pytest.mark.parametrize("cls", [EntropySGD, Heat, Parle])
def test_nan_inside_the_inner_loop_is_reported_with_the_step_and_the_anchor_kept(cls):
    model = make_model()
    opt = cls(model.parameters(), **SMALL[cls])
    anchor = params_of(model)
    closure = Closure(model, batches(), loss_hook=lambda loss, k: loss * float("nan") if k == 3 else loss)
    with pytest.raises(DivergenceError, match="outer step 0"):
        opt.step(closure)
    for p, a in zip(model.parameters(), anchor):
        assert torch.equal(p, a)


def test_a_diverging_langevin_chain_is_detected():
    # f(y) = 3y²/2 per coordinate: inner_lr·curvature = 0.9·3 = 2.7 > 2, the chain blows up geometrically
    y = torch.full((4,), 0.1, dtype=torch.float64, requires_grad=True)
    opt = EntropySGD(
        [y], lr=0.0, momentum=0.0, nesterov=False, L=20, inner_lr=0.9, gamma=1e-3, scoping=0.0, noise=0.0
    )

    def closure():
        loss = 1.5 * (y**2).sum()
        loss.backward()
        return loss

    with pytest.warns(RuntimeWarning, match="inner iterate moved .* diverging"):
        opt.step(closure)
    assert opt.state_dict()["deeprelax"]["diagnostics"]["inner_divergences"] == 1
    with warnings.catch_warnings():  # a contracting chain does not warn
        warnings.simplefilter("error")
        ok = EntropySGD([y], lr=0.0, momentum=0.0, nesterov=False, L=20, inner_lr=0.5, gamma=1e-3, noise=0.0)
        ok.step(closure)


# ------------------------------------------------------------------------------- the closure contract
@pytest.mark.parametrize("cls", [EntropySGD, HJ, ElasticSGD, Parle])
def test_gradients_are_zeroed_before_every_closure_call(cls):
    data = batches()
    runs = []
    for zero in (True, False):
        model = make_model()
        opt = (
            cls(model.parameters(), seed=3, **SMALL[cls])
            if cls not in (HJ, ElasticSGD)
            else cls(model.parameters(), **SMALL[cls])
        )
        c = Closure(model, data, zero=opt if zero else None)  # the second closure forgets to zero
        for _ in range(3):
            opt.step(c)
        runs.append(params_of(model))
    for p, q in zip(*runs):
        assert torch.equal(p, q)


def test_in_inner_loop_is_true_exactly_during_the_inner_calls():
    model = make_model()
    opt = EntropySGD(model.parameters(), L=3, gamma=0.1)
    seen = []
    inner = Closure(model, batches())

    def closure():
        seen.append(opt.in_inner_loop)
        return inner()

    opt.step(closure)
    assert seen == [False, True, True, True] and opt.in_inner_loop is False


# ------------------------------------------------------------------------------------- random streams
def test_noise_is_a_function_of_the_optimizer_state_alone():
    data = batches()
    out = []
    for global_seed in (0, 1):
        model = make_model()
        opt = EntropySGD(model.parameters(), L=3, gamma=0.1, noise=1e-2, seed=7)
        torch.manual_seed(global_seed)  # the global RNG no longer matters
        for _ in range(3):
            opt.step(Closure(model, data))
        out.append(params_of(model))
    for p, q in zip(*out):
        assert torch.equal(p, q)


def test_two_optimizers_with_identical_state_draw_identical_noise():
    data = batches()
    m1 = make_model()
    o1 = EntropySGD(m1.parameters(), L=3, gamma=0.1, noise=1e-2)
    o1.step(Closure(m1, data))
    m2 = copy.deepcopy(m1)
    o2 = EntropySGD(m2.parameters(), L=3, gamma=0.1, noise=1e-2)
    o2.load_state_dict(copy.deepcopy(o1.state_dict()))  # as torch.save + torch.load would
    torch.manual_seed(123)
    o1.step(Closure(m1, data))
    torch.manual_seed(456)
    o2.step(Closure(m2, data))
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)


# --------------------------------------------------------------------------- copies keep diagnostics
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_hj_copies_keep_their_diagnostics_and_keep_stepping(how):
    model = make_model()
    opt = HJ(model.parameters(), L=3, gamma=5.0)
    c = Closure(model, batches())
    opt.step(c)
    bundle = (model, opt)
    m2, o2 = copy.deepcopy(bundle) if how == "deepcopy" else pickle.loads(pickle.dumps(bundle))
    assert o2.residual_growth == opt.residual_growth and o2.last_residuals == opt.last_residuals
    o2.step(Closure(m2, batches()))
    sd = o2.state_dict()
    assert sd["deeprelax"]["diagnostics"]["residual_growth"] == o2.residual_growth


def test_hj_diagnostics_round_trip_through_state_dict():
    model = make_model()
    opt = HJ(model.parameters(), L=3, gamma=5.0)
    opt.step(Closure(model, batches()))
    fresh = HJ(model.parameters(), L=3, gamma=5.0)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.residual_growth == opt.residual_growth and fresh.last_residuals == opt.last_residuals


# ------------------------------------------------------------------------ inner momentum conventions
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("m", [0.5, 0.9])
def test_stability_limit_of_momentum_on_the_whole_step_is_the_spectral_radius_line(m, nesterov):
    # the noise-free step on curvature c: b ← m b + c y; y ← y − η(c y + m b) (Nesterov) or y − η b
    def radius(h):  # h = η c
        if nesterov:
            A = np.array([[1 - h * (1 + m), -h * m * m], [1.0, m]])  # rows: y, b/c
        else:
            A = np.array([[1 - h, -h * m], [1.0, m]])
        return max(abs(np.linalg.eigvals(A)))

    limit = stability_limit(m, nesterov, "step")
    assert radius(limit * 0.999) < 1 < radius(limit * 1.001)
    assert stability_limit(m, nesterov, "gradient") == 2.0


def test_momentum_on_the_whole_step_follows_its_recursion():
    # f = 0 (no data gradient): y_k follows the 2-term recursion of the coupling alone, closed form in numpy
    x0, gamma, h, m, L = 1.0, 2.0, 0.3, 0.6, 6
    y = torch.tensor([x0], dtype=torch.float64, requires_grad=True)
    opt = EntropySGD(
        [y],
        lr=1.0,
        momentum=0.0,
        nesterov=False,
        L=L,
        inner_lr=h,
        gamma=gamma,
        scoping=0.0,
        noise=0.0,
        alpha=0.5,
        inner_momentum=m,
        inner_nesterov=True,
        inner_momentum_on="step",
    )
    anchor = torch.tensor([3.0], dtype=torch.float64)
    with torch.no_grad():
        y.copy_(anchor)

    def closure():
        loss = (0.0 * y).sum()
        loss.backward()
        return loss

    opt.step(closure)
    yk, b, mu = 3.0, None, 3.0
    for _ in range(L):
        d = gamma * (yk - 3.0)
        b = d if b is None else m * b + d
        yk -= h * (d + m * b)
        mu = 0.5 * mu + 0.5 * yk
    assert y.item() == pytest.approx(mu, rel=1e-14)  # lr = 1: x − (x − μ) = μ


def test_inner_momentum_on_step_is_checked_against_its_own_stability_line():
    with pytest.raises(ValueError, match="unstable"):
        EntropySGD(
            make_model().parameters(),
            L=5,
            inner_lr=1.0,
            gamma=1.5,
            inner_momentum=0.9,
            inner_nesterov=True,
            inner_momentum_on="step",
        )  # 1.5 > 2·1.9/2.8 = 1.357
    EntropySGD(make_model().parameters(), L=5, inner_lr=1.0, gamma=1.5)  # fine without momentum
    with pytest.raises(ValueError, match="inner_momentum_on"):
        EntropySGD(make_model().parameters(), inner_momentum_on="both")


# ----------------------------------------------------------------------------- HJ: odd L, uphill
def test_hj_warns_when_the_truncated_iterate_points_uphill():
    # f = h y²/2 with h/γ = r = 10, damping δ = 0.5: slope s = δ − (1 − δ) r = −4.5 … too large; take
    # δ = 0.75, r = 5: s = 0.75 − 0.25·5 = −0.5; L = 1: p_1/p_0 = 1/(1+r) + s r/(1+r) = (1 − 2.5)/6 < 0
    h, gamma = 5.0, 1.0
    y = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = HJ([y], lr=1e-3, momentum=0.0, nesterov=False, L=1, gamma=gamma, scoping=0.0, damping=0.75)

    def closure():
        loss = 0.5 * h * (y**2).sum()
        loss.backward()
        return loss

    with pytest.warns(RuntimeWarning, match="uphill"):
        for _ in range(10):
            y0 = y.item()
            opt.step(closure)
            assert y.item() > y0 > 0  # the iterate really moves uphill: closed form p_1 = −0.25·h·y
    even = HJ([y], lr=1e-3, momentum=0.0, nesterov=False, L=2, gamma=gamma, scoping=0.0, damping=0.75)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(10):
            even.step(closure)
    assert math.isfinite(y.item())
