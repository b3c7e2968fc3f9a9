"""The training harness: any network of :mod:`deeprelax.nets` with any optimizer of the registry.

One *epoch* is ``steps_per_epoch`` outer steps (default ⌈N_train / batch⌉, as the authors' loops). An outer
step of a relaxation optimizer calls the closure L + 1 times, each on a fresh minibatch; SGD calls it once.
The harness counts the closure calls (true gradient evaluations) and reports both

    effective epochs  = epochs × max(L, 1)                 (the paper's Table-1 unit)
    gradient epochs   = closure calls × batch / N_train    (the true number of passes over the data)

Each epoch: set the outer learning rate from the schedule (piecewise constant, ``{epoch: lr}``), run the
outer steps, re-estimate the BatchNorm statistics on training data ("dry feed"), evaluate on the test split,
append a record to ``log.jsonl`` / ``log.csv``, and atomically write ``checkpoint.pt`` (temporary file, fsync,
``os.replace``). The checkpoint holds the model, the optimizer state (all its buffers and the scoping
counter), the sampler, the RNG states of torch (CPU and CUDA), numpy and ``random``, the counters and the
history, so :meth:`Trainer.run` with ``resume=True`` continues exactly where an uninterrupted run would be.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from deeprelax.nets import MODEL_INPUT_SHAPES, count_parameters, create_model
from deeprelax.nets.augment import random_crop_flip
from deeprelax.nets.batchnorm import refresh_batchnorm
from deeprelax.nets.datasets import IMAGE_SHAPES, ImageDataset, load_dataset
from deeprelax.nets.sampler import MinibatchSampler
from deeprelax.optim import OPTIMIZERS, create_optimizer, inner_steps

CHECKPOINT = "checkpoint.pt"
SAMPLINGS = ("replacement", "shuffle")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


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

    def __post_init__(self) -> None:
        if self.lr_schedule is not None:
            self.lr_schedule = {int(k): float(v) for k, v in self.lr_schedule.items()}
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        if self.model not in MODEL_INPUT_SHAPES:
            raise ValueError(f"model must be one of {sorted(MODEL_INPUT_SHAPES)}, got {self.model!r}")
        if self.optimizer.lower().replace("_", "-") not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.data not in IMAGE_SHAPES:
            raise ValueError(f"data must be one of {sorted(IMAGE_SHAPES)}, got {self.data!r}")
        if IMAGE_SHAPES[self.data] != MODEL_INPUT_SHAPES[self.model]:
            raise ValueError(f"data {self.data!r} (images {IMAGE_SHAPES[self.data]}) does not fit model "
                             f"{self.model!r} (input {MODEL_INPUT_SHAPES[self.model]})")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("steps_per_epoch", "n_train", "n_test", "dry_feed_batches", "threads"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {v!r}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.lr_schedule is not None:
            for k, v in self.lr_schedule.items():
                if k < 0 or not math.isfinite(v) or v < 0:
                    raise ValueError(f"lr_schedule needs epoch >= 0 and finite lr >= 0, got {k}: {v}")
        if not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not (self.device == "cpu" or self.device.startswith("cuda") or self.device == "mps"):
            raise ValueError(f"device must be 'cpu', 'cuda[:k]' or 'mps', got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.lr_schedule is not None:
            d["lr_schedule"] = {str(k): v for k, v in sorted(self.lr_schedule.items())}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
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
    """``"0:1,2:0.1,4:0.01"`` → ``{0: 1.0, 2: 0.1, 4: 0.01}`` (epoch indices are 0-based)."""
    out: dict[int, float] = {}
    for item in text.replace(" ", "").split(","):
        if not item:
            continue
        try:
            k, v = item.split(":")
            out[int(k)] = float(v)
        except ValueError as exc:
            raise ValueError(f"lr schedule entries are EPOCH:LR pairs separated by commas, "
                             f"got {item!r}") from exc
    return out


@dataclass
class TrainResult:
    config: dict[str, Any]
    history: list[dict[str, Any]]
    n_params: int
    L: int
    out: str | None
    n_train: int = 0

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1]

    @property
    def best(self) -> dict[str, Any]:
        return min(self.history, key=lambda r: (r["test_error"], r["epoch"]))

    def summary(self) -> dict[str, Any]:
        f, b = self.final, self.best
        c = self.config
        return {"model": c["model"], "optimizer": c["optimizer"], "data": c["data"], "seed": c["seed"],
                "n_train": self.n_train, "L": self.L, "n_params": self.n_params, "epochs": f["epoch"],
                "effective_epochs": f["effective_epochs"], "grad_evals": f["grad_evals"],
                "grad_epochs": f["grad_epochs"], "final_error": f["test_error"],
                "best_error": b["test_error"],
                "best_effective_epochs": b["effective_epochs"], "final_train_loss": f["train_loss"],
                "wall_time": f["wall_time"]}


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


def atomic_write_bytes(path: Path, writer: Callable[[Any], None]) -> None:
    """Write a file atomically: ``writer(f)`` fills a temporary file beside ``path``, which is flushed,
    fsync'ed and renamed over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


