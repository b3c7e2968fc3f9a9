"""The training harness: any network of :mod:`deeprelax.nets` with any optimizer of the registry.

One *epoch* is ``steps_per_epoch`` outer steps (default ⌈N_train / batch⌉, as the authors' loops). An outer
step of a relaxation optimizer calls the closure L + 1 times, each on a fresh minibatch; SGD calls it once.
The harness counts the closure calls (true gradient evaluations) and reports both

    effective epochs  = epochs × max(L, 1)                 (the paper's Table-1 unit)
    gradient epochs   = closure calls × batch / N_train    (the true number of passes over the data)

Each epoch: set the outer learning rate from the schedule (piecewise constant, ``{epoch: lr}``), run the
outer steps, re-estimate the BatchNorm statistics on training data ("dry feed"), evaluate on the test split,
append a record to ``log.jsonl`` / ``log.csv``, and atomically write ``checkpoint.pt`` (temporary file, fsync,
``os.replace``; every other run file too). The output folder is locked for the whole run (``OUT/.lock``), a
folder holding an earlier run is refused unless ``resume`` or ``overwrite``, and ``result.json`` records the
environment (torch version, threads, CPU capability) that bit-exact reproduction needs; see
``docs/reliability.md``. The checkpoint holds the model, the optimizer state (all its buffers and the scoping
counter), the sampler, the RNG states of torch (CPU and CUDA), numpy and ``random``, the counters and the
history, so :meth:`Trainer.run` with ``resume=True`` continues exactly where an uninterrupted run would be.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import pickle
import random
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from deeprelax.experiments.runfiles import (
    RUN_FILES,
    RunLock,
    RunLockedError,
    atomic_savefig,
    atomic_write_bytes,
    atomic_write_text,
    environment,
    environment_changes,
)
from deeprelax.nets import MODEL_INPUT_SHAPES, count_parameters, create_model
from deeprelax.nets.augment import random_crop_flip
from deeprelax.nets.batchnorm import refresh_batchnorm
from deeprelax.nets.datasets import IMAGE_SHAPES, ImageDataset, load_dataset
from deeprelax.nets.sampler import MinibatchSampler
from deeprelax.optim import OPTIMIZERS, REGISTRY, create_optimizer, inner_steps
from deeprelax.optim import get as get_optimizer

__all__ = [
    "CHECKPOINT",
    "CheckpointError",
    "CheckpointWriteError",
    "NonFiniteLossError",
    "RunLockedError",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "atomic_write_bytes",
    "atomic_write_text",
    "build_model_and_optimizer",
    "check_run_folder",
    "parse_lr_schedule",
    "train",
]

CHECKPOINT = "checkpoint.pt"
_UNTOUCHED = (
    "it was left untouched: restore it from a backup, or pass --overwrite (overwrite=True) to "
    "delete it and start the run over"
)
SAMPLINGS = ("replacement", "shuffle")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite (the command line reports it as "stopped", exit 1)."""

    exit_code = 1
    verb = "stopped"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded (corrupt, refused, or not this run's); the message names it."""


class CheckpointWriteError(OSError):
    """Writing the checkpoint failed (e.g. the disk is full); the previous checkpoint is kept."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (JSON-serialisable; see ``docs/training.md``)."""

    model: str = "lenet"
    model_options: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "sgd"
    hparams: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    lr_schedule: dict[int, float] | None = None
    batch_size: int = 128
    sampling: str = "replacement"
    steps_per_epoch: int | None = None
    data: str = "mnist-subset"
    data_dir: str | None = None
    n_train: int | None = None
    n_test: int | None = None
    augment: bool = False
    dry_feed_batches: int | None = None
    eval_batch_size: int = 1000
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    replicas: int = 1
    shard: bool = False

    def __post_init__(self) -> None:
        if self.lr_schedule is not None:
            self.lr_schedule = _schedule_from(self.lr_schedule)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field (types too: ``"epochs": true`` is not an
        integer, ``"hparams": null`` not a mapping)."""
        for name in ("model", "optimizer", "data", "sampling", "device"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, got {getattr(self, name)!r}")
        for name in ("model_options", "hparams"):
            v = getattr(self, name)
            if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
                raise ValueError(f"{name} must be a mapping of names to values, got {v!r}")
        if self.model not in MODEL_INPUT_SHAPES:
            raise ValueError(f"model must be one of {sorted(MODEL_INPUT_SHAPES)}, got {self.model!r}")
        key = self.optimizer.lower().replace("_", "-")
        if key not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}")
        accepted = optimizer_hparam_names(key)
        unknown = sorted(set(self.hparams) - accepted)
        if unknown:
            raise ValueError(
                f"hparams: optimizer {self.optimizer!r} takes no hyperparameter(s) "
                f"{', '.join(unknown)}; it takes {', '.join(sorted(accepted))}"
            )
        if self.data not in IMAGE_SHAPES:
            raise ValueError(f"data must be one of {sorted(IMAGE_SHAPES)}, got {self.data!r}")
        if IMAGE_SHAPES[self.data] != MODEL_INPUT_SHAPES[self.model]:
            raise ValueError(
                f"data {self.data!r} (images {IMAGE_SHAPES[self.data]}) does not fit model "
                f"{self.model!r} (input {MODEL_INPUT_SHAPES[self.model]})"
            )
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("steps_per_epoch", "n_train", "n_test", "dry_feed_batches", "threads"):
            v = getattr(self, name)
            if v is not None and (not _is_int(v) or v < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {v!r}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.lr_schedule is not None:
            for k, v in self.lr_schedule.items():
                if k < 0 or not math.isfinite(v) or v < 0:
                    raise ValueError(f"lr_schedule needs epoch >= 0 and finite lr >= 0, got {k}: {v}")
        if not _is_int(self.replicas) or self.replicas < 1:
            raise ValueError(f"replicas must be a positive integer, got {self.replicas!r}")
        if self.replicas > 1 and not get_optimizer(self.optimizer).parallel:
            parallel = sorted(k for k, v in REGISTRY.items() if v.parallel)
            raise ValueError(
                f"replicas > 1 needs a parallel optimizer ({', '.join(parallel)}), got {self.optimizer!r}"
            )
        if not isinstance(self.shard, bool):
            raise ValueError(f"shard must be true or false, got {self.shard!r}")
        if not _is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be an integer in [0, 2**63), got {self.seed!r}")
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise ValueError(f"data_dir must be a folder name or None, got {self.data_dir!r}")
        if not isinstance(self.augment, bool):
            raise ValueError(f"augment must be true or false, got {self.augment!r}")
        if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be 'cpu', 'cuda[:k]' or 'mps', got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.lr_schedule is not None:
            d["lr_schedule"] = {str(k): v for k, v in sorted(self.lr_schedule.items())}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        if not isinstance(d, dict):
            raise ValueError(
                f"a training config is a JSON object (a mapping of keys to values), got "
                f"{type(d).__name__} {d!r:.60}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(map(str, set(d) - known))
        if unknown:
            raise ValueError(f"unknown training-config keys {unknown}; known keys: {sorted(known)}")
        return cls(**d)

    def lr_at(self, epoch: int, base: float) -> float:
        """The outer learning rate during ``epoch`` (0-based): the schedule's value for the largest key
        ``<= epoch``, or ``base`` before the first key."""
        if not self.lr_schedule:
            return base
        keys = [k for k in self.lr_schedule if k <= epoch]
        return self.lr_schedule[max(keys)] if keys else base


def parse_lr_schedule(text: str) -> dict[int, float]:
    """``"0:1,2:0.1,4:0.01"`` → ``{0: 1.0, 2: 0.1, 4: 0.01}`` (epoch indices are 0-based; an epoch given
    twice is an error)."""
    out: dict[int, float] = {}
    for item in text.replace(" ", "").split(","):
        if not item:
            continue
        try:
            k, v = item.split(":")
            epoch, lr = int(k), float(v)
        except ValueError as exc:
            raise ValueError(
                f"lr schedule entries are EPOCH:LR pairs separated by commas, got {item!r}"
            ) from exc
        if epoch in out:
            raise ValueError(f"lr schedule: epoch {epoch} is given twice ({out[epoch]:g} and {lr:g})")
        out[epoch] = lr
    return out


def _schedule_from(schedule: Any) -> dict[int, float]:
    """A config's ``lr_schedule`` (JSON keys are strings) as ``{epoch: lr}``; keys that name the same epoch
    ("1" and "01") and values that are not numbers are errors."""
    if not isinstance(schedule, dict):
        raise ValueError(f"lr_schedule must be a mapping {{epoch: lr}}, got {schedule!r}")
    out: dict[int, float] = {}
    for k, v in schedule.items():
        try:
            epoch = int(k)
        except (TypeError, ValueError):
            raise ValueError(f"lr_schedule keys are epoch numbers, got {k!r}") from None
        if isinstance(k, (bool, float)) or isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"lr_schedule entries are epoch: lr numbers, got {k!r}: {v!r}")
        if epoch in out:
            raise ValueError(f"lr_schedule: epoch {epoch} is given twice")
        out[epoch] = float(v)
    return out


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def optimizer_hparam_names(name: str) -> set[str]:
    """The keyword arguments (hyperparameters) the registered optimizer ``name`` accepts (the registry's)."""
    return set(get_optimizer(name).keywords) - {"process_group"}


@dataclass
class TrainResult:
    config: dict[str, Any]
    history: list[dict[str, Any]]
    n_params: int
    L: int
    out: str | None
    n_train: int = 0
    environment: dict[str, Any] | None = None

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1]

    @property
    def best(self) -> dict[str, Any]:
        return min(self.history, key=lambda r: (r["test_error"], r["epoch"]))

    def summary(self) -> dict[str, Any]:
        f, b = self.final, self.best
        c = self.config
        return {
            "model": c["model"],
            "optimizer": c["optimizer"],
            "data": c["data"],
            "seed": c["seed"],
            "n_train": self.n_train,
            "L": self.L,
            "n_params": self.n_params,
            "epochs": f["epoch"],
            "effective_epochs": f["effective_epochs"],
            "grad_evals": f["grad_evals"],
            "grad_epochs": f["grad_epochs"],
            "final_error": f["test_error"],
            "best_error": b["test_error"],
            "best_effective_epochs": b["effective_epochs"],
            "final_train_loss": f["train_loss"],
            "wall_time": f["wall_time"],
            **({"environment": self.environment} if self.environment else {}),
        }


def _rng_states(device: torch.device) -> dict[str, Any]:
    np_state = cast(tuple, np.random.get_state())  # noqa: NPY002 (the legacy global RNG is what we save)
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(_py, np_state[2:])],
        "python": random.getstate(),
    }
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _set_rng_states(states: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))  # noqa: NPY002
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])


