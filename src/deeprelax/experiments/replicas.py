"""Training with replicas: Elastic-SGD and Parle, one process per replica over ``torch.distributed``.

Launch either with PyTorch's own launcher::

    torchrun --nproc_per_node 3 -m deeprelax train --optimizer parle --resume ...
    deeprelax train --optimizer parle --replicas 3 ...      # starts the ranks through torch.distributed.run

Every rank trains one replica (:class:`ReplicaTrainer`, a :class:`~deeprelax.experiments.train.Trainer`):

* all replicas start from the same initial weights (``seed``); each draws its own minibatch stream, dropout
  masks and Langevin noise from (seed, replica id); with ``shard`` replica a samples only the examples
  a, a + n, a + 2n, … (Parle's ``--frac``);
* the optimizer communicates the mean of the weights once per outer step (see :mod:`deeprelax.optim.elastic`);
* evaluation is on the reference model x̄ — the average of the replicas' parameters *and* BatchNorm buffers,
  then the usual dry feed on the full training set — done by rank 0 and broadcast;
* only rank 0 writes logs, plots, ``result.json`` and the checkpoint; the checkpoint holds every replica's
  trainer state (model, optimizer with its noise generator and scoping counters, sampler, RNG streams) keyed
  by replica id, gathered to rank 0 and written atomically. On resume each rank takes the state of its
  replica id, so a restarted group (``torchrun --max-restarts N``, ranks re-assigned) continues exactly;
* effective epochs and gradient evaluations are counted per replica (``grad_evals``) and in total
  (``grad_evals_total``);
* a missing or hung peer ends with a timeout error (``$DEEPRELAX_DIST_TIMEOUT`` seconds, default 300).
"""

from __future__ import annotations

import copy
import os
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import torch

from deeprelax import distributed
from deeprelax.experiments.runfiles import atomic_write_bytes
from deeprelax.experiments.train import (
    CHECKPOINT,
    CheckpointError,
    CheckpointWriteError,
    TrainConfig,
    Trainer,
    TrainResult,
    _derived_seed,
    check_run_folder,
)
from deeprelax.nets.sampler import MinibatchSampler


class ReplicaLaunchError(RuntimeError):
    """Some replica processes of a ``--replicas`` run failed (their own messages say why)."""

    exit_code = 1


