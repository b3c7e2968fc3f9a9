"""The clip stage: ``max_direction_norm`` bounds the relaxed direction once per outer step.

* L = 0 (and Elastic-SGD / Parle in one process): ``clip_grad_norm_`` then ``torch.optim.SGD``, bit for bit;
* L > 0: the direction the unclipped optimizer would use, scaled by min(1, c / (‖d‖ + 1e-6)) (the oracle
  is the same optimizer without clipping, from the same state, on the same batches and noise);
* foreach ≡ single-tensor reference; validation, state_dict and old-checkpoint defaults.
"""

import copy
import math
import pickle

import pytest
import torch
from torch import nn

from deeprelax.optim import HJ, ElasticSGD, EntropySGD, Heat, Parle
from deeprelax.optim.clipping import EPS, clip_foreach, clip_single

ALL = [EntropySGD, Heat, HJ, ElasticSGD, Parle]


def make_model(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 3)).to(dtype)


def make_batches(n, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 6, generator=g, dtype=dtype) * 3, torch.randint(0, 3, (16,), generator=g))
        for _ in range(n)
    ]


class Closure:
    def __init__(self, model, batches, start=0):
        self.model, self.batches, self.calls = model, batches, start

    def __call__(self):
        x, y = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        loss = nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        return loss


def groups(model):
    first, second = list(model[0].parameters()), list(model[2].parameters())
    return [{"params": first}, {"params": second, "lr": 0.05, "weight_decay": 1e-3}]


def build(cls, params, **kw):
    if cls is ElasticSGD:
        kw.pop("L", None)
        kw.setdefault("rho", 0.0)
    if cls is Parle:
        kw.setdefault("rho", 0.0)
    return cls(params, **kw)


# ------------------------------------------------------------------------------- L = 0: clip + SGD
@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("foreach", [False, True])
def test_L0_is_clip_grad_norm_then_torch_sgd_bit_for_bit(cls, foreach):
    c = 0.75  # the gradient norms of this run lie around 0.6 … 0.9
    wd = 0.0 if cls is HJ else 5e-4  # HJ folds weight decay into its direction, so it is clipped too
    batches = make_batches(12)
    ref_model, model = make_model(), make_model()
    ref_groups, our_groups = groups(ref_model), groups(model)
    if cls is HJ:
        ref_groups[1]["weight_decay"] = our_groups[1]["weight_decay"] = 0.0
    ref = torch.optim.SGD(ref_groups, lr=0.1, momentum=0.9, nesterov=True, weight_decay=wd, foreach=foreach)
    opt = build(
        cls, our_groups, lr=0.1, L=0, momentum=0.9, weight_decay=wd, foreach=foreach, max_direction_norm=c
    )
    ref_closure, closure = Closure(ref_model, batches), Closure(model, batches)
    clipped = 0
    for _ in range(12):
        ref.zero_grad()
        ref_loss = ref_closure()
        norm = nn.utils.clip_grad_norm_(ref_model.parameters(), c, foreach=foreach)
        ref.step()
        loss = opt.step(closure)
        assert torch.equal(loss, ref_loss)
        assert torch.equal(opt.last_direction_norm, norm)
        clipped += int(norm > c)
    assert 0 < clipped < 12  # the threshold was active on some steps and not on others
    for p, q in zip(ref_model.parameters(), model.parameters()):
        assert torch.equal(p, q)
        assert torch.equal(ref.state[p]["momentum_buffer"], opt.state[q]["momentum_buffer"])


# --------------------------------------------------------------- L > 0: oracle = unclipped direction
RELAXED = {
    EntropySGD: dict(lr=0.5, L=3, inner_lr=0.05, gamma=0.1, scoping=0.01, noise=1e-2, weight_decay=1e-3),
    Heat: dict(lr=0.5, L=3, inner_lr=0.05, gamma=0.1, noise=1e-2, weight_decay=1e-3),
    HJ: dict(lr=0.1, L=3, gamma=5.0, scoping=0.01, weight_decay=1e-3),
    Parle: dict(lr=0.5, L=3, inner_lr=0.05, gamma=0.1, noise=1e-2, rho=0.5, weight_decay=1e-3),
}


#: thresholds inside the range of each optimizer's direction norms on this problem (some steps clip)
THRESHOLD = {EntropySGD: 0.042, Heat: 0.05, HJ: 0.47, Parle: 0.105}


