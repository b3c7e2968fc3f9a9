"""minibatch_closure: drawing, cycling, zeroing, counting, hooks, BatchNorm policy, misuse reports."""

import doctest
import itertools
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from deeprelax.optim import HJ, EntropySGD, Heat
from deeprelax.optim import closures as closures_module
from deeprelax.optim.closures import MinibatchClosure, minibatch_closure


def make_data(n=10, batch=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(batch, 4, generator=g), torch.randint(0, 3, (batch,), generator=g)) for _ in range(n)
    ]


def make_model(seed=0, bn=False):
    torch.manual_seed(seed)
    layers = [nn.Linear(4, 6)] + ([nn.BatchNorm1d(6)] if bn else []) + [nn.Tanh(), nn.Linear(6, 3)]
    return nn.Sequential(*layers)


def test_module_doctest():
    result = doctest.testmod(closures_module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("cls", [EntropySGD, Heat, HJ])
def test_same_trajectory_as_a_correct_hand_written_closure(cls):
    data = make_data(n=9)
    kw = dict(lr=0.1, L=2, gamma=0.5) if cls is not EntropySGD else dict(lr=0.1, L=2, gamma=0.05)

    model_a = make_model()
    opt_a = cls(model_a.parameters(), **kw)
    it = itertools.cycle(data)

    def hand():
        x, y = next(it)
        opt_a.zero_grad()
        loss = F.cross_entropy(model_a(x), y)
        loss.backward()
        return loss.detach()

    model_b = make_model()
    opt_b = cls(model_b.parameters(), **kw)
    closure = minibatch_closure(model_b, F.cross_entropy, data, opt_b)
    torch.manual_seed(1)
    la = [float(opt_a.step(hand)) for _ in range(5)]
    torch.manual_seed(1)
    lb = [float(opt_b.step(closure)) for _ in range(5)]
    assert la == lb
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert closure.grad_evals == closure.batches_drawn == 15
    assert closure.outer_steps == 5
    assert closure.passes == 2  # 15 batches from a loader of 9: the second pass has started


def test_counts_steps_per_epoch_and_epochs():
    data = make_data(n=10)
    model = make_model()
    opt = EntropySGD(model.parameters(), lr=0.1, L=4, gamma=0.05)
    closure = minibatch_closure(model, F.cross_entropy, data, opt)
    assert closure.calls_per_step == 5
    assert closure.steps_per_epoch == 2  # 10 // (L + 1)
    for _ in range(closure.steps_per_epoch):
        closure.step()
    assert closure.data_epochs == 1.0
    assert closure.effective_epochs == pytest.approx(2 * 4 / 10)
    state = closure.state_dict()
    other = minibatch_closure(model, F.cross_entropy, data, opt)
    other.load_state_dict(state)
    assert other.state_dict() == state
    assert state == {"batches_drawn": 10, "grad_evals": 10, "outer_steps": 2, "passes": 1}
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    assert minibatch_closure(model, F.cross_entropy, data, sgd).steps_per_epoch == 10


def test_cycles_a_dataloader_and_calls_set_epoch():
    class Sampler(torch.utils.data.Sampler):
        def __init__(self, n):
            self.n, self.epochs = n, []

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

        def __iter__(self):
            return iter(range(self.n))

        def __len__(self):
            return self.n

    x, y = torch.randn(12, 4), torch.randint(0, 3, (12,))
    sampler = Sampler(12)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4, sampler=sampler)
    model = make_model()
    opt = Heat(model.parameters(), lr=0.1, L=1, gamma=0.5)
    closure = minibatch_closure(model, F.cross_entropy, loader, opt)
    for _ in range(4):  # 8 batches from a loader of 3: StopIteration never escapes
        opt.step(closure)
    assert closure.batches_drawn == 8 and closure.passes == 3
    assert sampler.epochs == [0, 1, 2]


def test_one_shot_iterator_that_runs_dry_is_a_clear_error():
    data = make_data(n=3)
    model = make_model()
    opt = EntropySGD(model.parameters(), lr=0.1, L=1, gamma=0.05)
    closure = minibatch_closure(model, F.cross_entropy, iter(data), opt, epoch_length=3)
    opt.step(closure)
    with pytest.raises(RuntimeError, match="one-shot iterator"):
        opt.step(closure)


def test_empty_batches_is_a_value_error():
    model = make_model()
    opt = EntropySGD(model.parameters(), lr=0.1, L=1, gamma=0.05)
    with pytest.raises(ValueError, match="empty"):
        opt.step(minibatch_closure(model, F.cross_entropy, [], opt))


def test_zeroes_the_gradients_at_every_call():
    data = make_data(n=2)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = torch.full_like(p, 1e3)  # left over from somewhere else
    closure = minibatch_closure(model, F.cross_entropy, data, opt)
    closure()
    ref = make_model()
    F.cross_entropy(ref(data[0][0]), data[0][1]).backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


def test_clip_grad_norm_bounds_each_call():
    data = [(10 * x, y) for x, y in make_data(n=3)]
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    closure = minibatch_closure(model, F.cross_entropy, data, opt, clip_grad_norm=0.01)
    closure()
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert float(norm) == pytest.approx(0.01, rel=1e-4)
    with pytest.raises(ValueError, match="clip_grad_norm"):
        minibatch_closure(model, F.cross_entropy, data, opt, clip_grad_norm=0)


