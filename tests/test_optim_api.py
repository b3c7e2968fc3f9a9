"""What a PyTorch user relies on: exact special cases, foreach == reference, state_dict resume, schedulers,
parameter groups, parameters without gradients, validation, the registry."""

import copy
import math

import pytest
import torch
from torch import nn

from deeprelax.optim import HJ, OPTIMIZERS, EntropySGD, Heat, create_optimizer, inner_steps

RELAX = [EntropySGD, Heat, HJ]


def make_model(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 3)).to(dtype)


def make_batches(n, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 6, generator=g, dtype=dtype), torch.randint(0, 3, (16,), generator=g))
        for _ in range(n)
    ]


class Closure:
    """Draws the next minibatch of a fixed sequence at every call (a 'fresh minibatch' per call)."""

    def __init__(self, model, opt, batches):
        self.model, self.opt, self.batches, self.calls = model, opt, batches, 0

    def __call__(self):
        x, y = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        self.opt.zero_grad()
        loss = nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        return loss


def groups(model, **extra):
    first, second = list(model[0].parameters()), list(model[2].parameters())
    return [{"params": first, **extra}, {"params": second, "lr": 0.05, "weight_decay": 1e-3}]


# ------------------------------------------------------------------------------------------------ L = 0
@pytest.mark.parametrize("cls", RELAX)
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(
    "settings",
    [
        dict(momentum=0.9, nesterov=True, weight_decay=5e-4),
        dict(momentum=0.5, nesterov=False, dampening=0.1, weight_decay=0.0),
        dict(momentum=0.0, nesterov=False, weight_decay=1e-2),
    ],
)
def test_L0_is_bit_identical_to_torch_sgd(cls, foreach, settings):
    batches = make_batches(12)
    ref_model, model = make_model(), make_model()
    ref = torch.optim.SGD(groups(ref_model), lr=0.1, foreach=foreach, **settings)
    opt = cls(groups(model), lr=0.1, L=0, foreach=foreach, **settings)
    ref_closure, closure = Closure(ref_model, ref, batches), Closure(model, opt, batches)
    for _ in range(12):
        ref_loss = ref.step(ref_closure)
        loss = opt.step(closure)
        assert torch.equal(loss, ref_loss)
    assert closure.calls == 12
    for p, q in zip(ref_model.parameters(), model.parameters()):
        assert torch.equal(p, q)
        assert (
            torch.equal(ref.state[p]["momentum_buffer"], opt.state[q]["momentum_buffer"])
            if settings["momentum"]
            else True
        )


def test_registry_sgd_is_the_baseline():
    model = make_model()
    opt = create_optimizer("sgd", model.parameters(), lr=0.1)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["nesterov"]
    assert opt.param_groups[0]["momentum"] == 0.9 and inner_steps(opt) == 0


# ------------------------------------------------------------------------------------------- foreach
FULL = {
    EntropySGD: dict(
        lr=0.5,
        L=4,
        inner_lr=0.05,
        gamma=0.1,
        scoping=0.01,
        noise=1e-2,
        alpha=0.7,
        weight_decay=1e-3,
        inner_momentum=0.5,
        inner_nesterov=True,
    ),
    Heat: dict(
        lr=0.5, L=4, inner_lr=0.05, gamma=0.1, scoping=0.01, noise=1e-2, weight_decay=1e-3, inner_momentum=0.3
    ),
    HJ: dict(lr=0.1, L=4, gamma=5.0, scoping=0.01, damping=0.6, weight_decay=1e-3),
}


def run(cls, foreach, steps=5, dtype=torch.float64, seed=0, **overrides):
    model = make_model(dtype)
    kw = dict(FULL[cls], **overrides)
    opt = cls(groups(model, gamma=kw["gamma"] * 2), foreach=foreach, **kw)
    closure = Closure(model, opt, make_batches(7, dtype))
    torch.manual_seed(seed)
    losses = [opt.step(closure).item() for _ in range(steps)]
    return model, opt, closure, losses


@pytest.mark.parametrize("cls", RELAX)
def test_foreach_fast_path_equals_reference_loop_float64(cls):
    m1, o1, _, l1 = run(cls, foreach=False)
    m2, o2, _, l2 = run(cls, foreach=True)
    assert l1 == l2
    for p, q in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-15)
        torch.testing.assert_close(
            o1.state[p]["momentum_buffer"], o2.state[q]["momentum_buffer"], rtol=0, atol=1e-15
        )


@pytest.mark.parametrize("cls", RELAX)
def test_closure_called_L_plus_one_times_and_returns_anchor_loss(cls):
    model, opt, closure, _ = run(cls, foreach=False, steps=3)
    assert closure.calls == 3 * (FULL[cls]["L"] + 1)
    assert inner_steps(opt) == FULL[cls]["L"]
    # the loss returned by step is the one of the first call, at the anchor (before the step)
    model2 = make_model(torch.float64)
    x, y = make_batches(7, torch.float64)[0]
    expected = nn.functional.cross_entropy(model2(x), y)
    opt2 = cls(model2.parameters(), **FULL[cls])
    loss = opt2.step(Closure(model2, opt2, make_batches(7, torch.float64)))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


