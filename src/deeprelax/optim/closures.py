r"""Closures from data: a model, a loss and any iterable of minibatches make ``optimizer.step``'s closure.

The relaxation optimizers call their closure ``L + 1`` times per step — once at the anchor, once per inner
iterate — and each call must see a **fresh** minibatch. :func:`minibatch_closure` owns everything that a
hand-written closure gets wrong:

* **drawing**: each call takes the next batch of ``batches`` (a ``DataLoader`` or any re-iterable), cycling
  into the next epoch when it runs out, so ``StopIteration`` never escapes from inside a step (which would
  leave the weights at an inner iterate). A one-shot iterator that runs dry is a ``RuntimeError`` saying so;
  an empty loader is a ``ValueError``. A ``DistributedSampler``'s ``set_epoch`` is called at each new pass.
* **zeroing**: the gradients are set to ``None`` before every forward/backward, so they are never summed over
  the L + 1 calls.
* **counting**: ``batches_drawn``, ``grad_evals`` (backward passes), ``outer_steps`` (anchor calls),
  ``calls_per_step`` (L + 1), ``steps_per_epoch`` (``len(batches) // (L + 1)``: the outer steps that use
  one pass over the data), ``data_epochs`` (passes over the data so far) and ``effective_epochs``
  (the paper's unit, outer steps × max(L, 1) / len(batches)).
* **hooks**: ``clip_grad_norm`` clips each call's minibatch gradient (on the optimizer's parameters; to
  clip once per outer step, the relaxed direction, give the optimizer ``max_direction_norm`` instead — see
  :mod:`deeprelax.optim.clipping`);
  ``autocast`` (a dtype such as ``torch.bfloat16``) runs the forward pass under :class:`torch.autocast`;
  ``scaler`` (a :class:`torch.amp.GradScaler`) backpropagates the scaled loss — the optimizer must then
  unscale each call's gradients itself (the clip threshold is scaled with it); ``forward`` replaces the
  default ``loss_fn(model(inputs), targets)`` for batches of another shape, ``backward`` replaces
  ``loss.backward()`` (Lightning's ``manual_backward``, for instance).
* **BatchNorm policy** (``bn``): with ``"anchor"`` (the default) the model's buffers — BatchNorm running
  means/variances and batch counters — are restored after every *inner* call, so the running statistics are
  updated once per outer step, at the anchor, on the weights that the step starts from. With ``"every"``
  they are updated at all L + 1 calls, at the inner iterates too (what a plain closure does). Either way the
  forward pass normalises with the batch's own statistics, as in ordinary training. An inner call is one for
  which the optimizer's ``in_inner_loop`` attribute is true; for an optimizer without that attribute the
  position in the step decides (call 0 of every L + 1 is the anchor).
* **mistakes it reports**: the same batch object drawn twice in a row (an ``itertools.repeat`` or a
  closure around the loop's batch — the LBFGS pattern, which runs but learns far less) and a model left in
  ``eval()`` mode are ``RuntimeWarning``\ s; an optimizer none of whose parameters belong to the model is a
  ``ValueError``.

Interrupting a step (Ctrl-C, an exception from the model) is the optimizer's business: the closure raises,
the optimizer must restore the anchor.

>>> import torch
>>> from torch import nn
>>> from deeprelax.optim import EntropySGD
>>> from deeprelax.optim.closures import minibatch_closure
>>> torch.manual_seed(0) and None
>>> data = [(torch.randn(8, 3), torch.randn(8, 1)) for _ in range(12)]
>>> model = nn.Linear(3, 1)
>>> opt = EntropySGD(model.parameters(), lr=0.1, L=2, gamma=1e-2)
>>> closure = minibatch_closure(model, nn.functional.mse_loss, data, opt)
>>> closure.steps_per_epoch                              # 12 batches // (L + 1)
4
>>> for _ in range(closure.steps_per_epoch):
...     loss = opt.step(closure)
>>> closure.grad_evals, closure.batches_drawn, closure.outer_steps, closure.data_epochs
(12, 12, 4, 1.0)
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn

__all__ = ["BNPolicy", "MinibatchClosure", "minibatch_closure"]

BNPolicy = Literal["anchor", "every"]
LossFn = Callable[[Any, Any], Tensor]
ForwardFn = Callable[[nn.Module, Any], Tensor]


def _to_device(batch: Any, device: torch.device, non_blocking: bool) -> Any:
    """Move every tensor of a (nested tuple / list / dict) batch to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        moved = {k: _to_device(v, device, non_blocking) for k, v in batch.items()}
        return type(batch)(moved)  # type: ignore[call-arg]
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(_to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device, non_blocking) for v in batch)
    return batch