class Trainer:
    """Train ``config.model`` with ``config.optimizer``; see the module docstring.

    Args:
        config: the run.
        out: folder for logs, checkpoint and plot (``None``: keep everything in memory, no checkpoint).
        dataset: an already loaded data set (otherwise ``config.data`` is loaded).
        progress: show a tqdm progress bar.
        on_step: ``on_step(trainer, epoch, step)`` after every outer step (0-based; tests use it).
        log: where one-line epoch summaries go (``None``: silent).
        lock: a :class:`~deeprelax.experiments.runfiles.RunLock` on ``out`` that the caller holds already
            (otherwise :meth:`run` takes one).

    Files: every write into ``out`` goes through the ``_write_*`` / ``save_checkpoint`` / ``plot`` methods
    below and only when :attr:`writes_files` is true (a multi-replica run sets it on rank 0 only).
    """

    def __init__(
        self,
        config: TrainConfig,
        out: str | Path | None = None,
        *,
        dataset: ImageDataset | None = None,
        progress: bool = True,
        on_step: Callable[[Trainer, int, int], None] | None = None,
        log: Callable[[str], None] | None = print,
        lock: RunLock | None = None,
    ) -> None:
        self.config = config
        self.out = Path(out) if out is not None else None
        self.progress, self.on_step, self.log = progress, on_step, log
        self.writes_files = self.out is not None
        self._lock = lock  # a lock on ``out`` the caller already holds (see :func:`train`)
        self.device = _available_device(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        if dataset is None:
            dataset = load_dataset(config.data, config.data_dir, progress=progress)
        if config.n_train or config.n_test:
            dataset = dataset.subset(config.n_train, config.n_test)
        self.data = dataset
        self.x_train = dataset.x_train.to(self.device)
        self.y_train = dataset.y_train.to(self.device)
        self.x_test = dataset.x_test.to(self.device)
        self.y_test = dataset.y_test.to(self.device)
        self.n_train = len(self.x_train)

        self._seed_everything(config.seed)
        self.model, self.optimizer = build_model_and_optimizer(config, self.device)
        self.L = inner_steps(self.optimizer)
        self.base_lr = float(self.optimizer.param_groups[0]["lr"])
        self.sampler = MinibatchSampler(
            self.n_train,
            config.batch_size,
            replacement=config.sampling == "replacement",
            seed=_derived_seed(config.seed, 1),
        )
        self.augment_gen = torch.Generator().manual_seed(_derived_seed(config.seed, 2))
        self.steps_per_epoch = config.steps_per_epoch or math.ceil(self.n_train / config.batch_size)
        self.epoch = 0  # epochs completed
        self.grad_evals = 0  # closure calls so far
        self.wall_time = 0.0  # seconds spent in completed epochs
        self.history: list[dict[str, Any]] = []
        self.environment = environment(config.device)
        self.environment_changes: list[dict[str, Any]] = []  # resumes that changed the environment
        self._calls_in_step = 0
        self.reset_epoch_stats()

    @property
    def _dir(self) -> Path:
        """The output folder of a trainer that writes files."""
        if self.out is None:
            raise RuntimeError("this trainer has no output folder")
        return self.out

    # -- set-up -------------------------------------------------------------------------------------------
    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002 (seed the legacy global RNG, for user code)
        torch.manual_seed(seed)

    # -- the closure and one outer step ----------------------------------------------------------------
    def reset_epoch_stats(self) -> None:
        """Zero the running sums of the anchor losses and errors that make the epoch's training loss."""
        self._loss_sum = torch.zeros((), device=self.device)
        self._err_sum = torch.zeros((), device=self.device, dtype=torch.long)
        self._seen = 0
        self._finite = torch.ones((), dtype=torch.bool, device=self.device)

    def outer_step(self) -> bool:
        """One optimizer step (L + 1 closure calls); False if any of its losses was NaN or infinite."""
        self._finite = torch.ones((), dtype=torch.bool, device=self.device)
        self._calls_in_step = 0
        # torch types the closure as returning float; ours returns the loss tensor, as LBFGS's do
        self.optimizer.step(cast(Callable[[], float], self.closure))
        return bool(self._finite)  # one device synchronisation per outer step

    def _batch(self) -> tuple[Tensor, Tensor]:
        idx = self.sampler.next().to(self.device)
        xb, yb = self.x_train[idx], self.y_train[idx]
        if self.config.augment:
            xb = random_crop_flip(xb, self.augment_gen)
        return xb, yb

    def closure(self) -> Tensor:
        """Draw a fresh minibatch, zero the gradients, compute the loss, backpropagate, return the loss."""
        xb, yb = self._batch()
        self.optimizer.zero_grad(set_to_none=True)
        out = self.model(xb)
        loss = F.cross_entropy(out, yb)
        loss.backward()
        loss = loss.detach()
        self.grad_evals += 1
        self._finite &= torch.isfinite(loss)
        if self._calls_in_step == 0:  # the anchor evaluation: this is the training loss we log
            self._loss_sum += loss
            self._err_sum += (out.detach().argmax(1) != yb).sum()
            self._seen += len(yb)
        self._calls_in_step += 1
        return loss

    # -- evaluation ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Dry-feed the BatchNorm statistics, then (test loss, test error in %)."""
        refresh_batchnorm(
            self.model,
            self.x_train,
            batch_size=self.config.batch_size,
            max_batches=self.config.dry_feed_batches,
        )
        self.model.eval()
        loss, wrong = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        bs = self.config.eval_batch_size
        for i in range(0, len(self.x_test), bs):
            out = self.model(self.x_test[i : i + bs])
            yb = self.y_test[i : i + bs]
            loss += F.cross_entropy(out, yb, reduction="sum")
            wrong += (out.argmax(1) != yb).sum()
        self.model.train()
        n = len(self.x_test)
        return float(loss) / n, 100.0 * float(wrong) / n

    # -- checkpoints --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "grad_evals": self.grad_evals,
            "wall_time": self.wall_time,
            "history": self.history,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.state_dict(),
            "augment_gen": self.augment_gen.get_state(),
            "rng": _rng_states(self.device),
            "environment": self.environment,
            "environment_changes": self.environment_changes,
        }

    def load_state_dict(
        self, state: dict[str, Any], *, allow_env_change: bool = False, source: str = "the checkpoint"
    ) -> None:
        """Restore a :meth:`state_dict`. A checkpoint written for another configuration raises
        ``ValueError``; one written under another torch version, thread count, CPU capability or device
        (which make the continuation differ from an uninterrupted run) raises ``ValueError`` too unless
        ``allow_env_change``, which logs a warning and records the change in the result."""
        missing = [
            k
            for k in (
                "config",
                "epoch",
                "grad_evals",
                "wall_time",
                "history",
                "model",
                "optimizer",
                "sampler",
                "augment_gen",
                "rng",
            )
            if k not in state
        ]
        if missing:
            raise CheckpointError(
                f"{source} is not a deeprelax training checkpoint (it lacks {', '.join(missing)})"
            )
        self._check_compatible(state["config"])
        finished = isinstance(state["epoch"], int) and state["epoch"] >= self.config.epochs
        # a finished run trains no further: the environment cannot change its numbers
        changes = {} if finished else environment_changes(state.get("environment"), self.environment)
        if not finished and "environment" not in state and self.log:
            self.log(
                f"WARNING: {source} records no environment (written by an older deeprelax): a resume "
                f"is bit-exact only with the torch version, threads and CPU of the original run"
            )
        if changes:
            what = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())
            if not allow_env_change:
                hint = (
                    f"--threads {changes['threads'][0]}"
                    if "threads" in changes
                    else "the original machine, torch and device"
                )
                raise ValueError(
                    f"cannot resume exactly: {source} was written with {what}, and the continuation would "
                    f"not be bit-identical to an uninterrupted run; resume with {hint}, or pass "
                    f"--allow-env-change (allow_env_change=True) to continue anyway (recorded in "
                    f"result.json)"
                )
            if self.log:
                self.log(
                    f"WARNING: resuming with a changed environment ({what}): the numbers from epoch "
                    f"{int(state['epoch']) + 1} on are not bit-identical to an uninterrupted run"
                )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.sampler.load_state_dict(state["sampler"])
            self.augment_gen.set_state(state["augment_gen"])
            _set_rng_states(state["rng"], self.device)
            self.epoch, self.grad_evals = int(state["epoch"]), int(state["grad_evals"])
            self.wall_time, self.history = float(state["wall_time"]), list(state["history"])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{source} does not fit this run ({type(exc).__name__}: {_first_line(exc)})"
            ) from exc
        self.environment_changes = list(state.get("environment_changes", []))
        if changes:
            self.environment_changes.append(
                {"after_epoch": self.epoch, "changed": {k: list(v) for k, v in changes.items()}}
            )

    def _check_compatible(self, saved: dict[str, Any]) -> None:
        now = self.config.to_dict()
        may_change = {"epochs", "device", "threads", "data_dir", "eval_batch_size"}
        if not isinstance(saved, dict):
            raise CheckpointError(f"the checkpoint's config is not a mapping: {saved!r:.80}")
        # a checkpoint of an older release lacks the newer fields: they had their defaults then
        defaults = TrainConfig.__dataclass_fields__
        saved = {
            **{k: f.default for k, f in defaults.items() if k not in saved and k in ("replicas", "shard")},
            **saved,
        }
        diff = [k for k in now if k not in may_change and now[k] != saved.get(k)]
        if diff:
            details = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {now[k]!r}" for k in diff)
            raise ValueError(f"cannot resume: the checkpoint was written for a different run ({details})")

    def save_checkpoint(self) -> None:
        """Atomically replace ``out/checkpoint.pt``; on failure (e.g. a full disk) the previous checkpoint is
        kept and :class:`CheckpointWriteError` says so."""
        if not self.writes_files:
            return
        state = self.state_dict()
        path = self._dir / CHECKPOINT
        try:
            atomic_write_bytes(path, lambda f: torch.save(state, f))
        except OSError as exc:
            kept = (
                f"the previous checkpoint (epoch {self.epoch - 1}) was kept"
                if path.exists()
                else "no earlier checkpoint exists"
            )
            raise CheckpointWriteError(
                exc.errno or 0,
                f"could not write the checkpoint of epoch {self.epoch} ({exc.strerror or exc}); {kept}",
                str(path),
            ) from exc

    def load_checkpoint(self, *, allow_env_change: bool = False) -> bool:
        """Restore from ``out/checkpoint.pt``; False if there is none. An unreadable checkpoint (truncated,
        zeroed, random or empty) or one holding objects other than tensors and plain containers
        (``weights_only`` loading: a pickle that would run code is refused) raises :class:`CheckpointError`
        naming the file, which is left untouched."""
        if self.out is None or not (self.out / CHECKPOINT).exists():
            return False
        path = self.out / CHECKPOINT
        # on CPU: RNG and generator states must be CPU tensors; model and optimizer state are copied to
        # their parameters' device by load_state_dict
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "weights only" in str(exc).lower():
                raise CheckpointError(
                    f"refusing to load {path}: it holds objects other than tensors and plain containers, "
                    f"which a deeprelax checkpoint never does (it may be tampered with); it was not "
                    f"loaded"
                ) from exc
            raise CheckpointError(
                f"{path} is truncated or corrupt ({_first_line(exc)}); {_UNTOUCHED}"
            ) from exc
        except Exception as exc:
            raise CheckpointError(
                f"{path} is truncated or corrupt ({type(exc).__name__}: "
                f"{_first_line(exc) or 'end of file'}); {_UNTOUCHED}"
            ) from exc
        if not isinstance(state, dict):
            raise CheckpointError(
                f"{path} is not a deeprelax training checkpoint (it holds a {type(state).__name__})"
            )
        self.load_state_dict(state, allow_env_change=allow_env_change, source=str(path))
        return True

    # -- files ----------------------------------------------------------------------------------------------
    def _write_logs(self) -> None:
        """``log.jsonl`` and ``log.csv``, both rewritten atomically from the history."""
        if not self.writes_files:
            return
        atomic_write_text(self._dir / "log.jsonl", "".join(json.dumps(r) + "\n" for r in self.history))
        if self.history:
            buf = io.StringIO(newline="")
            w = csv.DictWriter(buf, fieldnames=list(self.history[0]))
            w.writeheader()
            w.writerows(self.history)
            atomic_write_text(self._dir / "log.csv", buf.getvalue())

    def _write_config(self) -> None:
        if self.writes_files:
            atomic_write_text(self._dir / "config.json", json.dumps(self.config.to_dict(), indent=2) + "\n")

    def _write_result(self, result: TrainResult) -> None:
        if self.writes_files:
            self.plot()
            atomic_write_text(self._dir / "result.json", json.dumps(result.summary(), indent=2) + "\n")

    def _prepare_out(self, *, resume: bool, overwrite: bool, allow_env_change: bool) -> None:
        """Check what ``out`` holds (under the lock), resume or clear it, write the config."""
        assert self.out is not None
        ckpt = self.out / CHECKPOINT
        earlier = check_run_folder(self.out, resume=resume, overwrite=overwrite)
        if overwrite:
            for n in earlier:
                (self.out / n).unlink()
            if earlier and self.log:
                self.log(f"--overwrite: removed {', '.join(earlier)} of an earlier run in {self.out}")
        elif ckpt.exists():
            if self.load_checkpoint(allow_env_change=allow_env_change) and self.log:
                self.log(f"resuming {self.out} after epoch {self.epoch}")
            if self.epoch > self.config.epochs:
                raise ValueError(
                    f"cannot resume with epochs = {self.config.epochs}: {ckpt} already holds "
                    f"{self.epoch} epochs; resume with epochs >= {self.epoch} (--epochs), or "
                    f"choose another output folder"
                )
        self._write_config()
        self._write_logs()

    # -- the loop -----------------------------------------------------------------------------------------
    def run(
        self, *, resume: bool = False, overwrite: bool = False, allow_env_change: bool = False
    ) -> TrainResult:
        """Train to ``config.epochs`` epochs.

        Args:
            resume: continue from ``out/checkpoint.pt`` (exactly; see :meth:`load_state_dict`).
            overwrite: delete an earlier run's files in ``out`` (checkpoint included) and start over.
                Without it, a folder holding an earlier run's files is refused (``FileExistsError``).
            allow_env_change: resume even if torch version, threads, CPU capability or device changed.

        ``out`` is locked (:class:`~deeprelax.experiments.runfiles.RunLock`) for the whole run: a second
        run into the same folder raises :class:`~deeprelax.experiments.runfiles.RunLockedError`.
        """
        if resume and overwrite:
            raise ValueError(
                "resume and overwrite exclude each other (--resume continues the run in the "
                "folder, --overwrite deletes it)"
            )
        held = self._lock is not None and self._lock.held
        lock = (
            RunLock(self._dir, what="training run", report=self._report)
            if self.writes_files and not held
            else contextlib.nullcontext()
        )
        with lock:
            if self.writes_files:
                self._prepare_out(resume=resume, overwrite=overwrite, allow_env_change=allow_env_change)
            elif resume:  # a replica that reads the checkpoint but writes nothing
                self.load_checkpoint(allow_env_change=allow_env_change)
            return self._train()

    def _report(self, msg: str) -> None:
        if self.log:
            self.log(f"WARNING: {msg}")
        else:
            warnings.warn(msg, RuntimeWarning, stacklevel=3)

    def _train(self) -> TrainResult:
        from tqdm.auto import tqdm

        cfg = self.config
        total = cfg.epochs * self.steps_per_epoch
        bar = tqdm(
            total=total,
            initial=min(self.epoch, cfg.epochs) * self.steps_per_epoch,
            unit="step",
            desc=f"{cfg.model}/{cfg.optimizer}",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        try:
            while self.epoch < cfg.epochs:
                self._run_epoch(bar)
        finally:
            bar.close()
        result = self.result()
        self._write_result(result)
        return result

    def _run_epoch(self, bar: Any) -> None:
        cfg, epoch = self.config, self.epoch
        lr = cfg.lr_at(epoch, self.base_lr)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.model.train()
        t0 = time.perf_counter()
        self.reset_epoch_stats()
        for step in range(self.steps_per_epoch):
            if not self.outer_step():
                raise NonFiniteLossError(
                    f"non-finite training loss (NaN or Inf) at epoch {epoch + 1}, outer step {step + 1} of "
                    f"{self.steps_per_epoch} ({cfg.model}, {cfg.optimizer}, lr {lr:g}); the last good "
                    f"checkpoint is that of epoch {epoch}. Lower the learning rate or check the data."
                )
            bar.update(1)
            if self.on_step is not None:
                self.on_step(self, epoch, step)
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise NonFiniteLossError(
                f"non-finite weights after epoch {epoch + 1} ({cfg.model}, {cfg.optimizer})"
            )
        test_loss, test_error = self.evaluate()
        self.wall_time += time.perf_counter() - t0
        self.epoch += 1
        record = {
            "epoch": self.epoch,
            "effective_epochs": self.epoch * max(self.L, 1),
            "grad_evals": self.grad_evals,
            "grad_epochs": self.grad_evals * cfg.batch_size / self.n_train,
            "lr": lr,
            "gamma": float(self.optimizer.gammas[0]) if hasattr(self.optimizer, "gammas") else None,
            "train_loss": float(self._loss_sum) / self.steps_per_epoch,
            "train_error": 100.0 * float(self._err_sum) / max(self._seen, 1),
            "test_loss": test_loss,
            "test_error": test_error,
            "wall_time": self.wall_time,
            **self._record_extras(),
        }
        self.history.append(record)
        self.save_checkpoint()
        self._write_logs()
        bar.set_postfix(epoch=self.epoch, err=f"{test_error:.2f}%", refresh=False)
        if self.log:
            self.log(
                f"epoch {self.epoch:3d}  eff. epochs {record['effective_epochs']:4d}  lr {lr:<7.3g} "
                f"train loss {record['train_loss']:.4f}  test error {test_error:6.2f} %  "
                f"({record['wall_time']:.0f} s)"
            )

    def _record_extras(self) -> dict[str, Any]:
        """Extra fields of an epoch's log record (the replica trainer adds its totals)."""
        return {}

    def result(self) -> TrainResult:
        env = dict(self.environment)
        if self.environment_changes:
            env["changes_at_resume"] = self.environment_changes
        return TrainResult(
            self.config.to_dict(),
            list(self.history),
            count_parameters(self.model),
            self.L,
            str(self.out) if self.out is not None else None,
            self.n_train,
            env,
        )

    def plot(self) -> Path | None:
        if self.out is None or not self.history:
            return None
        from deeprelax.experiments.plots import plot_runs

        cfg = self.config
        return atomic_savefig(
            lambda tmp: plot_runs(
                {cfg.optimizer: self.history},
                tmp,
                title=f"{cfg.model} on {cfg.data}: {cfg.optimizer} (seed {cfg.seed})",
            ),
            self.out / "error.png",
        )


def _derived_seed(seed: int, stream: int) -> int:
    """Independent seeds for the sampler and augmentation streams, derived from the run's seed."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0] % 2**63)


def build_model_and_optimizer(
    config: TrainConfig, device: torch.device | str = "cpu"
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The run's network (on ``device``) and its optimizer; invalid options or hyperparameter values raise
    ``ValueError`` naming them."""
    model = create_model(config.model, **config.model_options).to(device)
    try:
        optimizer = create_optimizer(config.optimizer, model.parameters(), **config.hparams)
    except TypeError as exc:  # a value of the wrong type; the names were checked by TrainConfig
        raise ValueError(f"hparams for {config.optimizer}: {exc}") from exc
    return model, optimizer


def check_run_folder(out: str | Path, *, resume: bool, overwrite: bool) -> list[str]:
    """The earlier run's files in ``out`` (run files and checkpoint); ``FileExistsError`` if starting here
    would overwrite them: a checkpoint without ``resume`` or ``overwrite``, or run files without a checkpoint
    unless ``overwrite`` (or ``resume`` of a run killed in its first epoch: only ``config.json`` and an
    empty ``log.jsonl``, nothing to lose)."""
    out = Path(out)
    earlier = [n for n in (*RUN_FILES, CHECKPOINT) if (out / n).exists()]
    if overwrite or not earlier:
        return earlier
    if CHECKPOINT in earlier:
        if not resume:
            raise FileExistsError(
                f"{out / CHECKPOINT} exists: pass resume=True (--resume) to continue that "
                f"run, overwrite=True (--overwrite) to start over, or choose another "
                f"output folder"
            )
        return earlier
    log = out / "log.jsonl"
    died_in_first_epoch = set(earlier) <= {"config.json", "log.jsonl"} and (
        not log.exists() or log.stat().st_size == 0
    )
    if not (resume and died_in_first_epoch):
        raise FileExistsError(
            f"{out} holds files of an earlier run ({', '.join(earlier)}) but no "
            f"{CHECKPOINT} to resume from: pass overwrite=True (--overwrite) to replace "
            f"them, or choose another output folder"
        )
    return earlier


def _available_device(name: str) -> torch.device:
    """``torch.device(name)``, or ``ValueError`` when this machine has no such device."""
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} requested but torch.cuda.is_available() is False (torch "
                f"{torch.__version__}, built {'with' if torch.version.cuda else 'without'} "
                f"CUDA); use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    elif dev.type == "mps" and not (torch.backends.mps.is_built() and torch.backends.mps.is_available()):
        raise ValueError(
            f"device {name!r} requested but torch.backends.mps.is_available() is False; use --device cpu"
        )
    return dev


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""


def train(
    config: TrainConfig,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    allow_env_change: bool = False,
    **kwargs: Any,
) -> TrainResult:
    """``Trainer(config, out, **kwargs).run(resume=..., overwrite=..., allow_env_change=...)``, with ``out``
    locked and checked *before* the data are loaded, so a locked or occupied folder is refused at once."""
    if out is None:
        return Trainer(config, out, **kwargs).run(
            resume=resume, overwrite=overwrite, allow_env_change=allow_env_change
        )
    if resume and overwrite:
        raise ValueError(
            "resume and overwrite exclude each other (--resume continues the run in the "
            "folder, --overwrite deletes it)"
        )
    log = kwargs.get("log", print)

    def report(msg: str) -> None:
        if log:
            log(f"WARNING: {msg}")
        else:
            warnings.warn(msg, RuntimeWarning, stacklevel=4)

    with RunLock(out, what="training run", report=report) as lock:
        check_run_folder(out, resume=resume, overwrite=overwrite)
        return Trainer(config, out, lock=lock, **kwargs).run(
            resume=resume, overwrite=overwrite, allow_env_change=allow_env_change
        )
