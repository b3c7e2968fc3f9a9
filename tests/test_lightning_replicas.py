"""ReplicaDDPStrategy: Parle under a real ``Trainer(accelerator="cpu", devices=2)``, two processes, gloo.

Each rank records the batches it drew (by index), its replica's weights at the end and the weights it
evaluated on; the test then replays the run in one process — two Parle replicas whose coupling is handed the
mean of both anchors, exactly what the all-reduce computes — and checks:

* the DistributedSampler sharded each epoch between the ranks (disjoint, together all the data);
* the replicas started together (rank 1 was perturbed before set-up; the broadcast undid it), then differed;
* every step equals the single-process two-replica reference (so the gradients were not averaged, and the
  elastic coupling went through Lightning's process group);
* validation ran on the reference x̄ = mean of the replicas (BatchNorm statistics included), on both ranks,
  and training resumed from each rank's own replica; after ``fit`` the module holds x̄;
* a checkpoint holds x̄ as its state_dict and every replica beside it; resuming from it puts each replica back
  (weights, momentum, noise stream), and the resumed run ends where an uninterrupted one does.
"""

import os

import pytest
import torch
from torch import nn
from torch.nn import functional as F

L = pytest.importorskip("lightning")
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*dataloader_iter.*:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

from deeprelax import distributed  # noqa: E402
from deeprelax.integrations.lightning import RelaxationStep, ReplicaDDPStrategy  # noqa: E402
from deeprelax.optim import EntropySGD, Parle  # noqa: E402
from deeprelax.optim._relaxation import NoiseRNG  # noqa: E402
from deeprelax.optim.closures import minibatch_closure  # noqa: E402
from deeprelax.optim.elastic import ElasticCoupling  # noqa: E402

N, N_VAL, BATCH, WORLD, SEED = 96, 32, 12, 2, 7
HP = dict(lr=0.5, L=1, gamma=0.03, noise=1e-3, rho=2.0, rho_max=None, scoping=0.0)
# per rank: 48 samples = 4 batches = 2 outer steps of L + 1 = 2 batches per epoch


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def loaders():
    train = torch.utils.data.TensorDataset(*make_data(N, 0), torch.arange(N))
    val = torch.utils.data.TensorDataset(*make_data(N_VAL, 1), torch.arange(N_VAL))
    return (
        torch.utils.data.DataLoader(train, batch_size=BATCH, shuffle=True),
        torch.utils.data.DataLoader(val, batch_size=16),
    )


def make_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 2))


def snapshot(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


class Replica(L.LightningModule):
    def __init__(self, out, opt_cls=Parle):
        super().__init__()
        self.automatic_optimization = False
        self.net = make_net()
        self.out, self.opt_cls = out, opt_cls
        self.seen, self.evaluated = [], []
        self.relaxation = RelaxationStep(self, self.loss, log=False)

    def setup(self, stage):
        with torch.no_grad():  # a different start on rank 1: the strategy must broadcast rank 0's
            for p in self.net.parameters():
                p.add_(0.5 * self.global_rank)

    def loss(self, batch):
        x, y, index = batch
        self.seen.append(index.tolist())
        return F.cross_entropy(self.net(x), y)

    def training_step(self, dataloader_iter):
        return self.relaxation(dataloader_iter)

    def validation_step(self, batch, batch_idx):
        if batch_idx == 0:
            self.evaluated.append(snapshot(self.net))
        x, y, _ = batch
        self.log("val_loss", F.cross_entropy(self.net(x), y), sync_dist=True)

    def on_train_end(self):  # runs before the strategy's on_train_end puts the reference in
        record = {"seen": self.seen, "evaluated": self.evaluated, "replica": snapshot(self.net)}
        torch.save(record, os.path.join(self.out, f"rank{self.global_rank}.pt"))

    def configure_optimizers(self):
        hp = HP if self.opt_cls is Parle else {k: v for k, v in HP.items() if not k.startswith("rho")}
        return self.opt_cls(self.parameters(), seed=SEED, **hp)


def trainer(tmp_path, epochs, **kw):
    return L.Trainer(
        accelerator="cpu",
        devices=WORLD,
        strategy=ReplicaDDPStrategy(start_method="fork"),
        max_epochs=epochs,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kw,
    )


class GivenReference(ElasticCoupling):
    """The elastic coupling with x̄ handed in: what the all-reduce of the two ranks computes."""

    xbar: list

    def begin(self, opt):
        return distributed.start_mean(self.xbar)  # one process: a copy, no collective


def replay(records, steps_per_epoch, epochs):
    """Two Parle replicas in one process on the batches each rank drew; returns per-epoch references."""
    x, y = make_data(N, 0)
    nets, opts, closures, couplings = [], [], [], []
    for rank, rec in enumerate(records):
        net = make_net()
        opt = Parle(net.parameters(), seed=SEED, **HP)
        opt._rng = NoiseRNG(SEED, rank)  # the stream rank `rank` draws
        coupling = GivenReference()
        opt._couplings = [coupling]
        batches = [(x[idx], y[idx]) for idx in map(torch.tensor, rec["seen"])]
        nets.append(net), opts.append(opt), couplings.append(coupling)
        closures.append(minibatch_closure(net, F.cross_entropy, batches, opt, epoch_length=4))
    references = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            params = [list(net.parameters()) for net in nets]
            xbar = [sum(ps[i].detach() for ps in params) / len(nets) for i in range(len(params[0]))]
            for opt, coupling, closure in zip(opts, couplings, closures):
                coupling.xbar = xbar
                opt.step(closure)
        states = [snapshot(net) for net in nets]
        references.append(
            {
                k: sum(s[k] for s in states) / len(states)
                if states[0][k].is_floating_point()
                else states[0][k]
                for k in states[0]
            }
        )
    return [snapshot(net) for net in nets], references


def assert_state_close(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)


def test_parle_under_a_two_process_trainer_equals_the_two_replica_reference(tmp_path):
    module = Replica(str(tmp_path))
    train, val = loaders()
    fitted = trainer(tmp_path, epochs=2)
    fitted.fit(module, train, val)
    records = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]

    # sharding: each epoch the ranks drew disjoint halves of the data (4 batches each)
    for epoch in range(2):
        shards = [sorted(i for b in rec["seen"][4 * epoch : 4 * epoch + 4] for i in b) for rec in records]
        assert not set(shards[0]) & set(shards[1]) and sorted(shards[0] + shards[1]) == list(range(N))

    replicas, references = replay(records, steps_per_epoch=2, epochs=2)
    for rank, rec in enumerate(records):
        assert_state_close(rec["replica"], replicas[rank])  # every step as the reference's replica
        for seen, expected in zip(rec["evaluated"], references):  # validation on x̄, on every rank
            assert_state_close(seen, expected)
        assert len(rec["evaluated"]) == 2
    gap = max((replicas[0][k] - replicas[1][k]).abs().max() for k in replicas[0] if "weight" in k)
    assert gap > 1e-3  # the replicas differ (own data, own noise) ...
    assert_state_close(snapshot(module.net), references[-1])  # ... and fit leaves their mean x̄