class ReplicaTrainer(Trainer):
    """One replica of a parallel run (see the module docstring); ``config.replicas`` = the world size."""

    def __init__(self, config: TrainConfig, out: str | Path | None = None, **kwargs: Any) -> None:
        self.rank, self.world = distributed.rank_and_size()
        if config.replicas != self.world:
            raise ValueError(
                f"config.replicas = {config.replicas} but the process group has {self.world} "
                f"processes; launch with torchrun --nproc_per_node {config.replicas} (or "
                f"deeprelax train --replicas {config.replicas})"
            )
        self.run_dir = Path(out) if out is not None else None
        if self.rank != 0:
            kwargs["progress"] = False
            kwargs["log"] = None
        super().__init__(config, out, **kwargs)
        self.writes_files = self.rank == 0 and self.out is not None  # only rank 0 writes
        # same initial weights everywhere (seeded in Trainer), then streams of this replica's own
        self.x_train_full = self.x_train
        if config.shard and self.world > 1:
            self.x_train = self.x_train[self.rank :: self.world]
            self.y_train = self.y_train[self.rank :: self.world]
        self.sampler = MinibatchSampler(
            len(self.x_train),
            config.batch_size,
            replacement=config.sampling == "replacement",
            seed=_derived_seed(config.seed, 1000 + self.rank),
        )
        self.augment_gen = torch.Generator().manual_seed(_derived_seed(config.seed, 2000 + self.rank))
        torch.manual_seed(_derived_seed(config.seed, 3000 + self.rank))  # dropout masks, Langevin seed
        self.reference = copy.deepcopy(self.model)
        fault = os.environ.get("DEEPRELAX_TEST_KILL_AT")  # "rank:epoch:step", for the restart test only
        if fault and self.run_dir is not None:
            self.on_step = _kill_once(self.run_dir, self.rank, *map(int, fault.split(":")))

    # -- the step: a non-finite loss on any replica stops every replica ------------------------------------
    def outer_step(self) -> bool:
        return distributed.all_true(super().outer_step())

    # -- evaluation of the reference model -----------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        names = [k for k, v in self.model.state_dict().items() if v.is_floating_point()]
        state = self.model.state_dict()
        averaged = distributed.mean([state[k] for k in names])
        result: tuple[float, float] | None = None
        if self.rank == 0:
            ref_state = self.reference.state_dict()
            for k, v in zip(names, averaged):
                ref_state[k].copy_(v)
            model, x_train = self.model, self.x_train
            self.model, self.x_train = self.reference, self.x_train_full
            try:
                result = super().evaluate()
            finally:
                self.model, self.x_train = model, x_train
        return distributed.broadcast_object(result)

    def _record_extras(self) -> dict[str, Any]:
        losses = distributed.gather_objects(float(self._loss_sum) / self.steps_per_epoch)
        extras: dict[str, Any] = {"replicas": self.world, "grad_evals_total": self.grad_evals * self.world}
        if losses is not None:
            extras["train_loss_replicas"] = losses
        return distributed.broadcast_object(extras)

    # -- checkpoints: every replica's state, keyed by replica id, written by rank 0 --------------------------
    def save_checkpoint(self) -> None:
        states = distributed.gather_objects(self.state_dict())
        if self.writes_files and states is not None:
            bundle = {
                "replicas": {r: s for r, s in enumerate(states)},
                "world_size": self.world,
                "config": self.config.to_dict(),
                "epoch": self.epoch,
            }
            path = self._dir / CHECKPOINT
            try:
                atomic_write_bytes(path, lambda f: torch.save(bundle, f))
            except OSError as exc:
                kept = (
                    f"the previous checkpoint (epoch {self.epoch - 1}) was kept"
                    if path.exists()
                    else "no earlier checkpoint exists"
                )
                msg = f"could not write the checkpoint of epoch {self.epoch} ({exc.strerror or exc}); {kept}"
                raise CheckpointWriteError(exc.errno or 0, msg, str(path)) from exc
        distributed.barrier()

    def load_checkpoint(self, *, allow_env_change: bool = False) -> bool:
        """Take this replica's state (by replica id = rank) from the replicas' checkpoint."""
        if self.run_dir is None or not (self.run_dir / CHECKPOINT).exists():
            return False
        path = self.run_dir / CHECKPOINT
        try:
            bundle = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(
                f"{path} is truncated or corrupt ({type(exc).__name__}); it was left untouched"
            ) from exc
        if not isinstance(bundle, dict) or "replicas" not in bundle:
            raise CheckpointError(
                f"{path} is not a checkpoint of a run with replicas; it cannot resume a "
                f"run with {self.world} replicas"
            )
        if int(bundle["world_size"]) != self.world:
            raise ValueError(f"{path} holds {bundle['world_size']} replicas, this run has {self.world}")
        self.load_state_dict(
            bundle["replicas"][self.rank],
            allow_env_change=allow_env_change,
            source=f"{path} (replica {self.rank})",
        )
        return True

    def run(
        self, *, resume: bool = False, overwrite: bool = False, allow_env_change: bool = False
    ) -> TrainResult:
        # a group restarted by torchrun continues from the last checkpoint
        resume = (resume or int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0) and not overwrite
        if self.run_dir is not None:  # the same read-only check on every rank, before any collective
            check_run_folder(self.run_dir, resume=resume, overwrite=overwrite)
        distributed.barrier()
        return super().run(resume=resume, overwrite=overwrite, allow_env_change=allow_env_change)


def _kill_once(run_dir: Path, rank: int, at_rank: int, at_epoch: int, at_step: int) -> Any:
    """An ``on_step`` hook that SIGKILLs this process once at (rank, epoch, step) — a crash, for tests."""
    import signal

    marker = run_dir / f".killed-rank{at_rank}"

    def hook(trainer: Trainer, epoch: int, step: int) -> None:
        if (rank, epoch, step) == (at_rank, at_epoch, at_step) and not marker.exists():
            marker.write_text("killed\n")
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(argv: list[str], nproc: int, *, max_restarts: int = 0) -> int:
    """Run ``python -m deeprelax <argv>`` as ``nproc`` ranks on this machine via ``torch.distributed.run``'s
    launcher API (the same agent as ``torchrun --standalone``); returns 0 when every rank succeeded."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint=f"127.0.0.1:{free_port()}",
        max_restarts=max_restarts,
        monitor_interval=0.2,
    )
    try:
        elastic_launch(config, sys.executable)("-m", "deeprelax", *argv)
    except ChildFailedError as exc:
        failures = exc.failures
        first = failures[min(failures)]
        msg = (
            f"{len(failures)} of {nproc} replica processes failed (first: rank {first.local_rank}, "
            f"exit code {first.exitcode}); see their messages above"
        )
        raise ReplicaLaunchError(msg) from None
    return 0