# ------------------------------------------------------------------------------------- scoping & state
@pytest.mark.parametrize("cls", RELAX)
def test_scoping_gamma_after_t_steps(cls):
    _, opt, _, _ = run(cls, foreach=False, steps=6)
    g0, s = FULL[cls]["gamma"], FULL[cls]["scoping"]
    assert opt.gammas[0] == pytest.approx(2 * g0 * (1 + s) ** 6, rel=1e-12)
    assert opt.gammas[1] == pytest.approx(g0 * (1 + s) ** 6, rel=1e-12)
    assert [g["outer_steps"] for g in opt.param_groups] == [6, 6]
    capped = cls(make_model().parameters(), **dict(FULL[cls], gamma_max=g0 * (1 + s) ** 2))
    capped.param_groups[0]["outer_steps"] = 10
    assert capped.gammas[0] == pytest.approx(g0 * (1 + s) ** 2)


@pytest.mark.parametrize("cls", RELAX)
def test_state_dict_round_trip_resumes_bit_identically(cls):
    dtype = torch.float32
    batches = make_batches(7, dtype)
    # uninterrupted run: 6 steps
    model = make_model(dtype)
    opt = cls(groups(model), **FULL[cls])
    closure = Closure(model, opt, batches)
    torch.manual_seed(0)
    for t in range(6):
        if t == 3:
            saved = (
                copy.deepcopy(model.state_dict()),
                copy.deepcopy(opt.state_dict()),
                torch.get_rng_state(),
                closure.calls,
            )
        opt.step(closure)
    # resume from the checkpoint taken after 3 steps, in fresh objects
    model2 = make_model(dtype, seed=123)
    opt2 = cls(groups(model2), **dict(FULL[cls], gamma=0.5, scoping=0.0))  # overwritten by load_state_dict
    model2.load_state_dict(saved[0])
    opt2.load_state_dict(saved[1])
    assert opt2.gammas == pytest.approx([FULL[cls]["gamma"] * (1 + FULL[cls]["scoping"]) ** 3] * 2)
    torch.set_rng_state(saved[2])
    closure2 = Closure(model2, opt2, batches)
    closure2.calls = saved[3]
    for _ in range(3):
        opt2.step(closure2)
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)
    assert opt.gammas == opt2.gammas


@pytest.mark.parametrize("cls", RELAX)
def test_lr_scheduler_acts_on_outer_lr_only(cls):
    model = make_model()
    opt = cls(model.parameters(), **FULL[cls])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    closure = Closure(model, opt, make_batches(7))
    for _ in range(3):
        opt.step(closure)
        sched.step()
    group = opt.param_groups[0]
    assert group["lr"] == pytest.approx(FULL[cls]["lr"] * 0.125)
    if "inner_lr" in FULL[cls]:
        assert group["inner_lr"] == FULL[cls]["inner_lr"]


