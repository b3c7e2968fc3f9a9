"""Fuzz the optimizers' constructors: any keyword values either build an optimizer that steps, or raise the
documented ``ValueError`` / ``TypeError`` — never another exception (hypothesis)."""

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deeprelax.optim import REGISTRY, DivergenceError, RelaxationOptimizer

VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(min_value=-10, max_value=10**6),
    st.booleans(),
    st.none(),
    st.sampled_from(["gradient", "step", "anchors", "means", "", "yes"]),
    st.floats(min_value=-2, max_value=2).map(np.float32),
    st.integers(min_value=-3, max_value=40).map(np.int64),
    st.floats(min_value=0, max_value=2).map(torch.tensor),
)


@st.composite
def configs(draw):
    name = draw(st.sampled_from(sorted(REGISTRY)))
    keys = sorted(k for k in REGISTRY[name].keywords if k not in ("process_group", "foreach"))
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=5))
    kwargs = {k: draw(VALUES) for k in chosen}
    if "L" in REGISTRY[name].keywords:  # keep the smoke step short
        kwargs.setdefault("L", 2)
        if isinstance(kwargs["L"], (int, np.integer)) and not isinstance(kwargs["L"], bool):
            kwargs["L"] = min(int(kwargs["L"]), 3) if kwargs["L"] >= 0 else kwargs["L"]
    return name, kwargs


@settings(max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_constructors_raise_only_documented_errors_and_built_optimizers_step(config):
    name, kwargs = config
    w = torch.nn.Parameter(torch.tensor([0.5, -0.3], dtype=torch.float64))
    try:
        opt = REGISTRY[name].factory([w], **kwargs)
    except (ValueError, TypeError):
        return

    def closure():
        loss = ((w**2 - 1) ** 2).sum()
        loss.backward()
        return loss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            opt.step(closure)
        except DivergenceError:
            assert isinstance(opt, RelaxationOptimizer)
            assert torch.all(torch.isfinite(w))  # the anchor was kept
            return
    if isinstance(opt, RelaxationOptimizer):
        assert opt.param_groups[0]["outer_steps"] == 1
        sd = opt.state_dict()
        fresh = REGISTRY[name].factory([w], **kwargs)
        fresh.load_state_dict(sd)  # what it wrote, it reads back
    assert all(math.isfinite(v) or math.isnan(v) for v in w.detach().tolist())


def test_a_numpy_or_torch_integer_seed_is_the_same_seed():
    """Found by the fuzz above: ``seed=np.int64(0)`` overflowed in the seed mixing (a numpy scalar)."""
    runs = []
    for seed in (0, np.int64(0), torch.tensor(0).item(), np.uint8(0)):
        w = torch.nn.Parameter(torch.tensor([0.5, -0.3], dtype=torch.float64))
        opt = REGISTRY["entropy-sgd"].factory([w], L=2, noise=1e-2, seed=seed)

        def closure(w=w):
            loss = ((w**2 - 1) ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        runs.append(w.detach().clone())
    for r in runs[1:]:
        assert torch.equal(r, runs[0])


def test_hj_whose_fixed_point_overflows_raises_and_keeps_the_anchor():
    """Found by the fuzz above: γ = 4.7e-45 (a proximal time 1/γ of 2e44) moved the weights to inf."""
    w = torch.nn.Parameter(torch.tensor([0.5, -0.3], dtype=torch.float64))
    opt = REGISTRY["hj"].factory([w], L=2, gamma=4.7e-45)

    def closure():
        loss = ((w**2 - 1) ** 2).sum()
        loss.backward()
        return loss

    with pytest.raises(DivergenceError, match="non-finite"):
        opt.step(closure)
    assert w.detach().tolist() == [0.5, -0.3]
    assert opt.param_groups[0]["outer_steps"] == 0
