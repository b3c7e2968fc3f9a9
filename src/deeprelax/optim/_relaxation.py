r"""The machinery every relaxation optimizer shares: one outer step as the seeds' algorithm reads.

One outer step at the anchor x (every parameter group, every replica)::

    1. anchor:     loss = closure() at x                  (its gradient is the plain SGD direction)
    2. estimator:  d = g(x), the relaxed direction         (L more closure calls, each a fresh minibatch)
                     L = 0       → ∇f(x)                    (plain gradient: the optimizer is SGD)
                     Langevin    → x − μ_L, μ ≈ ⟨y⟩          (Entropy-SGD, HEAT, Parle)
                     fixed point → p_L ≈ ∇f(x − p/γ)         (HJ)
    3. couplings:  d ← d + Σ_c c(x)                         (a list, empty by default; elastic: ρ_t (x − x̄))
    4. clip:       d ← d·min(1, c/‖d‖)                      (optional, once per step: ``max_direction_norm``)
    5. outer:      torch.optim.SGD's update along d          (weight decay, (Nesterov) momentum, lr)

With ``L = 0`` and no coupling the step *is* ``torch.optim.SGD``'s, bit for bit. Each stage is a small piece
with a single-tensor reference and a ``foreach`` fast path: the estimators in :mod:`.langevin` and
:mod:`.hj`, the elastic coupling in :mod:`.elastic`, the clip in :mod:`.clipping`, the outer update in
:mod:`.outer`. Coefficients are
scoped by :func:`.scoping.scoped` (γ and ρ grow as c₀(1 + scoping)^t up to their caps, t = the group's
``outer_steps``, saved in ``state_dict``).

Contract with the closure: the optimizer zeroes the gradients before every call (a closure that forgets is
still right), calls it ``L + 1`` times per step, sets ``optimizer.in_inner_loop`` to ``True`` during the L
inner calls (so a closure helper can, e.g., freeze BatchNorm statistics there), and restores the anchor
before re-raising if a call raises (``StopIteration``, ``KeyboardInterrupt``, …). Noise comes from the
optimizer's own ``torch.Generator`` (seeded by ``seed``, or on first use from the global RNG, and saved in
``state_dict``), so a trajectory is a function of the optimizer's state alone.

Mixed precision: ``step(closure, grad_scaler=scaler)`` (or ``scaler.step(opt, closure)``) unscales the
gradients of every closure call, skips the whole outer step if any call produced an inf/NaN (the anchor is
restored, the counters do not advance) and reports it to the scaler, whose ``update()`` then runs once per
outer step.

Clipping: ``max_direction_norm=c`` (every optimizer; ``None``, the default, is off) clips the relaxed
direction — the whole vector the outer update uses, after the couplings — to global 2-norm ``c``
once per outer step, with ``torch.nn.utils.clip_grad_norm_``'s rule (see :mod:`.clipping` for what it
bounds for each optimizer). It must be the same in every parameter group (one norm over all of them);
``last_direction_norm`` is the norm before clipping of the latest step.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, ParamsT

from deeprelax.optim import clipping, outer
from deeprelax.optim._validation import (
    check_bool,
    check_cap,
    check_int,
    check_nonneg,
    check_positive,
    check_unit_interval,
)
from deeprelax.optim.scoping import scoped

Closure = Callable[[], Any]

_CLOSURE_HELP = (
    "requires a closure: step(closure) where closure() draws a fresh minibatch, computes the loss, calls "
    "loss.backward() and returns the loss. The optimizer zeroes the gradients before each call and calls "
    "it L + 1 times per step (once at the anchor, once per inner iteration); "
    "deeprelax.optim.minibatch_closure builds one from a DataLoader."
)

# hyperparameters of torch.optim optimizers that none of ours takes: their presence in a state_dict means it
# is another optimizer's
_TORCH_ONLY_KEYS = {
    "maximize",
    "differentiable",
    "fused",
    "capturable",
    "betas",
    "eps",
    "amsgrad",
    "initial_accumulator_value",
    "lr_decay",
    "alpha_rmsprop",
    "centered",
    "history_size",
    "tolerance_grad",
    "tolerance_change",
    "line_search_fn",
    "max_iter",
    "max_eval",
}


class DivergenceError(FloatingPointError):
    """An inner loop produced non-finite values; the parameters were restored to the anchor."""


@dataclass
class Participants:
    """The parameters of one group that take part in a step (those with a gradient at the anchor)."""

    group: dict[str, Any]
    params: list[Tensor]
    grads: list[Tensor]


class _SkipStep(Exception):
    """Internal: a closure call under a GradScaler produced inf/NaN gradients."""


class _AmpScaling:
    """Unscales the gradients of each closure call and records inf/NaN, as ``GradScaler.unscale_`` does."""

    def __init__(self, scaler: Any) -> None:
        self.scaler = scaler
        self.found: dict[torch.device, Tensor] = {}

    def unscale(self, optimizer: Optimizer) -> None:
        scale = self.scaler._scale
        if scale is None:
            raise RuntimeError(
                "GradScaler has no scale yet: the closure must call scaler.scale(loss).backward()"
            )
        by_device: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    by_device.setdefault((p.grad.device, p.grad.dtype), []).append(p.grad)
        inv = scale.double().reciprocal().float()
        for (device, _), grads in by_device.items():
            found = self.found.setdefault(device, torch.zeros(1, device=device))
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found, inv.to(device))
        if any(float(f.sum()) > 0 for f in self.found.values()):
            raise _SkipStep

    def report(self, optimizer: Optimizer) -> None:
        """Hand the inf/NaN flags to the scaler so that ``scaler.update()`` backs off or grows once."""
        from torch.amp.grad_scaler import OptState

        if not self.found:
            device = self.scaler._scale.device if self.scaler._scale is not None else torch.device("cpu")
            self.found[device] = torch.zeros(1, device=device)
        state = self.scaler._per_optimizer_states[id(optimizer)]
        state["found_inf_per_device"] = dict(self.found)
        state["stage"] = OptState.STEPPED


class NoiseRNG:
    """The optimizer's own random stream: one ``torch.Generator`` per device, seeded from (seed, replica).

    ``seed = None`` draws a seed from the global torch RNG on first use, so ``torch.manual_seed`` before
    training still fixes the run while the optimizer's noise no longer depends on anything drawn later.
    """

    def __init__(self, seed: int | None = None, replica: int = 0) -> None:
        self.seed, self.replica = seed, replica
        self._generators: dict[str, torch.Generator] = {}

    def generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            if self.seed is None:
                self.seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
            mixed = (
                self.seed * 0x9E3779B97F4A7C15 + 0xBF58476D1CE4E5B9 * (self.replica + 1) + (device.index or 0)
            ) % (2**63)
            self._generators[key] = torch.Generator(device=device).manual_seed(mixed)
        return self._generators[key]

    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "replica": self.replica,
            "states": {k: g.get_state() for k, g in self._generators.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed, self.replica = state.get("seed"), int(state.get("replica", self.replica))
        self._generators = {}
        for key, st in state.get("states", {}).items():
            g = torch.Generator(device=torch.device(key))
            g.set_state(st.cpu() if isinstance(st, Tensor) else torch.tensor(st, dtype=torch.uint8))
            self._generators[key] = g


class RelaxationOptimizer(Optimizer):
    """Base class: schema, validation, scoping, the staged step, state that survives ``state_dict``.

    A subclass declares its hyperparameters as keyword arguments of ``__init__`` (their defaults are the
    schema, :attr:`hyperparameters`, which ``__setstate__`` uses to fill keys missing from an older
    checkpoint), extends :meth:`_validate_group`, and implements :meth:`_estimate`. Subclasses set
    ``_fold_weight_decay = True`` when their direction already contains ``wd·x`` (HJ).
    """

    _fold_weight_decay: ClassVar[bool] = False
    #: torch.amp.GradScaler protocol: ``scaler.step(opt, closure)`` hands us the scaler (see ``step``)
    _step_supports_amp_scaling: ClassVar[bool] = True
    #: constructor keywords that are options of the optimizer object, not per-group hyperparameters
    _object_options: ClassVar[tuple[str, ...]] = ("seed", "process_group")
    #: the hyperparameter schema: name → default (filled in from ``__init__``'s signature)
    hyperparameters: ClassVar[dict[str, Any]] = {}
    #: group keys the optimizer sets itself (not constructor keywords)
    _internal_keys: ClassVar[tuple[str, ...]] = ("outer_steps",)
    #: per-optimizer diagnostic state saved in ``state_dict`` (name → initial value)
    _diagnostic_defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            sig = inspect.signature(cls.__init__)
            cls.hyperparameters = {
                n: p.default
                for n, p in sig.parameters.items()
                if n not in ("self", "params", *cls._object_options)
                and p.default is not inspect.Parameter.empty
            }

    def __init__(
        self, params: ParamsT, defaults: dict[str, Any], *, seed: int | None = None, replica: int = 0
    ) -> None:
        if params is None or isinstance(params, (str, bytes)):
            raise TypeError(f"params must be an iterable of Tensors or dicts, got {params!r}")
        if seed is not None:
            check_int("seed", seed, minimum=0)
            seed = int(seed)  # a numpy / torch integer would overflow in the seed mixing
        defaults = dict(defaults, outer_steps=0)
        self._validate_group(dict(defaults))  # hyperparameters first, with their own names in the message
        self.in_inner_loop = False
        self._diagnostics = copy.deepcopy(self._diagnostic_defaults)
        self._rng = NoiseRNG(seed, replica)
        self._couplings: list[Any] = []
        #: global 2-norm of the direction before clipping, at the latest step (``None``: no clipping)
        self.last_direction_norm: Tensor | None = None
        super().__init__(params, defaults)

    # -- hyperparameters ---------------------------------------------------------------------------------
    def _validate_group(self, group: dict[str, Any]) -> None:
        """Check a parameter group's hyperparameters; subclasses extend it (call super)."""
        check_nonneg("lr", group["lr"], tensor_ok=True)
        check_unit_interval("momentum", group["momentum"])
        check_unit_interval("dampening", group["dampening"])
        check_bool("nesterov", group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "nesterov=True requires momentum > 0 and dampening = 0 "
                f"(got momentum={group['momentum']!r}, dampening={group['dampening']!r}); "
                "pass nesterov=False for plain or no momentum"
            )
        check_nonneg("weight_decay", group["weight_decay"])
        check_int("L", group["L"], minimum=0)
        check_unit_interval("scoping", group["scoping"])
        for name in ("gamma", "rho"):
            if name in group:
                check_nonneg(name, group[name])
                check_cap(f"{name}_max", group.get(f"{name}_max"), name, group[name])
        if group["foreach"] is not None:
            check_bool("foreach", group["foreach"])
        if group.get("max_direction_norm") is not None:
            check_positive("max_direction_norm", group["max_direction_norm"])
        check_int("outer_steps", group["outer_steps"], minimum=0)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """As ``Optimizer.add_param_group``, but a group with an invalid value is never installed."""
        probe = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        self._validate_group(probe)
        Ls = {g["L"] for g in self.param_groups} | {probe["L"]}
        if len(Ls) > 1:
            raise ValueError(
                f"L must be the same in every parameter group (one closure call evaluates all of them), "
                f"got {sorted(Ls)}"
            )
        clips = {g.get("max_direction_norm") for g in self.param_groups} | {probe.get("max_direction_norm")}
        if len(clips) > 1:
            raise ValueError(
                "max_direction_norm must be the same in every parameter group (the direction is clipped by "
                f"one norm over all of them), got {sorted(clips, key=repr)}"
            )
        super().add_param_group(param_group)

    @staticmethod
    def scoped(group: dict[str, Any], name: str) -> float:
        """The scoped coefficient ``group[name]`` at the group's outer step (see :mod:`.scoping`)."""
        return scoped(group, name)

    @staticmethod
    def gamma_at(group: dict[str, Any]) -> float:
        """The scoped coupling γ_t = min(γ·(1 + scoping)^t, gamma_max), t = outer steps taken."""
        return scoped(group, "gamma")

    @property
    def gammas(self) -> list[float]:
        """Current γ_t of every parameter group (0 for optimizers without γ)."""
        return [scoped(g, "gamma") if "gamma" in g else 0.0 for g in self.param_groups]

    @property
    def inner_steps(self) -> int:
        """L: closure calls per step are ``L + 1``."""
        return int(self.param_groups[0]["L"])

    # -- the step ----------------------------------------------------------------------------------------
    def _evaluate(self, closure: Closure, *, inner: bool) -> Any:
        """One closure call: zero the gradients, call it with the inner-loop flag set."""
        self.zero_grad(set_to_none=True)
        self.in_inner_loop = inner
        try:
            with torch.enable_grad():
                return closure()
        finally:
            self.in_inner_loop = False

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
    def step(self, closure: Closure | None = None, *, grad_scaler: Any = None) -> Any:
        """One outer step: anchor closure → estimator → couplings → outer update.

        Returns the loss of the first closure call (at the anchor, before the step).
        """
        if closure is None or not callable(closure):
            raise TypeError(f"{type(self).__name__}.step() {_CLOSURE_HELP}")
        amp = _AmpScaling(grad_scaler) if grad_scaler is not None and grad_scaler.is_enabled() else None
        L = self.param_groups[0]["L"]
        handles = [c.begin(self) for c in self._couplings]  # e.g. start the all-reduce of the anchors
        anchors: list[list[Tensor]] | None = None
        parts: list[Participants] = []
        loss = None
        try:
            loss = self._evaluate(closure, inner=False)
            if amp is not None:
                amp.unscale(self)
            parts = self._participants()
            if L > 0:
                anchors = [[x.detach().clone() for x in pt.params] for pt in parts]
            directions = self._estimate(parts, anchors, closure, L, amp)
        except _SkipStep:
            self._restore(parts, anchors)
            for c, h in zip(self._couplings, handles):
                c.abandon(self, h)
            amp.report(self)  # type: ignore[union-attr]
            return loss
        except BaseException:
            if anchors is not None:
                self._restore(parts, anchors)
            for c, h in zip(self._couplings, handles):
                c.abandon(self, h)
            raise
        for c, h in zip(self._couplings, handles):
            directions = c.apply(self, parts, directions, h)
        max_norm = self.param_groups[0].get("max_direction_norm")
        if max_norm is not None:
            self.last_direction_norm = self._clip(parts, directions, max_norm)
        for pt, dirs in zip(parts, directions):
            self._outer_update(pt, dirs)
        for c, h in zip(self._couplings, handles):
            c.after_update(self, parts, h)  # e.g. EASGD's elastic move towards its centre variable
        for group in self.param_groups:
            group["outer_steps"] += 1
        if amp is not None:
            amp.report(self)
        return loss

    @staticmethod
    def _restore(parts: list[Participants], anchors: list[list[Tensor]] | None) -> None:
        if anchors is None:
            return
        for pt, x0 in zip(parts, anchors):
            for x, a in zip(pt.params, x0):
                x.copy_(a)

    def _inner_call(self, closure: Closure, amp: _AmpScaling | None) -> Any:
        """An inner-loop closure call (gradients unscaled, and overflow checked, under a GradScaler)."""
        loss = self._evaluate(closure, inner=True)
        if amp is not None:
            amp.unscale(self)
        return loss

    def _estimate(
        self,
        parts: list[Participants],
        anchors: list[list[Tensor]] | None,
        closure: Closure,
        L: int,
        amp: _AmpScaling | None,
    ) -> list[list[Tensor]]:
        """The estimator stage: run the L inner closure calls and return, per group, the direction g(x).

        The default is the plain gradient (the L = 0 case of every optimizer). On return every parameter
        holds its anchor value x again (the base class restores it if a call raises).
        """
        return [list(pt.grads) for pt in parts]

    def _clip(self, parts: list[Participants], directions: list[list[Tensor]], max_norm: float) -> Tensor:
        """The clip stage: every group's direction scaled in place by one factor (see :mod:`.clipping`)."""
        flat = [d for dirs in directions for d in dirs]
        used = [pt for pt in parts if pt.params]
        fast = bool(used) and all(self._use_foreach(pt.group, pt.params) for pt in used)
        return (clipping.clip_foreach if fast else clipping.clip_single)(flat, max_norm)

    # -- outer update: torch.optim.SGD's, with the relaxed direction in place of the gradient ------------
    def _outer_update(self, pt: Participants, directions: list[Tensor]) -> None:
        group = pt.group
        wd = 0.0 if self._fold_weight_decay else group["weight_decay"]
        momentum = group["momentum"]
        bufs = (
            [self.state[p].get("momentum_buffer") for p in pt.params]
            if momentum != 0
            else [None] * len(pt.params)
        )
        kw = dict(
            lr=group["lr"],
            momentum=momentum,
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            weight_decay=wd,
        )
        kernel = outer.sgd_foreach if self._use_foreach(group, pt.params) else outer.sgd_single
        kernel(pt.params, directions, bufs, **kw)
        if momentum != 0:
            for p, b in zip(pt.params, bufs):
                self.state[p]["momentum_buffer"] = b

    def _check_replicas_agree(self, process_group: Any) -> None:
        """One collective at construction: every rank has the same hyperparameters and parameter shapes."""
        from deeprelax import distributed

        def plain(v: Any) -> Any:
            if isinstance(v, Tensor):
                return v.item()
            return v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)

        summary = {
            "optimizer": type(self).__name__,
            "param_groups": [{k: plain(v) for k, v in g.items() if k != "params"} for g in self.param_groups],
            "parameters": [[list(p.shape), str(p.dtype)] for g in self.param_groups for p in g["params"]],
        }
        distributed.check_same(summary, process_group, what="optimizer configuration")

    # -- state ---------------------------------------------------------------------------------------------
    def noise_generator(self, device: torch.device) -> torch.Generator:
        """The optimizer's generator for ``device`` (created and seeded on first use)."""
        return self._rng.generator(device)

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["deeprelax"] = {
            "optimizer": type(self).__name__,
            "diagnostics": copy.deepcopy(self._diagnostics),
            "rng": self._rng.state_dict(),
            "couplings": [c.state_dict() for c in self._couplings],
        }
        return sd

    def _foreign_keys(self) -> set[str]:
        """Hyperparameter names other optimizers take and this one does not."""
        names: set[str] = set(_TORCH_ONLY_KEYS)
        todo = list(RelaxationOptimizer.__subclasses__())
        while todo:
            cls = todo.pop()
            todo.extend(cls.__subclasses__())
            names |= set(cls.hyperparameters)
        return names - set(self.hyperparameters) - set(self._internal_keys) - {"params", "param_names"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state written by ``state_dict``, after validating it with the constructor's checks.

        Refused (``ValueError`` naming the key), leaving the optimizer unchanged: another optimizer's state,
        a value the constructor would reject, a group of a different ``L``. Keys missing from an older
        checkpoint take this class's defaults.
        """
        name = type(self).__name__
        meta = state_dict.get("deeprelax")
        if meta is not None and meta.get("optimizer") not in (None, name):
            raise ValueError(f"this state_dict was written by {meta.get('optimizer')}, not {name}")
        foreign = self._foreign_keys()
        for i, g in enumerate(state_dict["param_groups"]):
            bad = sorted(set(g) & foreign)
            if bad:
                raise ValueError(
                    f"state_dict param_groups[{i}] has {bad}, which {name} does not take: it is "
                    f"another optimizer's state"
                )
            probe = {
                **self.hyperparameters,
                "outer_steps": 0,
                **{k: v for k, v in g.items() if k not in ("params", "param_names")},
            }
            try:
                self._validate_group(probe)
            except ValueError as exc:
                raise ValueError(f"state_dict param_groups[{i}]: {exc}") from None
        Ls = {g.get("L", self.hyperparameters.get("L")) for g in state_dict["param_groups"]}
        if len(Ls) > 1:
            raise ValueError(f"state_dict has different L in its parameter groups: {sorted(Ls)}")
        clips = {g.get("max_direction_norm") for g in state_dict["param_groups"]}
        if len(clips) > 1:
            raise ValueError(
                "state_dict has different max_direction_norm in its parameter groups: "
                f"{sorted(clips, key=repr)}"
            )
        super().load_state_dict(state_dict)
        if meta is not None:
            self._diagnostics = {**copy.deepcopy(self._diagnostic_defaults), **meta.get("diagnostics", {})}
            if "rng" in meta:
                self._rng.load_state_dict(meta["rng"])
            for c, cs in zip(self._couplings, meta.get("couplings", [])):
                c.load_state_dict(cs)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update(
            _diagnostics=self._diagnostics,
            _rng_state=self._rng.state_dict(),
            _couplings=self._couplings,
            in_inner_loop=False,
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        rng_state = state.pop("_rng_state", None)
        super().__setstate__(state)
        for group in self.param_groups:  # a checkpoint of an older release lacks the newer keys
            for k, v in self.hyperparameters.items():
                group.setdefault(k, v)
            group.setdefault("outer_steps", 0)
        for k, v in self.hyperparameters.items():
            self.defaults.setdefault(k, v)
        self.defaults.setdefault("outer_steps", 0)
        self.__dict__.setdefault("_diagnostics", copy.deepcopy(self._diagnostic_defaults))
        for k, v in self._diagnostic_defaults.items():
            self._diagnostics.setdefault(k, copy.deepcopy(v))
        self.__dict__.setdefault("_couplings", [])
        self.__dict__.setdefault("in_inner_loop", False)
        self.__dict__.setdefault("last_direction_norm", None)
        if "_rng" not in self.__dict__:
            self._rng = NoiseRNG()
        if rng_state is not None:
            self._rng.load_state_dict(rng_state)