@pytest.mark.parametrize("cls", RELAX)
def test_lr_scheduler_with_L0_matches_sgd(cls):
    batches = make_batches(9)
    ref_model, model = make_model(), make_model()
    ref = torch.optim.SGD(ref_model.parameters(), lr=0.2, momentum=0.9, nesterov=True)
    opt = cls(model.parameters(), lr=0.2, L=0)
    scheds = [torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 4], gamma=0.2) for o in (ref, opt)]
    c_ref, c = Closure(ref_model, ref, batches), Closure(model, opt, batches)
    for _ in range(6):
        ref.step(c_ref)
        opt.step(c)
        for s in scheds:
            s.step()
    for p, q in zip(ref_model.parameters(), model.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("cls", RELAX)
def test_parameters_without_gradient_are_untouched(cls):
    torch.manual_seed(0)
    model = make_model()
    unused = nn.Parameter(torch.randn(4))
    frozen = model[0].bias
    frozen.requires_grad_(False)
    before_unused, before_frozen = unused.detach().clone(), frozen.detach().clone()
    before_w = model[0].weight.detach().clone()
    opt = cls([{"params": list(model.parameters()) + [unused]}], **FULL[cls])
    closure = Closure(model, opt, make_batches(7))
    for _ in range(3):
        opt.step(closure)
    assert torch.equal(unused, before_unused) and torch.equal(frozen, before_frozen)
    assert unused not in opt.state and frozen not in opt.state
    assert not torch.equal(model[0].weight, before_w)


@pytest.mark.parametrize("cls", RELAX)
def test_param_groups_use_their_own_values(cls):
    # a group with lr = 0 must not move; the other must
    model = make_model()
    first, second = list(model[0].parameters()), list(model[2].parameters())
    opt = cls([{"params": first, "lr": 0.0}, {"params": second}], **FULL[cls])
    before = [p.detach().clone() for p in model.parameters()]
    opt.step(Closure(model, opt, make_batches(7)))
    after = list(model.parameters())
    assert all(torch.equal(b, a) for b, a in zip(before[:2], after[:2]))
    assert not any(torch.equal(b, a) for b, a in zip(before[2:], after[2:]))


def test_inner_loop_leaves_parameters_at_anchor_plus_outer_step():
    # lr = 0: after a full inner loop the parameters are exactly back at the anchor
    for cls in RELAX:
        model = make_model()
        before = [p.detach().clone() for p in model.parameters()]
        opt = cls(model.parameters(), **dict(FULL[cls], lr=0.0))
        opt.step(Closure(model, opt, make_batches(7)))
        assert all(torch.equal(b, a) for b, a in zip(before, model.parameters()))


# ---------------------------------------------------------------------------------------------- errors
INVALID = [
    ("lr", -0.1),
    ("lr", float("nan")),
    ("momentum", -0.5),
    ("weight_decay", -1.0),
    ("L", -1),
    ("L", 2.5),
    ("L", True),
    ("gamma", -1.0),
    ("scoping", -0.1),
    ("gamma_max", -1.0),
    ("nesterov", "yes"),
    ("dampening", -0.2),
    ("foreach", 1),
]


@pytest.mark.parametrize("cls", RELAX)
@pytest.mark.parametrize("name,value", INVALID)
def test_invalid_hyperparameters_raise_value_error_naming_them(cls, name, value):
    with pytest.raises(ValueError, match=name):
        cls(make_model().parameters(), **{name: value})


@pytest.mark.parametrize(
    "cls,name,value",
    [
        (EntropySGD, "alpha", 1.0),
        (EntropySGD, "alpha", -0.1),
        (EntropySGD, "inner_lr", 0.0),
        (EntropySGD, "noise", -1e-4),
        (EntropySGD, "inner_momentum", 1.5),
        (Heat, "inner_lr", -1.0),
        (Heat, "noise", float("inf")),
        (HJ, "gamma", 0.0),
        (HJ, "damping", 1.0),
        (HJ, "divergence_factor", 0.0),
    ],
)
def test_algorithm_specific_validation(cls, name, value):
    with pytest.raises(ValueError, match=name):
        cls(make_model().parameters(), **{name: value})


def test_nesterov_needs_momentum_and_gamma_max_needs_gamma():
    with pytest.raises(ValueError, match="nesterov"):
        EntropySGD(make_model().parameters(), momentum=0.0)
    with pytest.raises(ValueError, match="gamma_max"):
        HJ(make_model().parameters(), gamma=2.0, gamma_max=1.0)


def test_param_group_values_are_validated_too():
    model = make_model()
    with pytest.raises(ValueError, match="gamma"):
        EntropySGD([{"params": model[0].parameters(), "gamma": -1.0}])
    opt = EntropySGD(model[0].parameters())
    with pytest.raises(ValueError, match="L must be the same"):
        opt.add_param_group({"params": model[2].parameters(), "L": 3})


@pytest.mark.parametrize("cls", RELAX)
def test_missing_closure_is_a_type_error_that_says_what_to_do(cls):
    opt = cls(make_model().parameters())
    with pytest.raises(TypeError, match="closure.*fresh minibatch"):
        opt.step()


def test_registry():
    assert set(OPTIMIZERS) == {"sgd", "entropy-sgd", "hj", "heat", "elastic-sgd", "parle"}
    model = make_model()
    assert isinstance(create_optimizer("entropy-sgd", model.parameters()), EntropySGD)
    assert isinstance(create_optimizer("Entropy_SGD", model.parameters()), EntropySGD)
    assert isinstance(create_optimizer("hj", model.parameters(), gamma=3.0), HJ)
    assert isinstance(create_optimizer("heat", model.parameters()), Heat)
    with pytest.raises(ValueError, match="unknown optimizer"):
        create_optimizer("adam", model.parameters())
    with pytest.raises(TypeError, match="alpha"):
        create_optimizer("hj", model.parameters(), alpha=0.5)


def test_defaults_match_the_documentation():
    model = make_model()
    e = EntropySGD(model.parameters()).defaults
    assert (e["lr"], e["momentum"], e["nesterov"], e["L"], e["inner_lr"], e["noise"], e["alpha"]) == (
        1.0,
        0.9,
        True,
        20,
        0.1,
        1e-4,
        0.75,
    )
    h = HJ(model.parameters()).defaults
    assert (h["damping"], h["L"], h["momentum"]) == (0.75, 20, 0.9)
    assert math.isclose(Heat(model.parameters()).defaults["inner_lr"], 0.1)