def test_a_checkpoint_holds_the_reference_and_puts_every_replica_back(tmp_path):
    train, val = loaders()
    # a checkpoint written by the ranks themselves, at the end of epoch 1
    ckpt_cb = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    second = Replica(str(tmp_path / "b"))
    os.makedirs(second.out)
    t2 = L.Trainer(
        accelerator="cpu",
        devices=WORLD,
        strategy=ReplicaDDPStrategy(start_method="fork"),
        max_epochs=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ckpt_cb],
        default_root_dir=tmp_path,
    )
    t2.fit(second, train, val)
    ckpt = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    replicas = ckpt["optimizer_states"][0]["deeprelax_replicas"]
    assert len(replicas) == WORLD
    own = [{k[len("net.") :]: v for k, v in r["module"].items()} for r in replicas]
    mean = {k: (own[0][k] + own[1][k]) / 2 if own[0][k].is_floating_point() else own[0][k] for k in own[0]}
    saved = {k[len("net.") :]: v for k, v in ckpt["state_dict"].items()}
    assert_state_close(saved, mean)  # the state_dict is x̄ ...
    rec = [torch.load(tmp_path / "b" / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    for r in range(WORLD):
        assert_state_close(own[r], rec[r]["replica"])  # ... beside every replica's own weights

    # resume for one more epoch: the ranks continue from their own replicas, as an uninterrupted run would
    third = Replica(str(tmp_path / "c"))
    os.makedirs(third.out)
    trainer(tmp_path, epochs=2).fit(third, train, val, ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    resumed = [torch.load(tmp_path / "c" / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    # the replay of epoch 2 from the checkpointed replicas, on the batches the resumed ranks drew
    x, y = make_data(N, 0)
    nets, opts, closures, couplings = [], [], [], []
    for r in range(WORLD):
        net = make_net()
        net.load_state_dict(own[r])
        opt = Parle(net.parameters(), seed=SEED, **HP)
        opt.load_state_dict(replicas[r]["optimizer"])
        coupling = GivenReference()
        opt._couplings = [coupling]
        batches = [(x[idx], y[idx]) for idx in map(torch.tensor, resumed[r]["seen"])]
        nets.append(net), opts.append(opt), couplings.append(coupling)
        closures.append(minibatch_closure(net, F.cross_entropy, batches, opt, epoch_length=4))
    for _ in range(2):
        params = [list(net.parameters()) for net in nets]
        xbar = [sum(ps[i].detach() for ps in params) / WORLD for i in range(len(params[0]))]
        for opt, coupling, closure in zip(opts, couplings, closures):
            coupling.xbar = xbar
            opt.step(closure)
    for r in range(WORLD):
        assert_state_close(resumed[r]["replica"], snapshot(nets[r]))
    assert opts[1]._rng.replica == 1  # rank 1 got its own noise stream back, not rank 0's

    # and the resumed run ends where an uninterrupted two-epoch run ends, replica by replica
    whole = Replica(str(tmp_path / "d"))
    os.makedirs(whole.out)
    trainer(tmp_path, epochs=2).fit(whole, train, val)
    for r in range(WORLD):
        uninterrupted = torch.load(tmp_path / "d" / f"rank{r}.pt", weights_only=False)
        assert_state_close(resumed[r]["replica"], uninterrupted["replica"])


def test_an_uncoupled_optimizer_is_refused(tmp_path):
    with pytest.raises(Exception, match="has no coupling"):
        trainer(tmp_path, epochs=1).fit(Replica(str(tmp_path), opt_cls=EntropySGD), *loaders())


def test_options_are_checked():
    with pytest.raises(ValueError, match="evaluate_on"):
        ReplicaDDPStrategy(evaluate_on="mean")
    with pytest.raises(ValueError, match="end_on_reference"):
        ReplicaDDPStrategy(end_on_reference="yes")
