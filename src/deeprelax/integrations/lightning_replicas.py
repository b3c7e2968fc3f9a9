r"""Parle and Elastic-SGD under Lightning: one replica per process, coupled only through the optimizer.

Lightning's ``DDPStrategy`` wraps the module in ``DistributedDataParallel``, which averages the gradients
in every backward pass — right for data parallelism, wrong for Parle and Elastic-SGD, whose replicas x_a
keep **independent** gradients and communicate only the mean of their weights, x̄ (one all-reduce per
outer step, done by the optimizer itself on the default process group). :class:`ReplicaDDPStrategy` is
``DDPStrategy`` without the wrapper; everything else of Lightning's DDP is kept — the launchers
(``start_method="popen" | "spawn" | "fork"``, ``torchrun``, SLURM, …), the process group (gloo on CPU,
NCCL on GPU), the ``DistributedSampler`` (each replica sees its own 1/n of the data, Parle's ``--frac``
sharding; ``use_distributed_sampler=False`` gives every replica all of it, in its own order), the
synchronisation of logged metrics (``sync_dist=True``). What it does differently:

* **no gradient averaging**: the module is not wrapped, so each replica's ``manual_backward`` leaves its
  own gradients; the coupling ρ_t (x_a − x̄) is the optimizer's;
* **one starting point**: rank 0's parameters and buffers are broadcast to every rank at set-up (as DDP
  does), so the replicas start together and separate under their own data and noise;
* **evaluation on the reference** (``evaluate_on="reference"``, the default): during validation, test and
  predict every rank holds x̄ — the mean of the replicas' parameters and floating-point buffers (BatchNorm
  running statistics included) — and its own replica is put back afterwards; with a sharded validation set
  and ``sync_dist=True`` the metric is the reference model's on the whole set. ``evaluate_on="replica"``
  evaluates each rank's own replica;
* **the reference at the end** (``end_on_reference=True``): after ``fit`` every rank's module holds x̄, the
  model Parle delivers (with the spawn/fork launchers, rank 0's module is what comes back to the main
  process);
* **checkpoints**: the ``state_dict`` saved is the reference x̄ (what was evaluated, so a monitored
  ``ModelCheckpoint`` keeps weights that match its score); each replica's own weights and optimizer state
  are saved with it, keyed by global rank, and a resume with the same number of processes puts every
  replica back where it was (x_a, momentum, noise generator, scoping counters). Saving is collective, as
  Lightning requires of ``trainer.save_checkpoint`` anyway (call it on every rank).

The optimizer must be a coupled one (:class:`~deeprelax.optim.Parle`, :class:`~deeprelax.optim.ElasticSGD`):
with an uncoupled optimizer the processes would be n unrelated runs, which is refused.

Usage (the module is the :class:`~deeprelax.integrations.lightning.RelaxationStep` one, with Parle)::

    from deeprelax.integrations.lightning import ReplicaDDPStrategy

    trainer = L.Trainer(accelerator="cpu", devices=3, strategy=ReplicaDDPStrategy(), max_epochs=10)
    trainer.fit(Classifier(net), train_loader, val_loader)

Effective epochs and gradient evaluations logged by ``RelaxationStep`` are per replica (an epoch is one
pass over the replica's shard).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from lightning.fabric.utilities.optimizer import _optimizers_to_device
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor

from deeprelax import distributed

__all__ = ["ReplicaDDPStrategy"]

EvaluateOn = Literal["reference", "replica"]
_KEY = "deeprelax_replicas"


def _model_tensors(module: torch.nn.Module) -> list[Tensor]:
    """The tensors the reference averages: every parameter and every floating-point buffer."""
    return [p for p in module.parameters()] + [b for b in module.buffers() if b.is_floating_point()]


class ReplicaDDPStrategy(DDPStrategy):
    """``DDPStrategy`` without ``DistributedDataParallel``: independent replicas, coupled by the optimizer.

    Args:
        evaluate_on: ``"reference"`` (default): validate / test / predict on the replicas' mean x̄;
            ``"replica"``: on each rank's own replica.
        end_on_reference: leave x̄ in the module after ``fit`` (default ``True``).
        accelerator, parallel_devices, cluster_environment, checkpoint_io, precision_plugin,
            process_group_backend, timeout, start_method: as ``lightning.pytorch.strategies.DDPStrategy``
            (``DistributedDataParallel``'s own options do not apply and are not accepted).
    """

    strategy_name = "replica_ddp"

    def __init__(
        self,
        *,
        evaluate_on: EvaluateOn = "reference",
        end_on_reference: bool = True,
        accelerator: Any = None,
        parallel_devices: list[torch.device] | None = None,
        cluster_environment: Any = None,
        checkpoint_io: Any = None,
        precision_plugin: Any = None,
        process_group_backend: str | None = None,
        timeout: Any = None,
        start_method: Literal["popen", "spawn", "fork", "forkserver"] = "popen",
    ) -> None:
        if evaluate_on not in ("reference", "replica"):
            raise ValueError(f"evaluate_on must be 'reference' or 'replica', got {evaluate_on!r}")
        if not isinstance(end_on_reference, bool):
            raise ValueError(f"end_on_reference must be True or False, got {end_on_reference!r}")
        extra = {} if timeout is None else {"timeout": timeout}
        super().__init__(
            accelerator=accelerator,
            parallel_devices=parallel_devices,
            cluster_environment=cluster_environment,
            checkpoint_io=checkpoint_io,
            precision_plugin=precision_plugin,
            process_group_backend=process_group_backend,
            start_method=start_method,
            **extra,
        )
        self.evaluate_on: EvaluateOn = evaluate_on
        self.end_on_reference = end_on_reference
        self._own: list[Tensor] | None = None
        self._own_state: dict[str, Any] | None = None

    # -- set-up: no wrapper, one starting point, a coupled optimizer -----------------------------------
    def configure_ddp(self) -> None:
        """Instead of wrapping the module: broadcast rank 0's parameters and buffers to every rank."""
        assert self.model is not None
        for t in [*self.model.parameters(), *self.model.buffers()]:
            if distributed.is_distributed():
                torch.distributed.broadcast(t.data, src=0)

    def setup(self, trainer: Any) -> None:
        super().setup(trainer)
        if trainer.state.fn != "fit":
            return
        for opt in self.optimizers:
            raw = getattr(opt, "optimizer", opt)
            if not getattr(raw, "_couplings", None):
                raise TypeError(
                    f"ReplicaDDPStrategy trains one replica per process, coupled only by the optimizer: "
                    f"{type(raw).__name__} has no coupling, so the processes would be unrelated runs. Use "
                    "deeprelax.optim.Parle or ElasticSGD (for data-parallel training with averaged "
                    "gradients, Lightning's own strategy='ddp')"
                )

    # -- the reference x̄ ----------------------------------------------------------------------------------
    def _swap_in_reference(self) -> None:
        module = self.lightning_module
        assert module is not None
        tensors = _model_tensors(module)
        self._own = [t.detach().clone() for t in tensors]
        self._own_state = {
            k: v.clone() if isinstance(v, Tensor) else v for k, v in module.state_dict().items()
        }
        with torch.no_grad():
            for t, m in zip(tensors, distributed.mean(tensors)):
                t.copy_(m)

    def _restore_own(self) -> None:
        if self._own is None:
            return
        module = self.lightning_module
        assert module is not None
        with torch.no_grad():
            for t, own in zip(_model_tensors(module), self._own):
                t.copy_(own)
        self._own = self._own_state = None

    def reference_state_dict(self) -> dict[str, Any]:
        """The module's ``state_dict`` with x̄ (mean over the replicas) in place of this replica's values.

        Collective: every rank must call it.
        """
        module = self.lightning_module
        assert module is not None
        state = module.state_dict()
        names = [k for k, v in state.items() if isinstance(v, Tensor) and v.is_floating_point()]
        means = distributed.mean([state[k] for k in names])
        return {**state, **{k: m.clone() for k, m in zip(names, means)}}

    def _evaluation_start(self) -> None:
        if self.evaluate_on == "reference" and self._own is None:
            self._swap_in_reference()

    def on_validation_start(self) -> None:
        super().on_validation_start()
        self._evaluation_start()

    def on_validation_end(self) -> None:
        self._restore_own()
        super().on_validation_end()

    def on_test_start(self) -> None:
        super().on_test_start()
        self._evaluation_start()

    def on_test_end(self) -> None:
        self._restore_own()
        super().on_test_end()

    def on_predict_start(self) -> None:
        super().on_predict_start()
        self._evaluation_start()

    def on_predict_end(self) -> None:
        self._restore_own()
        super().on_predict_end()

    def on_train_end(self) -> None:
        super().on_train_end()
        if self.end_on_reference:
            self._restore_own()
            self._swap_in_reference()
            self._own = self._own_state = None  # the reference stays

    # -- checkpoints: x̄ as the state_dict, every replica alongside it ---------------------------------------
    def lightning_module_state_dict(self) -> dict[str, Any]:
        return self.reference_state_dict()

    def optimizer_state(self, optimizer: Any) -> dict[str, Any]:
        """This replica's optimizer state, and (on rank 0) every replica's, with their weights, by rank."""
        own = super().optimizer_state(optimizer)
        module = self.lightning_module
        assert module is not None
        # this replica's weights, also while the reference is swapped in (a checkpoint saved at validation)
        weights = self._own_state if self._own_state is not None else module.state_dict()
        mine = {"optimizer": own, "module": weights}
        everyone = distributed.gather_objects(mine, dst=0)
        return {**own, _KEY: everyone} if everyone is not None else own

    def load_optimizer_state_dict(self, checkpoint: Mapping[str, Any]) -> None:
        """Put every replica back: its own weights and optimizer state from the checkpoint, by rank."""
        rank, size = distributed.rank_and_size()
        module = self.lightning_module
        assert module is not None
        for optimizer, state in zip(self.optimizers, checkpoint["optimizer_states"]):
            replicas = state.get(_KEY)
            if replicas is None:  # written by another strategy: rank 0's state for everyone
                optimizer.load_state_dict(state)
                continue
            if len(replicas) != size:
                raise ValueError(
                    f"the checkpoint holds {len(replicas)} replicas but the run has {size} processes: resume "
                    "with the same number of devices × nodes"
                )
            optimizer.load_state_dict(replicas[rank]["optimizer"])
            module.load_state_dict(replicas[rank]["module"])
        _optimizers_to_device(self.optimizers, self.root_device)