def test_bf16_autocast_on_cpu_tracks_fp32():
    data = make_data(n=6)
    losses = {}
    for dtype in (None, torch.bfloat16):
        model = make_model()
        opt = EntropySGD(model.parameters(), lr=0.1, L=2, gamma=0.05)
        closure = minibatch_closure(model, F.cross_entropy, data, opt, autocast=dtype)
        torch.manual_seed(3)
        losses[dtype] = [float(closure.step()) for _ in range(4)]
        assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in model.parameters())
    assert losses[torch.bfloat16] != losses[None]  # autocast really ran
    assert losses[torch.bfloat16] == pytest.approx(losses[None], rel=2e-2)


def test_scaler_scales_the_backward_and_the_clip_threshold():
    data = make_data(n=2)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=16.0)
    closure = minibatch_closure(model, F.cross_entropy, data, opt, scaler=scaler)
    closure()
    ref = make_model()
    F.cross_entropy(ref(data[0][0]), data[0][1]).backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, 16.0 * q.grad)
    clipped = minibatch_closure(model, F.cross_entropy, data, opt, scaler=scaler, clip_grad_norm=1e-3)
    clipped()
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert float(norm) == pytest.approx(16.0 * 1e-3, rel=1e-4)


class FakeRelaxation(torch.optim.Optimizer):
    """Calls the closure L + 1 times and flags the inner calls, as the relaxation optimizers do."""

    def __init__(self, params, L):
        super().__init__(params, dict(L=L, lr=0.0))
        self.in_inner_loop = False

    def step(self, closure):
        self.in_inner_loop = False
        loss = closure()
        self.in_inner_loop = True
        try:
            for _ in range(self.param_groups[0]["L"]):
                with torch.no_grad():
                    for p in self.param_groups[0]["params"]:
                        p.add_(0.5)  # an inner iterate away from the anchor
                closure()
        finally:
            self.in_inner_loop = False
        return loss


def running_stats(model):
    bn = model[1]
    return bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked)


def anchor_only_stats(data):
    model = make_model(bn=True)
    model(data[0][0])
    return running_stats(model)


@pytest.mark.parametrize(
    "make_opt",
    [lambda p: FakeRelaxation(p, L=3), lambda p: EntropySGD(p, lr=0.1, L=3, gamma=0.05)],
    ids=["in_inner_loop-flag", "position-fallback"],
)
def test_bn_policy_anchor_updates_running_stats_once_per_step(make_opt):
    data = make_data(n=4)
    model = make_model(bn=True)
    opt = make_opt(model.parameters())
    closure = minibatch_closure(model, F.cross_entropy, data, opt)  # bn="anchor" is the default
    opt.step(closure)
    mean, var, n = running_stats(model)
    ref_mean, ref_var, ref_n = anchor_only_stats(data)
    assert n == ref_n == 1
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(var, ref_var)


def test_bn_policy_every_updates_at_each_call():
    data = make_data(n=4)
    model = make_model(bn=True)
    opt = FakeRelaxation(model.parameters(), L=3)
    opt.step(minibatch_closure(model, F.cross_entropy, data, opt, bn="every"))
    mean, _, n = running_stats(model)
    assert n == 4
    assert not torch.allclose(mean, anchor_only_stats(data)[0])
    with pytest.raises(ValueError, match="bn must be"):
        minibatch_closure(model, F.cross_entropy, data, opt, bn="inner")


def test_warns_on_a_repeated_batch_and_on_eval_mode():
    x, y = make_data(n=1)[0]
    model = make_model()
    opt = EntropySGD(model.parameters(), lr=0.1, L=2, gamma=0.05)
    closure = minibatch_closure(model, F.cross_entropy, itertools.repeat((x, y)), opt, epoch_length=1)
    with pytest.warns(RuntimeWarning, match="same batch"):
        opt.step(closure)
    model.eval()
    with pytest.warns(RuntimeWarning, match="eval"):
        opt.step(minibatch_closure(model, F.cross_entropy, make_data(n=3), opt))
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step(minibatch_closure(model, F.cross_entropy, make_data(n=3), opt))


def test_rejects_an_optimizer_of_another_model_and_bad_arguments():
    model, other = make_model(), make_model(1)
    opt = EntropySGD(other.parameters(), lr=0.1, L=1, gamma=0.05)
    with pytest.raises(ValueError, match="none of the optimizer's parameters"):
        minibatch_closure(model, F.cross_entropy, make_data(n=2), opt)
    with pytest.raises(ValueError, match="loss_fn"):
        minibatch_closure(other, None, make_data(n=2), opt)
    with pytest.raises(TypeError, match="iterable"):
        minibatch_closure(other, F.cross_entropy, 3, opt)
    bare = minibatch_closure(other, F.cross_entropy, (b for b in make_data(n=2)), opt)
    with pytest.raises(TypeError, match="epoch_length"):
        _ = bare.steps_per_epoch


def test_custom_forward_for_dict_batches():
    data = [{"x": x, "y": y} for x, y in make_data(n=3)]
    model = make_model()
    opt = Heat(model.parameters(), lr=0.1, L=2, gamma=0.5)
    with pytest.raises(TypeError, match="forward"):
        opt.step(minibatch_closure(model, F.cross_entropy, data, opt))
    closure = minibatch_closure(
        model, None, data, opt, forward=lambda m, b: F.cross_entropy(m(b["x"]), b["y"])
    )
    assert isinstance(closure, MinibatchClosure)
    loss = opt.step(closure)
    assert loss.shape == () and closure.anchor_output is None and closure.grad_evals == 3
