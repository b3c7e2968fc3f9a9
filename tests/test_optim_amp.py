"""Mixed precision with closures: bf16 autocast unchanged, fp16 with a GradScaler that sees every call.

``step(closure, grad_scaler=scaler)`` unscales the gradients of each of the L + 1 closure calls, skips the
whole outer step when any call overflowed (anchor restored, counters unchanged) and lets ``scaler.update()``
run once per outer step. CPU autocast and ``GradScaler("cpu")`` exercise the same code as CUDA.
"""

import pytest
import torch
from torch import nn

from deeprelax.optim import HJ, EntropySGD, Heat, Parle

CASES = {
    EntropySGD: dict(lr=0.5, L=3, gamma=0.1, noise=0.0),
    Heat: dict(lr=0.5, L=3, gamma=0.1, noise=0.0),
    HJ: dict(lr=0.05, L=3, gamma=5.0),
    Parle: dict(lr=0.05, L=3, noise=0.0),
}


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4))


def data(n=64):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(32, 10, generator=g), torch.randint(0, 4, (32,), generator=g)) for _ in range(n)]


def make_closure(model, batches, scaler=None, dtype=None, poison=None):
    state = {"calls": 0}

    def closure():
        x, y = batches[state["calls"] % len(batches)]
        state["calls"] += 1
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            loss = nn.functional.cross_entropy(model(x), y)
        if poison is not None and state["calls"] == poison:
            loss = loss * float("inf")
        (scaler.scale(loss) if scaler is not None else loss).backward()
        return loss

    return closure, state


@pytest.mark.parametrize("cls", list(CASES))
def test_fp16_with_grad_scaler_follows_the_fp32_trajectory(cls):
    batches = data()
    ref_model, model = make_model(), make_model()
    ref = cls(ref_model.parameters(), **CASES[cls])
    opt = cls(model.parameters(), **CASES[cls])
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    c_ref, _ = make_closure(ref_model, batches)
    c, _ = make_closure(model, batches, scaler, torch.float16)
    for _ in range(5):
        ref.step(c_ref)
        opt.step(c, grad_scaler=scaler)
        scaler.update()
    assert opt.param_groups[0]["outer_steps"] == 5
    for p, q in zip(ref_model.parameters(), model.parameters()):
        torch.testing.assert_close(q, p, rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("cls", list(CASES))
def test_bf16_autocast_needs_nothing(cls):
    model = make_model()
    opt = cls(model.parameters(), **CASES[cls])
    c, state = make_closure(model, data(), dtype=torch.bfloat16)
    for _ in range(3):
        opt.step(c)
    assert state["calls"] == 3 * (CASES[cls]["L"] + 1)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("cls", [EntropySGD, HJ])
@pytest.mark.parametrize("where", ["anchor", "inner"])
def test_an_overflow_in_any_call_skips_exactly_that_outer_step(cls, where):
    L = CASES[cls]["L"]
    step_to_poison = 2  # 0-based outer step
    call = step_to_poison * (L + 1) + (1 if where == "anchor" else 3)  # 1-based closure call
    model = make_model()
    opt = cls(model.parameters(), **CASES[cls])
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    c, _ = make_closure(model, data(), scaler, torch.float16, poison=call)
    history = []
    for _ in range(4):
        before = [p.detach().clone() for p in model.parameters()]
        scale = scaler.get_scale()
        opt.step(c, grad_scaler=scaler)
        scaler.update()
        moved = not all(torch.equal(b, p) for b, p in zip(before, model.parameters()))
        history.append((moved, scaler.get_scale() / scale))
    assert [m for m, _ in history] == [True, True, False, True]
    assert history[2][1] == 0.5  # backed off once, for that step only
    assert opt.param_groups[0]["outer_steps"] == 3


def test_scaler_step_with_a_closure_hands_the_scaler_over():
    model = make_model()
    opt = EntropySGD(model.parameters(), **CASES[EntropySGD])
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    c, _ = make_closure(model, data(), scaler, torch.float16)
    opt.step(c, grad_scaler=scaler)  # the first step initialises the scale
    scaler.update()
    with pytest.warns(FutureWarning):  # torch's own deprecation notice for the grad_scaler keyword
        scaler.step(opt, c)
    scaler.update()
    assert opt.param_groups[0]["outer_steps"] == 2
