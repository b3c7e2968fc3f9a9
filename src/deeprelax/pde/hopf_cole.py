r"""Local entropy by Hopf-Cole quadrature (viscous Hamilton-Jacobi equation), in 1-D and 2-D.

Conventions (REFERENCE §1; PDE time ``t`` is the papers' :math:`\gamma`, inverse temperature ``beta``)::

    f_t(x) = u(x, t) = -beta^{-1} log( G_{t/beta} * exp(-beta f) )(x),
    G_s(z) = (2 pi s)^{-n/2} exp(-|z|^2 / (2 s))          (Gaussian of variance s)

solves the viscous Hamilton-Jacobi equation

    u_t = -1/2 |grad u|^2 + (beta^{-1}/2) Laplace(u),        u(x, 0) = f(x)

(Hopf-Cole: ``v = exp(-beta u)`` solves the heat equation ``v_t = (beta^{-1}/2) Laplace(v)``).
Its gradient has two equivalent forms

    grad u(x, t) = (x - <y>) / t = <grad f(y)>,

where ``<.>`` is the mean under the local Gibbs density

    rho(y; x) = Z(x)^{-1} exp( -beta f(y) - beta |x - y|^2 / (2 t) ).

Quadrature. The integral over ``y`` is a Riemann sum on a uniform grid ``y_grid`` (spectrally accurate for the
Gaussian-decaying integrand), evaluated with a log-sum-exp (the maximum exponent is subtracted before
exponentiating), so it is stable for any ``beta``: nothing overflows or underflows to a wrong answer.
The grid *is* the domain: ``f`` is taken as ``+inf`` outside it, so the grid must cover the region where
``rho(.; x)`` lives, and its spacing ``h`` must resolve that density (``h`` well below ``sqrt(t / beta)``
and below the width of the wells of ``f`` at temperature ``1/beta``).

In 2-D the Gaussian kernel factorises, so the sum over the ``N1 x N2`` grid is done as two 1-D log-sum-exp
passes (one per axis), costing ``O(N1 N2 (M1 + M2))`` for ``M1 x M2`` output points instead of
``O(N1 N2 M1 M2)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from deeprelax.pde._grid import check_positive, sample_on_grid, tensor_grid_problem, uniform_grid

FloatArray = NDArray[np.float64]

__all__ = [
    "LocalEntropy1D",
    "LocalEntropyDerivatives1D",
    "LocalEntropy2D",
    "gibbs_mean_1d",
    "local_entropy_1d",
    "local_entropy_2d",
    "local_entropy_derivatives_1d",
]

# Memory guard for the (chunk, N, K) exponent arrays of the log-sum-exp passes.
_MAX_BLOCK = 4_000_000


def _gauss_lse_pass(
    logw: FloatArray, fields: Sequence[FloatArray], y: FloatArray, x: FloatArray, t: float, beta: float
) -> tuple[FloatArray, list[FloatArray]]:
    """One 1-D Gaussian log-sum-exp pass along axis 0.

    For each output point ``x_i`` and each column ``k``::

        logZ[i, k]  = log sum_a exp( logw[a, k] - beta (x_i - y_a)^2 / (2 t) )
        mean[i, k]  = sum_a w_{ia k} g[a, k] / sum_a w_{ia k}      for each field g

    ``logw`` and the fields have shape ``(N, K)``; results have shape ``(M, K)``.
    """
    n, k = logw.shape
    m = x.size
    log_z = np.empty((m, k))
    means = [np.empty((m, k)) for _ in fields]
    chunk = max(1, _MAX_BLOCK // max(1, n * k))
    for i0 in range(0, m, chunk):
        xs = x[i0 : i0 + chunk]
        e = logw[None, :, :] - (beta / (2.0 * t)) * ((xs[:, None] - y[None, :]) ** 2)[:, :, None]
        emax = e.max(axis=1, keepdims=True)
        w = np.exp(e - emax)
        s = w.sum(axis=1)
        log_z[i0 : i0 + chunk] = emax[:, 0, :] + np.log(s)
        for out, g in zip(means, fields, strict=True):
            out[i0 : i0 + chunk] = np.einsum("mak,ak->mk", w, g) / s
    return log_z, means


@dataclass
class LocalEntropy1D:
    """Local entropy and its gradient at points ``x`` (all arrays have the shape of ``x``).

    ``value``: f_t(x).  ``gibbs_mean``: <y>.  ``gibbs_var``: Var(y) under rho(.; x).
    ``grad``: (x - <y>)/t.  ``grad_avg``: <f'(y)> (``None`` when no ``grad_f`` was given).
    ``uxx``: exact second derivative 1/t - beta Var(y)/t^2 (differentiate ``grad`` in x).
    """

    x: FloatArray
    t: float
    beta: float
    value: FloatArray
    gibbs_mean: FloatArray
    gibbs_var: FloatArray
    grad: FloatArray
    grad_avg: FloatArray | None
    uxx: FloatArray


def local_entropy_1d(
    f: Callable[[FloatArray], ArrayLike] | ArrayLike,
    x: ArrayLike,
    t: float,
    beta: float,
    y_grid: ArrayLike,
    grad_f: Callable[[FloatArray], ArrayLike] | ArrayLike | None = None,
) -> LocalEntropy1D:
    r"""Local entropy f_t(x) = -beta^{-1} log (G_{t/beta} * e^{-beta f})(x) and its gradient, by quadrature.

    ``f`` (and ``grad_f``) are vectorised callables or their samples on ``y_grid`` (uniform). ``x`` may be any
    array of points. Returns value, Gibbs mean <y>, the gradient in both forms (x - <y>)/t and <f'(y)>, and
    ``u_xx = 1/t - beta Var(y)/t^2``.
    """
    t = check_positive("t", t)
    beta = check_positive("beta", beta)
    y, h = uniform_grid("y_grid", y_grid)
    fy = sample_on_grid("f", f, y)
    xa = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(xa)):
        raise ValueError("x must be finite")
    xs = xa.ravel()
    # Moments of y - c (c: the grid centre) limit the cancellation in Var = E(y-c)^2 - (E(y-c))^2.
    c = 0.5 * (y[0] + y[-1])
    fields = [(y - c)[:, None], ((y - c) ** 2)[:, None]]
    if grad_f is not None:
        fields.append(sample_on_grid("grad_f", grad_f, y)[:, None])
    log_z, means = _gauss_lse_pass(-beta * fy[:, None], fields, y, xs, t, beta)
    # value: -1/beta [ log(h sum exp(...)) - 1/2 log(2 pi t / beta) ]
    value = -(log_z[:, 0] + np.log(h) - 0.5 * np.log(2.0 * np.pi * t / beta)) / beta
    mean_c = means[0][:, 0]
    var = np.maximum(means[1][:, 0] - mean_c**2, 0.0)
    mean = mean_c + c
    grad = (xs - mean) / t
    grad_avg = means[2][:, 0].reshape(xa.shape) if grad_f is not None else None
    return LocalEntropy1D(
        x=xa,
        t=t,
        beta=beta,
        value=value.reshape(xa.shape),
        gibbs_mean=mean.reshape(xa.shape),
        gibbs_var=var.reshape(xa.shape),
        grad=grad.reshape(xa.shape),
        grad_avg=grad_avg,
        uxx=(1.0 / t - beta * var / t**2).reshape(xa.shape),
    )


@dataclass
class LocalEntropyDerivatives1D:
    """u = f_t(x) and its derivatives u_t, u_x, u_xx at the points ``x`` (arrays of the shape of ``x``)."""

    x: FloatArray
    t: float
    beta: float
    value: FloatArray
    u_t: FloatArray
    u_x: FloatArray
    u_xx: FloatArray

    @property
    def residual(self) -> FloatArray:
        """u_t + ½u_x² − (2β)⁻¹u_xx (zero for a solution of the viscous HJ equation)."""
        return self.u_t + 0.5 * self.u_x**2 - self.u_xx / (2.0 * self.beta)


def local_entropy_derivatives_1d(
    f: Callable[[FloatArray], ArrayLike] | ArrayLike,
    x: ArrayLike,
    t: float,
    beta: float,
    y_grid: ArrayLike,
) -> LocalEntropyDerivatives1D:
    r"""The exact derivatives of the quadrature local entropy, as moments of the discrete Gibbs weights.

    The quadrature solution is u = −β⁻¹ log( h Σ_a e^{−βf(y_a)} G_{t/β}(x − y_a) ): a finite sum of heat
    kernels under Hopf-Cole, so it solves u_t = −½u_x² + (2β)⁻¹u_xx *exactly* for the discretised datum.
    Differentiating the sum (⟨·⟩ the mean under the weights w_a ∝ e^{−βf(y_a) − β(x − y_a)²/(2t)}):

        u_x  = ⟨x − y⟩ / t,
        u_xx = 1/t − β Var(x − y) / t²,
        u_t  = 1/(2βt) − ⟨(x − y)²⟩ / (2t²),

    so the residual u_t + ½u_x² − (2β)⁻¹u_xx is zero up to round-off. Each moment is its own weighted sum over
    the grid (chunked over ``x``); nothing is differenced.
    """
    t = check_positive("t", t)
    beta = check_positive("beta", beta)
    y, h = uniform_grid("y_grid", y_grid)
    fy = sample_on_grid("f", f, y)
    xa = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(xa)):
        raise ValueError("x must be finite")
    xs = xa.ravel()
    value, m1, m2 = (np.empty(xs.size) for _ in range(3))
    chunk = max(1, _MAX_BLOCK // y.size)
    for i0 in range(0, xs.size, chunk):
        d = xs[i0 : i0 + chunk, None] - y[None, :]  # x − y
        e = -beta * fy[None, :] - (beta / (2.0 * t)) * d**2
        emax = e.max(axis=1, keepdims=True)
        w = np.exp(e - emax)
        s = w.sum(axis=1)
        value[i0 : i0 + chunk] = -(emax[:, 0] + np.log(h * s) - 0.5 * np.log(2.0 * np.pi * t / beta)) / beta
        m1[i0 : i0 + chunk] = (w * d).sum(axis=1) / s
        m2[i0 : i0 + chunk] = (w * d**2).sum(axis=1) / s
    var = m2 - m1**2
    shape = xa.shape
    return LocalEntropyDerivatives1D(
        x=xa,
        t=t,
        beta=beta,
        value=value.reshape(shape),
        u_t=(1.0 / (2.0 * beta * t) - m2 / (2.0 * t**2)).reshape(shape),
        u_x=(m1 / t).reshape(shape),
        u_xx=(1.0 / t - beta * var / t**2).reshape(shape),
    )


def gibbs_mean_1d(
    f: Callable[[FloatArray], ArrayLike] | ArrayLike,
    x: ArrayLike,
    t: float,
    beta: float,
    y_grid: ArrayLike,
) -> FloatArray:
    r"""The local Gibbs mean <y> = \int y rho(y; x) dy, rho(y; x) ∝ exp(-beta f(y) - beta (x - y)^2 / (2t)).

    Parameters
    ----------
    f: vectorised callable ``f(y)`` (or its samples on ``y_grid``).
    x: the anchor point(s); any shape, the result has the same shape.
    t: PDE time (the coupling is ``gamma = 1/t``); ``t > 0``.
    beta: inverse temperature; ``beta > 0``; large values are safe (log-sum-exp).
    y_grid: uniform quadrature grid covering where rho(.; x) lives, spacing well below ``sqrt(t/beta)``.

    This is the point the Entropy-SGD inner loop averages towards: one outer step with learning rate ``t``
    on the local entropy lands exactly on it, since ``x - t * grad f_t(x) = <y>``.
    """
    return local_entropy_1d(f, x, t, beta, y_grid).gibbs_mean


@dataclass
class LocalEntropy2D:
    """Local entropy on the tensor output grid ``x1 x x2`` (arrays of shape ``(x1.size, x2.size)``).

    ``gibbs_mean`` and ``grad`` have a trailing axis of length 2 (components along x1, x2);
    ``grad = (x - <y>)/t``; ``grad_avg = <grad f(y)>`` when ``grad_f`` was given, else ``None``.
    """

    x1: FloatArray
    x2: FloatArray
    t: float
    beta: float
    value: FloatArray
    gibbs_mean: FloatArray
    grad: FloatArray
    grad_avg: FloatArray | None


def local_entropy_2d(
    f: Callable[[FloatArray, FloatArray], ArrayLike] | ArrayLike,
    y1: ArrayLike,
    y2: ArrayLike,
    t: float,
    beta: float,
    x1: ArrayLike | None = None,
    x2: ArrayLike | None = None,
    grad_f: Callable[[FloatArray, FloatArray], ArrayLike] | ArrayLike | None = None,
) -> LocalEntropy2D:
    r"""2-D local entropy f_t(x) = -beta^{-1} log (G_{t/beta} * e^{-beta f})(x) on a tensor grid.

    Parameters
    ----------
    f: ``f(Y1, Y2)`` vectorised (called on ``meshgrid(y1, y2, indexing="ij")``) or its samples, an array of
        shape ``(y1.size, y2.size)`` with ``f[a, b] = f(y1[a], y2[b])``.
    y1, y2: uniform quadrature grids (the domain; ``f = +inf`` outside it).
    t, beta: PDE time and inverse temperature (both > 0).
    x1, x2: output grids (default: ``y1``, ``y2``, i.e. f_t on the same grid as f; values near the edge then
        feel the truncation of the domain).
    grad_f: optional gradient, callable returning ``(fx1, fx2)`` or an array of shape ``(N1, N2, 2)``;
        if given, ``grad_avg = <grad f(y)>`` is returned as the second gradient form.

    Returns values of shape ``(x1.size, x2.size)``. Cost ``O(N1 N2 (M1 + M2))`` by two separable passes.
    """
    t = check_positive("t", t)
    beta = check_positive("beta", beta)
    ya, h1, yb, h2, fy, xa, xb = tensor_grid_problem(f, y1, y2, x1, x2)
    n1, n2 = fy.shape
    grads: list[FloatArray] = []
    if grad_f is not None:
        if callable(grad_f):
            mesh = np.meshgrid(ya, yb, indexing="ij")
            gs = cast(Sequence[ArrayLike], grad_f(*mesh))
            g = np.stack([np.asarray(c, dtype=float) for c in gs], axis=-1)
        else:
            g = np.asarray(grad_f, dtype=float)
        if g.shape != (n1, n2, 2):
            raise ValueError(f"grad_f on the grid must have shape {(n1, n2, 2)}, got {g.shape}")
        grads = [g[..., 0], g[..., 1]]
    c1 = 0.5 * (ya[0] + ya[-1])
    c2 = 0.5 * (yb[0] + yb[-1])
    # Pass 1 (axis 0, over y1): conditional means of y1 and of the gradient fields, for every column y2_b.
    fields1 = [np.broadcast_to((ya - c1)[:, None], (n1, n2)), *grads]
    log_z1, means1 = _gauss_lse_pass(-beta * fy, fields1, ya, xa, t, beta)  # shapes (M1, N2)
    # Pass 2 (axis 1, over y2): average the pass-1 means, plus the mean of y2.
    fields2 = [m.T for m in means1] + [np.broadcast_to((yb - c2)[:, None], (n2, xa.size))]
    log_z, means2 = _gauss_lse_pass(log_z1.T, fields2, yb, xb, t, beta)  # shapes (M2, M1)
    value = -(log_z.T + np.log(h1 * h2) - np.log(2.0 * np.pi * t / beta)) / beta
    mean = np.stack([means2[0].T + c1, means2[-1].T + c2], axis=-1)
    xx = np.stack(np.meshgrid(xa, xb, indexing="ij"), axis=-1)
    grad_avg = np.stack([means2[1].T, means2[2].T], axis=-1) if grads else None
    return LocalEntropy2D(
        x1=xa, x2=xb, t=t, beta=beta, value=value, gibbs_mean=mean, grad=(xx - mean) / t, grad_avg=grad_avg
    )