def capture_directions(opt):
    """Record the directions the outer update receives (and still run it)."""
    seen = []
    original = opt._outer_update

    def outer_update(pt, dirs):
        seen.append([d.clone() for d in dirs])
        original(pt, dirs)

    opt._outer_update = outer_update
    return seen


@pytest.mark.parametrize("cls", list(RELAXED))
def test_direction_is_the_unclipped_direction_scaled_by_min_1_c_over_norm(cls):
    dtype, c = torch.float64, THRESHOLD[cls]
    kw = dict(RELAXED[cls], foreach=False)
    if cls is not HJ:
        kw["seed"] = 3
    batches = make_batches(9, dtype)
    model = make_model(dtype)
    opt = cls(groups(model), max_direction_norm=c, **kw)
    closure = Closure(model, batches)
    seen = capture_directions(opt)
    scales = []
    for _ in range(4):
        # the oracle: the same optimizer without clipping, from the same state, on the same batches
        twin = make_model(dtype)
        twin.load_state_dict(model.state_dict())
        ref = cls(groups(twin), **kw)
        state = copy.deepcopy(opt.state_dict())
        for g in state["param_groups"]:
            g["max_direction_norm"] = None
        ref.load_state_dict(state)
        ref_seen = capture_directions(ref)
        ref.step(Closure(twin, batches, start=closure.calls))
        d = [t for dirs in ref_seen for t in dirs]
        norm = math.sqrt(sum(float(t.pow(2).sum()) for t in d))
        scale = min(1.0, c / (norm + EPS))
        scales.append(scale)

        seen.clear()
        opt.step(closure)
        got = [t for dirs in seen for t in dirs]
        assert float(opt.last_direction_norm) == pytest.approx(norm, rel=1e-12)
        for a, b in zip(got, d):
            torch.testing.assert_close(a, b * scale, rtol=1e-12, atol=1e-15)
        clipped = [t for dirs in seen for t in dirs]
        assert math.sqrt(sum(float(t.pow(2).sum()) for t in clipped)) <= c * (1 + 1e-12)
    assert min(scales) < 1.0  # the clip was active


def test_clip_is_once_per_step_not_per_closure_call():
    # L + 1 closure calls, one clip: without momentum the step is lr·(x − μ_L) scaled to norm c
    dtype = torch.float64
    model = make_model(dtype)
    before = [p.detach().clone() for p in model.parameters()]
    opt = EntropySGD(
        model.parameters(), lr=0.5, L=3, inner_lr=0.05, gamma=0.1, noise=0.0, momentum=0.0, nesterov=False,
        max_direction_norm=1e-3,
    )  # fmt: skip
    calls = Closure(model, make_batches(4, dtype))
    opt.step(calls)
    assert calls.calls == 4
    moved = math.sqrt(sum(float((p.detach() - b).pow(2).sum()) for p, b in zip(model.parameters(), before)))
    n = float(opt.last_direction_norm)
    assert n > 1e-3
    assert moved == pytest.approx(0.5 * 1e-3 * n / (n + EPS), rel=1e-9)


# ------------------------------------------------------------------------------ foreach ≡ reference
def test_clip_kernels_foreach_equals_single_and_the_formula():
    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(s, generator=g, dtype=torch.float64) for s in [(3, 4), (7,), (50, 30), ()]]
    tensors += [torch.randn(5, generator=g, dtype=torch.float32)]
    for c in (1e-2, 1e6):
        a, b = [t.clone() for t in tensors], [t.clone() for t in tensors]
        na, nb = clip_single(a, c), clip_foreach(b, c)
        assert torch.equal(na, nb)
        for x, y, t in zip(a, b, tensors):
            assert torch.equal(x, y)
            exact = math.sqrt(sum(float(u.double().pow(2).sum()) for u in tensors))
            torch.testing.assert_close(x, t * min(1.0, c / (exact + EPS)), rtol=1e-6, atol=0)
    assert float(clip_single([], 1.0)) == 0.0 == float(clip_foreach([], 1.0))


