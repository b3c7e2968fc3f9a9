r"""The elastic coupling: every replica is pulled towards the reference x̄ of all replicas.

.. math::  d_a \leftarrow d_a + ρ_t\,(x_a - \bar x),\qquad \bar x = \frac1n \sum_b x_b,\qquad
           ρ_t = \min(ρ_0 (1 + s)^t, ρ_{\max})

added to replica a's direction d_a (its gradient for Elastic-SGD, x_a − μ_a for Parle) before the outer
update. It is the gradient, particle by particle, of the interaction term of the seeds' JKO functional for
Parle, J(ρ) = ∫ f_γ ρ + (1/2γ) ∬ |x − y|² ρ(x) ρ(y): one all-reduce of the parameters per outer step is
all the replicas exchange ("the parallel algorithm requires only passing the mean of the weights").

``reference="anchors"`` (default) averages the replicas' anchors x_b: they are known when the step starts,
so the all-reduce is launched before the inner loop and overlaps with its L + 1 gradient evaluations.
``reference="means"`` averages the inner-loop means μ_b instead (``pratikac/distributed-ensembles``'
``Parle``); that all-reduce can only start after the inner loop.

:func:`elastic_single` is the readable reference, :func:`elastic_foreach` the fast path (same arithmetic).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from deeprelax import distributed
from deeprelax.optim.scoping import scoped

if TYPE_CHECKING:
    from deeprelax.optim._relaxation import Participants, RelaxationOptimizer


def elastic_single(
    params: list[Tensor], directions: list[Tensor], references: list[Tensor], rho: float
) -> list[Tensor]:
    """Reference: d + ρ(x − x̄) for every parameter (new tensors; ``directions`` may be the gradients)."""
    return [torch.add(d, torch.sub(x, r), alpha=rho) for x, d, r in zip(params, directions, references)]


def elastic_foreach(
    params: list[Tensor], directions: list[Tensor], references: list[Tensor], rho: float
) -> list[Tensor]:
    """Fast path of :func:`elastic_single` (same arithmetic, same order)."""
    if not params:
        return []
    return list(torch._foreach_add(directions, torch._foreach_sub(params, references), alpha=rho))


class ElasticCoupling:
    """The coupling stage ρ_t (x − x̄) over a process group (world size 1: x̄ = x, the term vanishes)."""

    def __init__(self, process_group: Any = None, reference: str = "anchors") -> None:
        self.process_group = process_group
        self.reference = reference

    @staticmethod
    def _all_params(opt: RelaxationOptimizer) -> list[Tensor]:
        # every parameter of every group, in order: the same list on every rank, whichever have gradients
        return [p for g in opt.param_groups for p in g["params"]]

    def begin(self, opt: RelaxationOptimizer) -> Any:
        if self.reference == "anchors":
            return distributed.start_mean(self._all_params(opt), self.process_group)
        return None

    def abandon(self, opt: RelaxationOptimizer, handle: Any) -> None:
        """A step that does not complete still finishes its collective, so every rank stays in step."""
        if handle is not None:
            distributed.finish_mean(handle)
        elif self.reference == "means":
            distributed.mean(self._all_params(opt), self.process_group)

    def apply(
        self, opt: RelaxationOptimizer, parts: list[Participants], directions: list[list[Tensor]], handle: Any
    ) -> list[list[Tensor]]:
        params = self._all_params(opt)
        if handle is None:  # reference = means: μ_b where there is an inner loop, else the anchor
            means = getattr(opt, "_last_means", None) or {}
            handle = distributed.start_mean(
                [means.get(id(p), p) for p in params], self.process_group, async_op=False
            )
        xbar = dict(zip((id(p) for p in params), distributed.finish_mean(handle)))
        out = []
        for pt, dirs in zip(parts, directions):
            rho = scoped(pt.group, "rho")
            if rho == 0.0 or not pt.params:
                out.append(dirs)
                continue
            refs = [xbar[id(p)] for p in pt.params]
            kernel = elastic_foreach if opt._use_foreach(pt.group, pt.params) else elastic_single
            out.append(kernel(pt.params, dirs, refs, rho))
        return out

    def after_update(self, opt: RelaxationOptimizer, parts: list[Participants], handle: Any) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"reference": self.reference}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class CenterCoupling:
    r"""EASGD's centre variable x̃ (Zhang, Choromanska & LeCun 2015, synchronous, communication period τ).

    Every τ-th outer step, with the replicas' values x_a before that step's update::

        x_a ← x_a − η ∇f(x_a) − α (x_a − x̃)          (the elastic move follows the optimizer's own update)
        x̃  ← x̃ + α Σ_b (x_b − x̃)  =  x̃ + n α (x̄ − x̃)

    α is the moving rate (EASGD's α = ηρ; their β = nα ≈ 0.9); between communications the replicas take
    plain steps. x̃ starts at the mean of the replicas' initial parameters and is kept, identical, on every
    rank (it is in the optimizer's ``state_dict``).
    """

    def __init__(self, process_group: Any, moving_rate: float, period: int) -> None:
        self.process_group, self.alpha, self.period = process_group, float(moving_rate), int(period)
        self.center: list[Tensor] | None = None

    @staticmethod
    def _all_params(opt: RelaxationOptimizer) -> list[Tensor]:
        return [p for g in opt.param_groups for p in g["params"]]

    def _communicates(self, opt: RelaxationOptimizer) -> bool:
        return opt.param_groups[0]["outer_steps"] % self.period == 0

    def begin(self, opt: RelaxationOptimizer) -> Any:
        params = self._all_params(opt)
        if self.center is None:  # x̃₀ = mean of the initial replicas
            self.center = [t.clone() for t in distributed.mean(params, self.process_group)]
        if not self._communicates(opt):
            return None
        before = [p.detach().clone() for p in params]
        return before, distributed.start_mean(params, self.process_group)

    def abandon(self, opt: RelaxationOptimizer, handle: Any) -> None:
        if handle is not None:
            distributed.finish_mean(handle[1])

    def apply(
        self, opt: RelaxationOptimizer, parts: list[Participants], directions: list[list[Tensor]], handle: Any
    ) -> list[list[Tensor]]:
        return directions

    def after_update(self, opt: RelaxationOptimizer, parts: list[Participants], handle: Any) -> None:
        if handle is None or self.center is None:
            return
        before, work = handle
        xbar = distributed.finish_mean(work)
        _, n = distributed.rank_and_size(self.process_group)
        for p, x, m, c in zip(self._all_params(opt), before, xbar, self.center):
            p.sub_(torch.sub(x, c), alpha=self.alpha)  # x_a ← x_a − α (x_a − x̃)
            c.add_(torch.sub(m, c), alpha=n * self.alpha)  # x̃ ← x̃ + nα (x̄ − x̃)

    def state_dict(self) -> dict[str, Any]:
        return {"center": None if self.center is None else [c.clone() for c in self.center]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        center = state.get("center")
        self.center = None if center is None else [c.clone() for c in center]