class Trainer:
    """Train ``config.model`` with ``config.optimizer``; see the module docstring.

    Args:
        config: the run.
        out: folder for logs, checkpoint and plot (``None``: keep everything in memory, no checkpoint).
        dataset: an already loaded data set (otherwise ``config.data`` is loaded).
        progress: show a tqdm progress bar.
        on_step: ``on_step(trainer, epoch, step)`` after every outer step (0-based; tests use it).
        log: where one-line epoch summaries go (``None``: silent).
    """

    def __init__(self, config: TrainConfig, out: str | Path | None = None, *,
                 dataset: ImageDataset | None = None, progress: bool = True,
                 on_step: Callable[[Trainer, int, int], None] | None = None,
                 log: Callable[[str], None] | None = print) -> None:
        self.config = config
        self.out = Path(out) if out is not None else None
        self.progress, self.on_step, self.log = progress, on_step, log
        self.device = torch.device(config.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {config.device!r} requested but torch.cuda.is_available() is False")
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
        self.model = create_model(config.model, **config.model_options).to(self.device)
        self.optimizer = create_optimizer(config.optimizer, self.model.parameters(), **config.hparams)
        self.L = inner_steps(self.optimizer)
        self.base_lr = float(self.optimizer.param_groups[0]["lr"])
        self.sampler = MinibatchSampler(self.n_train, config.batch_size,
                                        replacement=config.sampling == "replacement",
                                        seed=_derived_seed(config.seed, 1))
        self.augment_gen = torch.Generator().manual_seed(_derived_seed(config.seed, 2))
        self.steps_per_epoch = config.steps_per_epoch or math.ceil(self.n_train / config.batch_size)
        self.epoch = 0                    # epochs completed
        self.grad_evals = 0               # closure calls so far
        self.wall_time = 0.0              # seconds spent in completed epochs
        self.history: list[dict[str, Any]] = []
        self._calls_in_step = 0
        self.reset_epoch_stats()

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
        refresh_batchnorm(self.model, self.x_train, batch_size=self.config.batch_size,
                          max_batches=self.config.dry_feed_batches)
        self.model.eval()
        loss, wrong = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        bs = self.config.eval_batch_size
        for i in range(0, len(self.x_test), bs):
            out = self.model(self.x_test[i:i + bs])
            yb = self.y_test[i:i + bs]
            loss += F.cross_entropy(out, yb, reduction="sum")
            wrong += (out.argmax(1) != yb).sum()
        self.model.train()
        n = len(self.x_test)
        return float(loss) / n, 100.0 * float(wrong) / n

    # -- checkpoints --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "epoch": self.epoch, "grad_evals": self.grad_evals,
                "wall_time": self.wall_time, "history": self.history, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "sampler": self.sampler.state_dict(),
                "augment_gen": self.augment_gen.get_state(), "rng": _rng_states(self.device)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_compatible(state["config"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        self.augment_gen.set_state(state["augment_gen"])
        _set_rng_states(state["rng"], self.device)
        self.epoch, self.grad_evals = int(state["epoch"]), int(state["grad_evals"])
        self.wall_time, self.history = float(state["wall_time"]), list(state["history"])

    def _check_compatible(self, saved: dict[str, Any]) -> None:
        now = self.config.to_dict()
        may_change = {"epochs", "device", "threads", "data_dir", "eval_batch_size"}
        diff = [k for k in now if k not in may_change and now[k] != saved.get(k)]
        if diff:
            details = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {now[k]!r}" for k in diff)
            raise ValueError(f"cannot resume: the checkpoint was written for a different run ({details})")

    def save_checkpoint(self) -> None:
        if self.out is None:
            return
        state = self.state_dict()
        atomic_write_bytes(self.out / CHECKPOINT, lambda f: torch.save(state, f))

    def load_checkpoint(self) -> bool:
        """Restore from ``out/checkpoint.pt``; False if there is none."""
        if self.out is None or not (self.out / CHECKPOINT).exists():
            return False
        # on CPU: RNG and generator states must be CPU tensors; model and optimizer state are copied to
        # their parameters' device by load_state_dict
        state = torch.load(self.out / CHECKPOINT, map_location="cpu", weights_only=True)
        self.load_state_dict(state)
        return True

    # -- logs ---------------------------------------------------------------------------------------------
    def _write_logs(self) -> None:
        if self.out is None:
            return
        atomic_write_text(self.out / "log.jsonl", "".join(json.dumps(r) + "\n" for r in self.history))
        if self.history:
            path = self.out / "log.csv"
            tmp = path.with_name(f".{path.name}.tmp")
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(self.history[0]))
                w.writeheader()
                w.writerows(self.history)
            os.replace(tmp, path)

    # -- the loop -----------------------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> TrainResult:
        """Train to ``config.epochs`` epochs (continuing from the checkpoint if ``resume``)."""
        cfg = self.config
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            if (self.out / CHECKPOINT).exists() and not resume:
                raise FileExistsError(f"{self.out / CHECKPOINT} exists: pass resume=True (--resume) to "
                                      f"continue that run, or choose another output folder")
            if resume and self.load_checkpoint() and self.log:
                self.log(f"resuming {self.out} after epoch {self.epoch}")
            atomic_write_text(self.out / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
            self._write_logs()
        from tqdm.auto import tqdm

        total = cfg.epochs * self.steps_per_epoch
        bar = tqdm(total=total, initial=min(self.epoch, cfg.epochs) * self.steps_per_epoch, unit="step",
                   desc=f"{cfg.model}/{cfg.optimizer}", disable=not self.progress, dynamic_ncols=True)
        try:
            while self.epoch < cfg.epochs:
                self._run_epoch(bar)
        finally:
            bar.close()
        result = self.result()
        if self.out is not None:
            self.plot()
            atomic_write_text(self.out / "result.json", json.dumps(result.summary(), indent=2) + "\n")
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
                    f"checkpoint is that of epoch {epoch}. Lower the learning rate or check the data.")
            bar.update(1)
            if self.on_step is not None:
                self.on_step(self, epoch, step)
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise NonFiniteLossError(f"non-finite weights after epoch {epoch + 1} "
                                     f"({cfg.model}, {cfg.optimizer})")
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
        }
        self.history.append(record)
        self.save_checkpoint()
        self._write_logs()
        bar.set_postfix(epoch=self.epoch, err=f"{test_error:.2f}%", refresh=False)
        if self.log:
            self.log(f"epoch {self.epoch:3d}  eff. epochs {record['effective_epochs']:4d}  lr {lr:<7.3g} "
                     f"train loss {record['train_loss']:.4f}  test error {test_error:6.2f} %  "
                     f"({record['wall_time']:.0f} s)")

    def result(self) -> TrainResult:
        return TrainResult(self.config.to_dict(), list(self.history), count_parameters(self.model), self.L,
                           str(self.out) if self.out is not None else None, self.n_train)

    def plot(self) -> Path | None:
        if self.out is None or not self.history:
            return None
        from deeprelax.experiments.plots import plot_runs

        cfg = self.config
        return plot_runs({cfg.optimizer: self.history}, self.out / "error.png",
                         title=f"{cfg.model} on {cfg.data}: {cfg.optimizer} (seed {cfg.seed})")


def _derived_seed(seed: int, stream: int) -> int:
    """Independent seeds for the sampler and augmentation streams, derived from the run's seed."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0] % 2**63)


def train(config: TrainConfig, out: str | Path | None = None, *, resume: bool = False,
          **kwargs: Any) -> TrainResult:
    """Convenience wrapper: ``Trainer(config, out, **kwargs).run(resume=resume)``."""
    return Trainer(config, out, **kwargs).run(resume=resume)

