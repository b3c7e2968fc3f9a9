r"""PyTorch Lightning: train a ``LightningModule`` with EntropySGD, HJ or Heat (manual optimization).

Lightning's *automatic* optimization is wrong for relaxation optimizers: it re-runs ``training_step`` on the
**same** batch at each of the L + 1 closure calls, and clips the gradient after every call. Its ``16-mixed``
precision calls the closure itself and then ``step()`` without one. :class:`RelaxationStep` does it with
manual optimization and Lightning's ``dataloader_iter`` flavour of ``training_step``:

* each outer step takes L + 1 **fresh** batches from the epoch's iterator (moved to the device by the
  strategy, so ``transfer_batch_to_device`` hooks apply), one per closure call, through
  :func:`deeprelax.optim.minibatch_closure` (gradient zeroing, BatchNorm policy, counting);
* the backward pass is Lightning's ``manual_backward`` (precision plugins and strategies see it);
* ``clip_grad_norm=c`` clips **once per outer step** (``clip="step"``, the default, what
  ``Trainer(gradient_clip_val=c)`` means for an ordinary optimizer): it sets the optimizer's
  ``max_direction_norm`` so that the relaxed direction the outer update uses (x − μ_L for Entropy-SGD/HEAT,
  p_L for HJ, with the elastic term for Elastic-SGD/Parle) has global 2-norm ≤ c; ``clip="call"`` instead
  clips each of the L + 1 minibatch gradients (for HJ that also bounds the step, a damped average of clipped
  gradients; for Entropy-SGD and HEAT only the inner gradients). ``Trainer(gradient_clip_val=)`` stays
  unset (Lightning refuses it under manual optimization);
* an epoch is ``len(train_dataloader) // (L + 1)`` outer steps; the last < L + 1 batches of an epoch are
  dropped (a step never straddles two epochs). ``trainer.global_step`` counts outer steps;
* it logs ``train_loss`` (anchor loss), ``effective_epochs`` (outer steps × max(L, 1) / batches per epoch —
  the paper's unit), ``data_epochs`` (passes over the data) and ``grad_evals``, and with ``clip="step"``
  ``direction_norm`` (the relaxed direction's norm before clipping).

Usage::

    import lightning as L
    from deeprelax.optim import EntropySGD
    from deeprelax.integrations.lightning import RelaxationStep

    class Classifier(L.LightningModule):
        def __init__(self, net):
            super().__init__()
            self.automatic_optimization = False          # required
            self.net = net
            self.relaxation = RelaxationStep(self, self.loss, clip_grad_norm=1.0)   # once per step

        def loss(self, batch):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def training_step(self, dataloader_iter):       # this signature makes Lightning pass the iterator
            return self.relaxation(dataloader_iter)

        def configure_optimizers(self):
            return EntropySGD(self.parameters(), lr=1.0, L=5, gamma=1e-4, scoping=1e-3)

    L.Trainer(max_epochs=10, precision="32-true").fit(Classifier(net), train_loader)

Precision: ``"32-true"`` and ``"bf16-mixed"`` work unchanged; ``"16-mixed"`` is refused with an explanation
(Lightning's fp16 plugin steps without the closure).

Parle and Elastic-SGD on several processes: ``Trainer(devices=n, strategy=ReplicaDDPStrategy())`` (see
:mod:`deeprelax.integrations.lightning_replicas`; Lightning's ``"ddp"`` would average the replicas'
gradients).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from torch import Tensor, nn

from deeprelax.optim.closures import BNPolicy, MinibatchClosure, _first_tensor

if TYPE_CHECKING:
    from deeprelax.integrations.lightning_replicas import ReplicaDDPStrategy

__all__ = ["ClipMode", "RelaxationStep", "ReplicaDDPStrategy"]


def __getattr__(name: str) -> Any:
    # ReplicaDDPStrategy subclasses Lightning's DDPStrategy: imported (with lightning) only when asked for
    if name == "ReplicaDDPStrategy":
        from deeprelax.integrations.lightning_replicas import ReplicaDDPStrategy

        return ReplicaDDPStrategy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


ClipMode = Literal["step", "call"]


class _Queue(Iterator[Any]):
    """The batches of the current outer step, handed to the closure one per call (a one-shot iterator)."""

    def __init__(self) -> None:
        self.items: collections.deque[Any] = collections.deque()

    def __next__(self) -> Any:
        if not self.items:
            raise StopIteration
        return self.items.popleft()


class RelaxationStep:
    """Runs one outer step of the module's relaxation optimizer per ``training_step(dataloader_iter)`` call.

    Args:
        module: the ``LightningModule`` (``automatic_optimization = False``).
        compute_loss: ``compute_loss(batch) -> scalar loss`` on a batch already on the module's device.
        clip_grad_norm: the 2-norm bound ``c`` (``None``: no clipping).
        clip: ``"step"`` (default): once per outer step, on the relaxed direction — the optimizer's
            ``max_direction_norm`` is set to ``c`` (a relaxation optimizer built with another value is a
            ``ValueError``); ``"call"``: each closure call's minibatch gradient.
        bn: BatchNorm running statistics updated at the ``"anchor"`` call only (default) or at ``"every"``
            call.
        log: log ``train_loss``, ``effective_epochs``, ``data_epochs``, ``grad_evals`` (and, when the
            optimizer clips, ``direction_norm``) each step.
        prog_bar: show ``train_loss`` and ``effective_epochs`` in the progress bar.

    After a step, :attr:`closure` is the :class:`~deeprelax.optim.closures.MinibatchClosure` with the
    counters.
    """

    def __init__(
        self,
        module: nn.Module,
        compute_loss: Callable[[Any], Tensor],
        *,
        clip_grad_norm: float | None = None,
        clip: ClipMode = "step",
        bn: BNPolicy = "anchor",
        log: bool = True,
        prog_bar: bool = True,
    ) -> None:
        if clip not in ("step", "call"):
            raise ValueError(f"clip must be 'step' or 'call', got {clip!r}")
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be > 0, got {clip_grad_norm!r}")
        self.module = module
        self.compute_loss = compute_loss
        self.clip_grad_norm = clip_grad_norm
        self.clip: ClipMode = clip
        self.bn: BNPolicy = bn
        self.log = log
        self.prog_bar = prog_bar
        self.closure: MinibatchClosure | None = None
        self.dropped_batches = 0
        self._queue = _Queue()
        self._optimizer: Any = None

    # -- checks -----------------------------------------------------------------------------------------
    def _check(self) -> None:
        module: Any = self.module
        if getattr(module, "automatic_optimization", True):
            raise RuntimeError(
                "RelaxationStep needs manual optimization: set self.automatic_optimization = False in the "
                "LightningModule's __init__ (automatic optimization re-runs training_step on the same batch "
                "at every closure call)"
            )
        precision = str(getattr(module.trainer, "precision", "32-true"))
        if precision in ("16-mixed", "16", "16-true"):
            raise ValueError(
                f"precision={precision!r}: Lightning's fp16 plugin calls the closure itself and then steps "
                "without it, which a relaxation optimizer cannot do; use precision='bf16-mixed' or "
                "'32-true'"
            )

    def _bind_step_clip(self, raw_optimizer: Any) -> None:
        """``clip="step"``: hand the bound to the optimizer's clip stage (``max_direction_norm``)."""
        if self.clip != "step" or self.clip_grad_norm is None:
            return
        if "max_direction_norm" not in getattr(raw_optimizer, "hyperparameters", {}):
            raise TypeError(
                f"clip='step' needs a deeprelax relaxation optimizer (it clips the relaxed direction "
                f"through max_direction_norm); {type(raw_optimizer).__name__} has none. For an optimizer "
                "that calls its closure once per step, clip='call' clips once per step too"
            )
        c = float(self.clip_grad_norm)
        for group in raw_optimizer.param_groups:
            if group.get("max_direction_norm") not in (None, c):
                raise ValueError(
                    f"RelaxationStep(clip_grad_norm={c!r}) but the optimizer was built with "
                    f"max_direction_norm={group['max_direction_norm']!r}: give the bound in one place"
                )
        for group in raw_optimizer.param_groups:
            group["max_direction_norm"] = c

    def _make_closure(self, raw_optimizer: Any) -> MinibatchClosure:
        self._bind_step_clip(raw_optimizer)
        module: Any = self.module
        n = getattr(module.trainer, "num_training_batches", None)
        epoch_length = int(n) if isinstance(n, (int, float)) and math.isfinite(n) and n >= 1 else None
        return MinibatchClosure(
            module,
            None,
            self._queue,
            raw_optimizer,
            forward=lambda _model, batch: self.compute_loss(batch),
            backward=module.manual_backward,
            clip_grad_norm=self.clip_grad_norm if self.clip == "call" else None,
            bn=self.bn,
            epoch_length=epoch_length,
        )

    # -- the step ---------------------------------------------------------------------------------------
    def __call__(self, dataloader_iter: Iterator[Any]) -> Tensor | None:
        """Draw L + 1 batches from ``dataloader_iter`` and take one outer step; ``None`` at an epoch's end."""
        self._check()
        module: Any = self.module
        optimizer = module.optimizers()
        raw = getattr(optimizer, "optimizer", optimizer)
        if self.closure is None or raw is not self._optimizer:
            self.closure, self._optimizer = self._make_closure(raw), raw
        closure = self.closure
        need = closure.calls_per_step
        batches = []
        for _ in range(need):
            try:
                item = next(dataloader_iter)
            except StopIteration:
                break
            batch = item[0] if isinstance(item, tuple) and len(item) == 3 else item
            batches.append(module.trainer.strategy.batch_to_device(batch))
        if len(batches) < need:
            self.dropped_batches += len(batches)
            if closure.outer_steps == 0 and module.trainer.current_epoch == 0:
                raise ValueError(
                    f"the training dataloader gave {len(batches)} batches, fewer than the "
                    f"L + 1 = {need} that one outer step needs"
                )
            return None
        self._queue.items.extend(batches)
        loss = optimizer.step(closure=closure)
        if self.log:
            first = _first_tensor(batches[0])
            size = int(first.shape[0]) if first is not None and first.dim() > 0 else 1
            module.log("train_loss", loss, prog_bar=self.prog_bar, batch_size=size)
            metrics = {"grad_evals": float(closure.grad_evals)}
            norm = getattr(self._optimizer, "last_direction_norm", None)
            if norm is not None:
                metrics["direction_norm"] = float(norm)
            if closure.epoch_length is not None:
                metrics["effective_epochs"] = closure.effective_epochs
                metrics["data_epochs"] = closure.data_epochs
            module.log_dict(metrics, prog_bar=False, batch_size=size)
            if self.prog_bar and "effective_epochs" in metrics:
                module.log(
                    "eff_epochs", metrics["effective_epochs"], prog_bar=True, logger=False, batch_size=size
                )
        return loss