@pytest.mark.parametrize("cls", list(RELAXED))
def test_optimizer_foreach_equals_reference_loop_with_clipping(cls):
    def run(foreach):
        model = make_model(torch.float64)
        kw = dict(RELAXED[cls], foreach=foreach, max_direction_norm=THRESHOLD[cls])
        if cls is not HJ:
            kw["seed"] = 1
        opt = cls(groups(model), **kw)
        closure = Closure(model, make_batches(9, torch.float64))
        norms = []
        for _ in range(4):
            opt.step(closure)
            norms.append(float(opt.last_direction_norm))
        return model, norms

    (m1, n1), (m2, n2) = run(False), run(True)
    assert max(n1) > THRESHOLD[cls]
    assert n1 == pytest.approx(n2, rel=1e-14)
    for p, q in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-15)


# ------------------------------------------------------------------------------ schema and state
@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("value", [0.0, -1.0, float("inf"), "1", True])
def test_invalid_max_direction_norm_is_a_value_error_naming_it(cls, value):
    with pytest.raises(ValueError, match="max_direction_norm"):
        cls(make_model().parameters(), max_direction_norm=value)


def test_max_direction_norm_is_one_number_for_all_groups():
    model = make_model()
    with pytest.raises(ValueError, match="max_direction_norm must be the same"):
        EntropySGD(
            [{"params": model[0].parameters(), "max_direction_norm": 2.0}, {"params": model[2].parameters()}],
            max_direction_norm=1.0,
        )
    opt = HJ(model[0].parameters(), max_direction_norm=1.0)
    with pytest.raises(ValueError, match="max_direction_norm must be the same"):
        opt.add_param_group({"params": model[2].parameters(), "max_direction_norm": None})
    opt.add_param_group({"params": model[2].parameters()})  # the default is the optimizer's
    assert opt.param_groups[1]["max_direction_norm"] == 1.0
    state = opt.state_dict()
    state["param_groups"][1]["max_direction_norm"] = 3.0
    with pytest.raises(ValueError, match="different max_direction_norm"):
        opt.load_state_dict(state)


@pytest.mark.parametrize("cls", ALL)
def test_a_checkpoint_written_before_clipping_existed_loads_with_it_off(cls):
    model = make_model()
    opt = build(cls, model.parameters(), L=0)
    blob = pickle.loads(pickle.dumps(opt.__getstate__()))  # a copy: __getstate__ shares the groups
    for g in blob["param_groups"]:
        del g["max_direction_norm"]
    del blob["defaults"]["max_direction_norm"]
    old = cls.__new__(cls)
    old.__setstate__(blob)
    assert old.param_groups[0]["max_direction_norm"] is None and old.defaults["max_direction_norm"] is None
    assert old.last_direction_norm is None
    # and a state_dict without the key loads into a clipping optimizer as that state says: no key, no clip
    sd = opt.state_dict()
    for g in sd["param_groups"]:
        del g["max_direction_norm"]
    new = build(cls, model.parameters(), L=0, max_direction_norm=1.0)
    new.load_state_dict(sd)
    assert new.param_groups[0]["max_direction_norm"] is None


# ------------------------------------------------------------------------------ under a GradScaler
@pytest.mark.parametrize("cls", [EntropySGD, HJ])
def test_the_clip_sees_unscaled_directions_under_a_grad_scaler(cls):
    # a power-of-two scale and fp32 autocast-free closures: scaling and unscaling are exact, so the clipped
    # run with a GradScaler is the clipped run without one, bit for bit (a clip on scaled gradients would
    # clip 2^10 times harder)
    c = 0.9 * THRESHOLD[cls]
    kw = dict(RELAXED[cls], foreach=False, max_direction_norm=c)
    if cls is not HJ:
        kw.update(seed=3, noise=0.0)
    batches = make_batches(9)
    runs = []
    for scaler in (None, torch.amp.GradScaler("cpu", init_scale=2.0**10)):
        model = make_model()
        opt = cls(groups(model), **kw)
        calls = {"n": 0}

        def closure(model=model, scaler=scaler, calls=calls):
            x, y = batches[calls["n"] % len(batches)]
            calls["n"] += 1
            loss = nn.functional.cross_entropy(model(x), y)
            (scaler.scale(loss) if scaler is not None else loss).backward()
            return loss

        norms = []
        for _ in range(4):
            opt.step(closure, grad_scaler=scaler)
            norms.append(float(opt.last_direction_norm))
            if scaler is not None:
                scaler.update()
        runs.append((model, norms))
    (m1, n1), (m2, n2) = runs
    assert n1 == n2 and max(n1) > c
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)