def _first_tensor(batch: Any) -> Tensor | None:
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, Mapping):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for v in batch:
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


class MinibatchClosure:
    """The closure built by :func:`minibatch_closure` (see the module docstring); call it, or :meth:`step`.

    Attributes:
        batches_drawn: batches taken from ``batches`` so far.
        grad_evals: forward + backward passes so far (closure calls that completed).
        outer_steps: anchor calls so far (= optimizer steps for a closure used only with ``optimizer``).
        passes: passes over ``batches`` started so far (1 after the first batch).
        anchor_loss, anchor_output, anchor_batch: detached loss, model output (``None`` with a custom
            ``forward``) and the batch of the latest anchor call — for logging the training loss/accuracy.
        last_loss: detached loss of the latest call.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn | None,
        batches: Iterable[Any],
        optimizer: torch.optim.Optimizer,
        *,
        device: torch.device | str | None = None,
        clip_grad_norm: float | None = None,
        autocast: torch.dtype | None = None,
        scaler: torch.amp.GradScaler | None = None,
        bn: BNPolicy = "anchor",
        forward: ForwardFn | None = None,
        backward: Callable[[Tensor], Any] | None = None,
        epoch_length: int | None = None,
        non_blocking: bool = False,
    ) -> None:
        if backward is not None and scaler is not None:
            raise ValueError("give scaler or backward, not both (a custom backward scales the loss itself)")
        if loss_fn is None and forward is None:
            raise ValueError(
                "give loss_fn (called as loss_fn(model(inputs), targets)) or forward(model, batch)"
            )
        if bn not in ("anchor", "every"):
            raise ValueError(f"bn must be 'anchor' or 'every', got {bn!r}")
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be > 0, got {clip_grad_norm!r}")
        if epoch_length is not None and (
            isinstance(epoch_length, bool) or not isinstance(epoch_length, int) or epoch_length < 1
        ):
            raise ValueError(f"epoch_length must be an integer >= 1, got {epoch_length!r}")
        if not isinstance(batches, Iterable):
            raise TypeError(
                f"batches must be an iterable of minibatches (e.g. a DataLoader), got "
                f"{type(batches).__name__}"
            )
        model_params = {id(p) for p in model.parameters()}
        opt_params = [p for g in optimizer.param_groups for p in g["params"]]
        if opt_params and not any(id(p) in model_params for p in opt_params):
            raise ValueError(
                "none of the optimizer's parameters belongs to the model: the closure would "
                "never give them a gradient (build the optimizer on model.parameters())"
            )
        self.model = model
        self.loss_fn = loss_fn
        self.batches = batches
        self.optimizer = optimizer
        if device is None:
            first = next(itertools.chain(model.parameters(), model.buffers()), None)
            device = first.device if first is not None else torch.device("cpu")
        self.device = torch.device(device)
        self.clip_grad_norm = clip_grad_norm
        self.autocast = autocast
        self.scaler = scaler
        self.bn: BNPolicy = bn
        self.forward = forward
        self.backward = backward
        self.non_blocking = non_blocking
        self._epoch_length = epoch_length
        self._one_shot = iter(batches) is batches if isinstance(batches, Iterator) else False
        self._iterator: Iterator[Any] | None = None
        self._last_first: Tensor | None = None
        self._warned: set[str] = set()
        self._position = 0  # call index inside the current step (fallback anchor detection)
        self.batches_drawn = 0
        self.grad_evals = 0
        self.outer_steps = 0
        self.passes = 0
        self.anchor_loss: Tensor | None = None
        self.anchor_output: Any = None
        self.anchor_batch: Any = None
        self.last_loss: Tensor | None = None

    # -- accounting -----------------------------------------------------------------------------------------
    @property
    def inner_steps(self) -> int:
        """L of the optimizer's first parameter group (0 for optimizers without an inner loop)."""
        return int(self.optimizer.param_groups[0].get("L", 0))

    @property
    def calls_per_step(self) -> int:
        """Closure calls (= batches) per outer step: L + 1."""
        return self.inner_steps + 1

    @property
    def epoch_length(self) -> int | None:
        """Batches in one pass over the data: ``epoch_length`` if given, else ``len(batches)``, else None."""
        if self._epoch_length is not None:
            return self._epoch_length
        try:
            return len(self.batches)  # type: ignore[arg-type]
        except TypeError:
            return None

    @property
    def steps_per_epoch(self) -> int:
        """Outer steps per pass over the data, ``len(batches) // (L + 1)`` (at least 1).

        An epoch of a plain loop (one step per batch) is this many steps of a relaxation optimizer; a loop
        that runs ``len(loader)`` steps per "epoch" would make L + 1 passes over the data.
        """
        n = self.epoch_length
        if n is None:
            raise TypeError("batches has no len(); pass epoch_length= to minibatch_closure")
        return max(1, n // self.calls_per_step)

    @property
    def data_epochs(self) -> float:
        """Passes over the data so far (batches drawn / batches per pass)."""
        n = self.epoch_length
        if n is None:
            raise TypeError("batches has no len(); pass epoch_length= to minibatch_closure")
        return self.batches_drawn / n

    @property
    def effective_epochs(self) -> float:
        """The paper's effective epochs: outer steps × max(L, 1) / batches per pass."""
        n = self.epoch_length
        if n is None:
            raise TypeError("batches has no len(); pass epoch_length= to minibatch_closure")
        return self.outer_steps * max(self.inner_steps, 1) / n

    def state_dict(self) -> dict[str, int]:
        """The counters (the position inside the data iterator cannot be saved)."""
        return {
            "batches_drawn": self.batches_drawn,
            "grad_evals": self.grad_evals,
            "outer_steps": self.outer_steps,
            "passes": self.passes,
        }

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        for key in ("batches_drawn", "grad_evals", "outer_steps", "passes"):
            setattr(self, key, int(state[key]))

    # -- drawing --------------------------------------------------------------------------------------------
    def _new_pass(self) -> Iterator[Any]:
        sampler = getattr(self.batches, "sampler", None)
        set_epoch = getattr(sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.passes)
        self.passes += 1
        return iter(self.batches)

    def next_batch(self) -> Any:
        """The next minibatch, starting a new pass over ``batches`` when the current one is exhausted."""
        if self._iterator is None:
            self._iterator = self._new_pass()
        try:
            batch = next(self._iterator)
        except StopIteration:
            if self._one_shot:
                raise RuntimeError(
                    f"the batch iterator ran dry after {self.batches_drawn} batches and cannot be restarted "
                    "(it is a one-shot iterator such as a generator): pass the DataLoader or another "
                    "re-iterable so that the closure can start the next epoch"
                ) from None
            self._iterator = self._new_pass()
            try:
                batch = next(self._iterator)
            except StopIteration:
                raise ValueError("batches is empty: not a single minibatch to draw") from None
        self.batches_drawn += 1
        first = _first_tensor(batch)
        if first is not None and first is self._last_first:
            self._warn_once(
                "repeat",
                "the closure drew the same batch object twice in a row: every call "
                "must see a fresh minibatch (a repeating iterator, or a closure around the "
                "training loop's batch, makes the inner loop average one batch)",
            )
        self._last_first = first
        return batch

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    # -- the call -------------------------------------------------------------------------------------------
    def _is_anchor_call(self) -> bool:
        flag = getattr(self.optimizer, "in_inner_loop", None)
        if flag is not None:
            return not bool(flag)
        return self._position % self.calls_per_step == 0

    def _loss(self, batch: Any) -> tuple[Tensor, Any]:
        if self.forward is not None:
            return self.forward(self.model, batch), None
        if not isinstance(batch, (list, tuple)) or len(batch) < 2:
            raise TypeError(
                "the default forward expects batches (inputs, targets); pass "
                f"forward(model, batch) for batches of type {type(batch).__name__}"
            )
        output = self.model(batch[0])
        assert self.loss_fn is not None
        return self.loss_fn(output, batch[1]), output

    def __call__(self) -> Tensor:
        """Draw a fresh minibatch, zero the gradients, forward, backward, return the detached loss."""
        anchor = self._is_anchor_call()
        self._position += 1
        if not self.model.training:
            self._warn_once(
                "eval",
                "the model is in eval() mode inside the training closure (dropout off, "
                "BatchNorm on running statistics): call model.train() before optimizer.step",
            )
        batch = _to_device(self.next_batch(), self.device, self.non_blocking)
        saved = None
        if not anchor and self.bn == "anchor":
            saved = [b.detach().clone() for b in self.model.buffers()]
        self.optimizer.zero_grad(set_to_none=True)
        ctx = (
            torch.autocast(self.device.type, dtype=self.autocast)
            if self.autocast is not None
            else contextlib.nullcontext()
        )
        with torch.enable_grad():
            with ctx:
                loss, output = self._loss(batch)
            if not isinstance(loss, Tensor) or loss.dim() != 0:
                raise TypeError(
                    f"the loss must be a scalar tensor, got {type(loss).__name__}"
                    + (f" of shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else "")
                )
            if self.backward is not None:
                self.backward(loss)
            elif self.scaler is not None:
                self.scaler.scale(loss).backward()
            else:
                loss.backward()
        if self.clip_grad_norm is not None:
            params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            max_norm = self.clip_grad_norm
            if self.scaler is not None and self.scaler.is_enabled():
                max_norm *= float(self.scaler.get_scale())  # the gradients are still scaled
            torch.nn.utils.clip_grad_norm_(params, max_norm)
        if saved is not None:
            with torch.no_grad():
                for b, s in zip(self.model.buffers(), saved):
                    b.copy_(s)
        self.grad_evals += 1
        loss = loss.detach()
        self.last_loss = loss
        if anchor:
            self._position = 1
            self.outer_steps += 1
            self.anchor_loss = loss
            self.anchor_output = output.detach() if isinstance(output, Tensor) else output
            self.anchor_batch = batch
        return loss

    def step(self) -> Any:
        """One optimizer step with this closure: ``optimizer.step(self)``; returns the anchor loss."""
        # torch types closures as returning float; ours returns the loss tensor, as LBFGS closures do
        return self.optimizer.step(cast(Callable[[], float], self))


def minibatch_closure(
    model: nn.Module,
    loss_fn: LossFn | None,
    batches: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device | str | None = None,
    clip_grad_norm: float | None = None,
    autocast: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    bn: BNPolicy = "anchor",
    forward: ForwardFn | None = None,
    backward: Callable[[Tensor], Any] | None = None,
    epoch_length: int | None = None,
    non_blocking: bool = False,
) -> MinibatchClosure:
    """The closure for ``optimizer.step(closure)`` that draws each call's minibatch from ``batches``.

    Args:
        model: the network (its buffers are the BatchNorm statistics that ``bn`` governs).
        loss_fn: ``loss_fn(model(inputs), targets)`` for batches ``(inputs, targets, ...)``.
        batches: a ``DataLoader`` or any re-iterable of batches; it is cycled across epochs.
        optimizer: the optimizer the closure is for (its gradients are zeroed at each call; its ``L`` gives
            the calls per step).
        device: where batches go (default: the model's device).
        clip_grad_norm: clip each call's gradient to this total 2-norm.
        autocast: run the forward pass under ``torch.autocast(device.type, dtype=autocast)``.
        scaler: backpropagate ``scaler.scale(loss)`` (fp16 loss scaling; the optimizer unscales).
        bn: ``"anchor"`` (running statistics updated at the anchor call only) or ``"every"``.
        forward: ``forward(model, batch) -> loss`` replacing the default for other batch layouts.
        backward: ``backward(loss)`` replacing ``loss.backward()`` (e.g. Lightning's ``manual_backward``).
        epoch_length: batches per pass, for iterables without ``len``.
        non_blocking: passed to ``Tensor.to`` when moving batches.

    Returns:
        A :class:`MinibatchClosure`: callable, with the counters and ``steps_per_epoch``.
    """
    return MinibatchClosure(
        model,
        loss_fn,
        batches,
        optimizer,
        device=device,
        clip_grad_norm=clip_grad_norm,
        autocast=autocast,
        scaler=scaler,
        bn=bn,
        forward=forward,
        backward=backward,
        epoch_length=epoch_length,
        non_blocking=non_blocking,
    )
