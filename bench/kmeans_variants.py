"""The rejected variants of ``ESGDKMeans`` that ``bench/kmeans_tune.py`` and ``bench/kmeans_attribution.py``
still compare, as small subclasses that each override one hook of the estimator.

They lost on the training half (docs/kmeans.md) and so live here, not in the library. Their constants are
class attributes, not estimator parameters: ``Variant.configured(name=value)`` returns a subclass with the
constants set (the same class for the same values), so the estimator's parameters -- ``get_params``,
``clone``, parameter validation, ``repr`` -- stay exactly ``ESGDKMeans``'s, and ``clone`` keeps the
constants (it rebuilds the same class)::

    from kmeans_variants import MassCapped  # bench scripts run as `PYTHONPATH=src python bench/x.py`

    est = MassCapped.configured(mass_start=1.0, mass_end=0.5)(K, batch_size=B, random_state=0).fit(X)

``SlopeBoundedExploration``, ``InnerFromNoise``, ``SeedingSubsample`` and ``MassCapped`` (``fit``) give, bit
for bit, the results of the module knobs they replace (``SLOPES_EXPLORE``, ``INNER_POINTS``, ``INIT_SIZE``,
``MASS_START``/``MASS_END`` of ``src/deeprelax/cluster/stochastic_backward_euler.py`` at commit 19039d2).
The per-centre steps scaled by the centre's spread (``SPREAD_STEPS``, ``kmeans_tune_train_3_spread.txt``)
lost clearly and were not kept; their code is in that module at commit 19039d2 (``_spread_iteration``).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import replace
from typing import Any, ClassVar, NoReturn

import numpy as np
from numpy.typing import ArrayLike, NDArray

from deeprelax.cluster import ESGDKMeans, Schedule
from deeprelax.cluster.stochastic_backward_euler import _labels_sq, _Sampler

__all__ = ["InnerFromNoise", "MassCapped", "SeedingSubsample", "SlopeBoundedExploration"]


class _Variant(ESGDKMeans):
    """An ``ESGDKMeans`` subclass whose extra constants are class attributes (see the module docstring)."""

    #: the class attributes :meth:`configured` may set
    _constants: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def configured(cls, **constants: Any) -> type[ESGDKMeans]:
        """The subclass of ``cls`` with these constants (cached: equal values give the same class)."""
        unknown = sorted(set(constants) - set(cls._constants))
        if unknown:
            raise TypeError(f"{cls.__name__} has no constant {unknown}; it has {list(cls._constants)}")
        return _configured(cls, tuple(sorted(constants.items())))


@functools.cache
def _configured(cls: type[_Variant], items: tuple[tuple[str, Any], ...]) -> type[ESGDKMeans]:
    namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    return type(cls.__name__, (cls,), {**namespace, **dict(items)})


class SlopeBoundedExploration(_Variant):
    r"""Per-centre slope bounds during the exploration: :math:`\gamma_i = \mathrm{clip}(\gamma_k\hat p_i,
    lo, hi)/\hat p_i` for :math:`k \le T` (``explore_slopes = (lo, hi)``; the default ``(0, inf)`` is the
    plain step). Rejected: bounding the slope of heavy centres did not help (round-3 attribution table).
    """

    explore_slopes: ClassVar[tuple[float, float]] = (0.0, np.inf)
    _constants = ("explore_slopes",)

    def _slopes(self, k: int, sched: Schedule) -> tuple[float, float]:
        if k <= sched.n_explore:
            lo, hi = self.explore_slopes
            return (float(lo), float(hi))
        return super()._slopes(k, sched)


class InnerFromNoise(_Variant):
    r""":math:`L = \mathrm{clip}(\lceil c K / B\rceil, 2, 5)` inner iterations instead of ``n_inner``
    (``inner_points`` = c, the points per balanced centre per outer step: L from the mini-batch noise
    :math:`K/(LB)`); ``n_inner`` when ``batch_size`` is None. Rejected: it lost on the training half.
    """

    inner_points: ClassVar[float] = 100.0
    _constants = ("inner_points",)

    def _schedule(self) -> Schedule:
        sched = super()._schedule()
        if self.batch_size is None:
            return sched
        L = int(np.clip(np.ceil(self.inner_points * self.n_clusters / self.batch_size), 2, 5))
        return replace(sched, n_inner=L)


class SeedingSubsample(_Variant):
    """k-means++ seeding on ``max(seeding_factor * batch_size, 3K)`` rows (``None``: all rows); the library
    uses 3, as ``MiniBatchKMeans``. Rejected: seeding on more rows did not help."""

    seeding_factor: ClassVar[int | None] = 3
    _constants = ("seeding_factor",)

    def _seeding_rows(self, n: int) -> int:
        if self.seeding_factor is None or self.batch_size is None:
            return n
        return min(n, max(self.seeding_factor * self.batch_size, 3 * self.n_clusters))


class MassCapped(_Variant):
    r"""The steps capped by the heaviest initial centre: :math:`\gamma_0 \le c_0/\hat p_{\max}`,
    :math:`\gamma_T \le \min(c_T/\hat p_{\max}, \gamma_0)` (``mass_start`` = :math:`c_0`, ``mass_end`` =
    :math:`c_T`, ``None``: :math:`c_0`), :math:`\hat p_{\max}` the largest share of the evaluation batch held
    by one initial centre. The slope of the fixed-point map is :math:`-\gamma p_i`, so this keeps the
    heaviest initial cluster at most marginally unstable at the start and stable at the end. Rejected: mass
    cannot tell a merged pair of small clusters from one big cluster, and the cap did not help.

    Unlike the old module knob, the cap applies to explicit ``step_size``/``final_step_size`` too (the old
    knob capped only ``"auto"`` entries; pass ``step_size=r * K`` for the old ``START_RATIO = r``). The
    evaluation batch is ``ESGDKMeans._evaluation_batch``, drawn from a *copy* of the run's generator,
    so the run's random stream is untouched; this reproduces the old knob bit for bit as long as the
    library draws its evaluation batch that way (checked against commit 19039d2), and is otherwise only a
    different estimate of :math:`\hat p_{\max}`. ``partial_fit`` is not supported.
    """

    mass_start: ClassVar[float] = 1.0
    mass_end: ClassVar[float | None] = 0.5
    _constants = ("mass_start", "mass_end")

    def _run_once(
        self,
        X_aug: NDArray[np.float64],
        x0: NDArray[np.float64],
        rng: np.random.Generator,
        sched: Schedule,
        sw: NDArray[np.float64] | None,
        tol_abs: float,
    ) -> tuple[NDArray[np.float64], int, list[float], Schedule]:
        sampler = _Sampler(len(X_aug), sw)
        E, wE = self._evaluation_batch(X_aug, sw, sampler, copy.deepcopy(rng))
        share = np.bincount(_labels_sq(E, x0)[0], weights=wE, minlength=len(x0))
        p_max = float(share.max() / share.sum())
        g0 = min(sched.step_size, self.mass_start / p_max)
        c_T = self.mass_start if self.mass_end is None else self.mass_end
        gT = min(sched.final_step_size, c_T / p_max, g0)
        capped = replace(sched, step_size=g0, final_step_size=gT)
        return super()._run_once(X_aug, x0, rng, capped, sw, tol_abs)

    def partial_fit(self, X: ArrayLike, y: None = None, sample_weight: ArrayLike | None = None) -> NoReturn:
        raise NotImplementedError("MassCapped caps fit's schedule only; use fit")
