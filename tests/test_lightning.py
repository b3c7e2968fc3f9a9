"""deeprelax.integrations.lightning: real Trainer(max_epochs=...) runs on CPU, each relaxation optimizer."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

L = pytest.importorskip("lightning")
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*dataloader_iter.*:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*"),
]

from deeprelax.integrations.lightning import RelaxationStep  # noqa: E402
from deeprelax.optim import HJ, EntropySGD, Heat  # noqa: E402
from deeprelax.optim.closures import minibatch_closure  # noqa: E402

N, BATCH, INNER = 96, 12, 3  # 8 batches per epoch, 2 outer steps of L + 1 = 4 batches each
#: clip thresholds inside the range of the direction norms of these runs
CLIP = {EntropySGD: 0.085, HJ: 0.5}
HPARAMS = {
    EntropySGD: dict(lr=0.5, L=INNER, gamma=0.03, noise=1e-3),
    HJ: dict(lr=0.1, L=INNER, gamma=1.0),
    Heat: dict(lr=0.1, L=INNER, gamma=1.0, noise=1e-3),
}


def make_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 5, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def make_loader():
    dataset = torch.utils.data.TensorDataset(*make_data(), torch.arange(N))
    return torch.utils.data.DataLoader(
        dataset, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(1)
    )


def make_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 2))


class Classifier(L.LightningModule):
    def __init__(self, opt_cls, clip=None, clip_mode="step", **hparams):
        super().__init__()
        self.automatic_optimization = False
        self.net = make_net()
        self.opt_cls = opt_cls
        self.hparams_ = dict(HPARAMS.get(opt_cls, {}), **hparams)
        self.seen = []
        self.relaxation = RelaxationStep(self, self.loss, clip_grad_norm=clip, clip=clip_mode)

    def loss(self, batch):
        x, y, index = batch
        self.seen.append(index.tolist())
        return F.cross_entropy(self.net(x), y)

    def training_step(self, dataloader_iter):
        return self.relaxation(dataloader_iter)

    def configure_optimizers(self):
        return self.opt_cls(self.parameters(), **self.hparams_)


def fit(module, epochs=2, **kw):
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kw,
    )
    trainer.fit(module, make_loader())
    return trainer


@pytest.mark.parametrize("opt_cls", [EntropySGD, HJ, Heat])
def test_trainer_run_equals_the_plain_minibatch_closure_loop(opt_cls):
    module = Classifier(opt_cls)
    torch.manual_seed(5)
    trainer = fit(module)
    closure = module.relaxation.closure
    # 2 epochs × (8 // 4) outer steps, each on L + 1 = 4 fresh batches; every batch of an epoch seen once
    assert trainer.global_step == 4
    assert closure.outer_steps == 4 and closure.grad_evals == 16
    for epoch in range(2):
        indices = sorted(i for b in module.seen[8 * epoch : 8 * (epoch + 1)] for i in b)
        assert indices == list(range(N))
    metrics = trainer.logged_metrics
    assert float(metrics["effective_epochs"]) == pytest.approx(4 * INNER / 8)
    assert float(metrics["data_epochs"]) == pytest.approx(2.0)
    assert float(metrics["grad_evals"]) == 16

    # the same run without Lightning, on the batches that Lightning drew: same noise, same weights
    x, y = make_data()
    batches = [(x[idx], y[idx]) for idx in map(torch.tensor, module.seen)]
    net = make_net()
    opt = opt_cls(net.parameters(), **HPARAMS[opt_cls])
    plain = minibatch_closure(net, F.cross_entropy, batches, opt, epoch_length=8)
    torch.manual_seed(5)
    for _ in range(2 * plain.steps_per_epoch):
        opt.step(plain)
    assert plain.grad_evals == 16
    for p, q in zip(module.net.state_dict().values(), net.state_dict().values()):
        torch.testing.assert_close(p, q)


def test_clipping_bf16_and_an_epoch_that_drops_its_remainder():
    module = Classifier(HJ, clip=1e-3, clip_mode="call")
    before = [p.detach().clone() for p in module.parameters()]
    trainer = fit(module, epochs=1, precision="bf16-mixed", limit_train_batches=7)  # 7 = 4 + 3 dropped
    assert trainer.global_step == 1 and module.relaxation.dropped_batches == 3
    # HJ's direction is a damped average of clipped gradients, and the first Nesterov step is
    # lr * (1 + momentum) * direction: it moves the weights by at most lr * 1.9 * clip
    moved = torch.linalg.vector_norm(
        torch.stack([(p.detach() - b).norm() for p, b in zip(module.parameters(), before)])
    )
    assert 0 < float(moved) <= HPARAMS[HJ]["lr"] * 1.9 * 1e-3 * (1 + 1e-3)


def test_misconfigurations_are_clear_errors():
    class Automatic(Classifier):
        def __init__(self):
            super().__init__(EntropySGD)
            self.automatic_optimization = True

        def training_step(self, batch, batch_idx):
            return self.relaxation(iter([batch]))

    with pytest.raises(RuntimeError, match="manual optimization"):
        fit(Automatic(), epochs=1)
    with pytest.raises(ValueError, match="fewer than"):
        fit(Classifier(EntropySGD), epochs=1, limit_train_batches=3)


@pytest.mark.parametrize("opt_cls", [EntropySGD, HJ])
def test_clip_once_per_step_is_the_optimizers_max_direction_norm(opt_cls):
    c = CLIP[opt_cls]
    module = Classifier(opt_cls, clip=c)
    torch.manual_seed(5)
    trainer = fit(module)
    opt = module.optimizers().optimizer
    assert opt.param_groups[0]["max_direction_norm"] == c
    assert float(trainer.logged_metrics["direction_norm"]) == float(opt.last_direction_norm)

    # the plain loop on the batches Lightning drew, with the clip stage of the optimizer: same weights;
    # the closure itself does not clip (clip="step" clips once, not at each of the L + 1 calls)
    x, y = make_data()
    batches = [(x[idx], y[idx]) for idx in map(torch.tensor, module.seen)]
    net = make_net()
    ref = opt_cls(net.parameters(), max_direction_norm=c, **HPARAMS[opt_cls])
    plain = minibatch_closure(net, F.cross_entropy, batches, ref, epoch_length=8)
    torch.manual_seed(5)
    norms = []
    for _ in range(4):
        ref.step(plain)
        norms.append(float(ref.last_direction_norm))
    assert max(norms) > c  # the clip was active
    assert module.relaxation.closure.clip_grad_norm is None
    for p, q in zip(module.net.state_dict().values(), net.state_dict().values()):
        torch.testing.assert_close(p, q)


def test_clip_once_per_step_refuses_what_it_cannot_do():
    with pytest.raises(TypeError, match="clip='step' needs"):
        fit(Classifier(torch.optim.SGD, clip=1.0, lr=0.1), epochs=1)
    with pytest.raises(ValueError, match="give the bound in one place"):
        fit(Classifier(HJ, clip=1.0, max_direction_norm=2.0), epochs=1)
    with pytest.raises(ValueError, match="clip must be"):
        RelaxationStep(make_net(), F.cross_entropy, clip_grad_norm=1.0, clip="epoch")
