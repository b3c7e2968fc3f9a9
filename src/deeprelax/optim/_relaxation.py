"""Machinery shared by the relaxation optimizers (Entropy-SGD, HEAT, HJ; Parle/Elastic-SGD build on it).

Every relaxation optimizer has the same two-level structure. One *outer* step at the anchor x:

1. ``closure()`` at x — its loss is what ``step`` returns, its gradient is the plain SGD direction;
2. an *inner loop* of ``L`` closure calls (each on a fresh minibatch) that estimates a relaxed gradient
   ``g(x)`` — the gradient of the local entropy f_{1/γ} (Entropy-SGD, HEAT) or of the Moreau envelope (HJ);
3. the outer update, exactly ``torch.optim.SGD``'s with the relaxed direction in place of the gradient::

       d = g(x) + wd·x                       (weight decay, if the subclass does not fold it into g)
       b ← momentum·b + (1 − dampening)·d    (b ← d on the first step)
       d ← d + momentum·b  if nesterov else  b
       x ← x − lr·d

With ``L = 0`` there is no inner loop and ``g(x) = ∇f(x)``: the optimizer *is* SGD with (Nesterov) momentum,
bit for bit. The coupling γ (PDE time t = 1/γ) is scoped: ``γ_t = min(γ·(1 + scoping)^t, gamma_max)``
with t the number of outer steps this parameter group has taken (``group["outer_steps"]``, saved in
``state_dict``).

Subclasses implement :meth:`RelaxationOptimizer._relaxed_directions`. Each has a readable single-tensor loop
(the specification) and a ``foreach`` fast path tested equal to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, ParamsT

Closure = Callable[[], Any]

_CLOSURE_HELP = (
    "requires a closure: step(closure) where closure() draws a fresh minibatch, zeroes the gradients, "
    "computes the loss, calls loss.backward() and returns the loss. The optimizer calls it L + 1 times "
    "per step (once at the anchor, once per inner iteration)."
)


# ----------------------------------------------------------------------------------------------------------
# validation: one place, ValueError naming the argument


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def check_nonneg(name: str, value: Any) -> None:
    if _number(name, value) < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def check_positive(name: str, value: Any) -> None:
    if _number(name, value) <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def check_unit_interval(name: str, value: Any) -> None:
    """0 <= value < 1."""
    v = _number(name, value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")


def check_int(name: str, value: Any, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


@dataclass
class Participants:
    """The parameters of one group that take part in a step (those with a gradient at the anchor)."""

    group: dict[str, Any]
    params: list[Tensor]
    grads: list[Tensor]


class RelaxationOptimizer(Optimizer):
    """Base class: validation, γ-scoping, the anchor evaluation and the outer (Nesterov-)momentum update.

    Subclasses set ``_fold_weight_decay = True`` when their relaxed direction already contains ``wd·x``
    (HJ), so the outer update does not add it a second time.
    """

    _fold_weight_decay = False

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        defaults = dict(defaults, outer_steps=0)
        super().__init__(params, defaults)

    # -- hyperparameters ---------------------------------------------------------------------------------
    def _validate_group(self, group: dict[str, Any]) -> None:
        """Check a parameter group's hyperparameters; subclasses extend it (call super)."""
        check_nonneg("lr", group["lr"])
        check_nonneg("momentum", group["momentum"])
        check_nonneg("dampening", group["dampening"])
        check_bool("nesterov", group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "nesterov=True requires momentum > 0 and dampening = 0 "
                f"(got momentum={group['momentum']!r}, dampening={group['dampening']!r}); "
                "pass nesterov=False for plain or no momentum"
            )
        check_nonneg("weight_decay", group["weight_decay"])
        check_int("L", group["L"], minimum=0)
        check_nonneg("gamma", group["gamma"])
        check_nonneg("scoping", group["scoping"])
        if group["gamma_max"] is not None:
            check_nonneg("gamma_max", group["gamma_max"])
            if group["gamma_max"] < group["gamma"]:
                raise ValueError(f"gamma_max must be >= gamma, got gamma_max={group['gamma_max']!r} "
                                 f"< gamma={group['gamma']!r}")
        if group["foreach"] is not None:
            check_bool("foreach", group["foreach"])
        check_int("outer_steps", group["outer_steps"], minimum=0)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        self._validate_group(group)
        Ls = {g["L"] for g in self.param_groups}
        if len(Ls) > 1:
            raise ValueError(
                f"L must be the same in every parameter group (one closure call evaluates all of them), "
                f"got {sorted(Ls)}"
            )

    @staticmethod
    def gamma_at(group: dict[str, Any]) -> float:
        """The scoped coupling γ_t = min(γ·(1 + scoping)^t, gamma_max), t = outer steps taken."""
        g = group["gamma"] * (1.0 + group["scoping"]) ** group["outer_steps"]
        if group["gamma_max"] is not None:
            g = min(g, group["gamma_max"])
        return g

    @property
    def gammas(self) -> list[float]:
        """Current γ_t of every parameter group."""
        return [self.gamma_at(g) for g in self.param_groups]

    # -- the step ----------------------------------------------------------------------------------------
    @staticmethod
    def _call(closure: Closure) -> Any:
        with torch.enable_grad():
            return closure()

    def _participants(self) -> list[Participants]:
        out = []
        for group in self.param_groups:
            params, grads = [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                params.append(p)
                grads.append(p.grad)
            out.append(Participants(group, params, grads))
        return out

    @staticmethod
    def _use_foreach(group: dict[str, Any], params: list[Tensor]) -> bool:
        if group["foreach"] is not None:
            return bool(group["foreach"])
        # like torch.optim: the fast path by default on accelerators, the reference loop on CPU
        return bool(params) and all(p.device.type != "cpu" for p in params)

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> Any:  # type: ignore[override]
        """One outer step: ``L + 1`` closure calls, then the momentum update along the relaxed direction.

        Returns the loss of the first closure call (at the anchor, before the step).
        """
        if closure is None or not callable(closure):
            raise TypeError(f"{type(self).__name__}.step() {_CLOSURE_HELP}")
        loss = self._call(closure)
        parts = self._participants()
        directions = self._relaxed_directions(parts, closure, self.param_groups[0]["L"])
        for pt, dirs in zip(parts, directions):
            self._outer_update(pt, dirs)
            pt.group["outer_steps"] += 1
        return loss

    def _relaxed_directions(self, parts: list[Participants], closure: Closure, L: int) -> list[list[Tensor]]:
        """Run the L inner closure calls and return, per group, the relaxed directions g(x).

        On return every parameter holds its anchor value x again.
        """
        raise NotImplementedError

    # -- outer update: torch.optim.SGD's, with the relaxed direction in place of the gradient ------------
    def _outer_update(self, pt: Participants, directions: list[Tensor]) -> None:
        group = pt.group
        wd = 0.0 if self._fold_weight_decay else group["weight_decay"]
        bufs = [self.state[p].get("momentum_buffer") for p in pt.params]
        kw = dict(lr=group["lr"], momentum=group["momentum"], dampening=group["dampening"],
                  nesterov=group["nesterov"], weight_decay=wd)
        if self._use_foreach(group, pt.params):
            _sgd_foreach(pt.params, directions, bufs, **kw)
        else:
            _sgd_single(pt.params, directions, bufs, **kw)
        if group["momentum"] != 0:
            for p, b in zip(pt.params, bufs):
                self.state[p]["momentum_buffer"] = b


def momentum_single(d: Tensor, buf: Tensor | None, momentum: float, dampening: float,
                    nesterov: bool) -> tuple[Tensor, Tensor]:
    """b ← momentum·b + (1 − dampening)·d (b ← d the first time); returns (d + momentum·b or b, b)."""
    if buf is None:
        buf = d.detach().clone()
    else:
        buf.mul_(momentum).add_(d, alpha=1 - dampening)
    return (d.add(buf, alpha=momentum) if nesterov else buf), buf


def momentum_foreach(ds: list[Tensor], bufs: list[Tensor | None], momentum: float, dampening: float,
                     nesterov: bool) -> list[Tensor]:
    """:func:`momentum_single` over lists (``torch._foreach_*`` kernels); updates ``bufs`` in place."""
    if all(b is not None for b in bufs):
        torch._foreach_mul_(bufs, momentum)
        torch._foreach_add_(bufs, ds, alpha=1 - dampening)
    else:
        for i, d in enumerate(ds):
            _, bufs[i] = momentum_single(d, bufs[i], momentum, dampening, nesterov=False)
    return torch._foreach_add(ds, bufs, alpha=momentum) if nesterov else list(bufs)


def _sgd_single(params: list[Tensor], directions: list[Tensor], bufs: list[Tensor | None], *, lr: float,
                momentum: float, dampening: float, nesterov: bool, weight_decay: float) -> None:
    """Reference: the SGD update of ``torch.optim.SGD`` (single-tensor), direction d in place of ∇f."""
    for i, (x, d) in enumerate(zip(params, directions)):
        if weight_decay != 0:
            d = d.add(x, alpha=weight_decay)
        if momentum != 0:
            d, bufs[i] = momentum_single(d, bufs[i], momentum, dampening, nesterov)
        x.add_(d, alpha=-lr)


def _sgd_foreach(params: list[Tensor], directions: list[Tensor], bufs: list[Tensor | None], *, lr: float,
                 momentum: float, dampening: float, nesterov: bool, weight_decay: float) -> None:
    """Fast path of :func:`_sgd_single` with ``torch._foreach_*`` kernels (same arithmetic, same order)."""
    if not params:
        return
    if weight_decay != 0:
        directions = torch._foreach_add(directions, params, alpha=weight_decay)
    if momentum != 0:
        directions = momentum_foreach(directions, bufs, momentum, dampening, nesterov)
    torch._foreach_add_(params, directions, alpha=-lr)
