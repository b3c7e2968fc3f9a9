r"""Hopf-Lax formula / Moreau envelope and the proximal map on a grid, by the lower envelope of parabolas.

The non-viscous Hamilton-Jacobi equation ``u_t = -1/2 |grad u|^2``, ``u(x, 0) = f(x)`` (the ``beta -> inf``
limit of local entropy, REFERENCE §1) is solved by the Hopf-Lax formula, which is also the Moreau envelope::

    u(x, t) = min_y  f(y) + |x - y|^2 / (2 t),          prox_{t f}(x) = argmin_y ( same ),

and its gradient is ``p* = grad u(x, t) = (x - prox_{t f}(x)) / t``; by the optimality condition of the
minimisation it solves the implicit (backward-Euler) relation ``p* = grad f(x - t p*)``.

Algorithm (Felzenszwalb-Huttenlocher style, written from the idea). With ``f`` sampled at sorted nodes
``y_j``, ``u(x) = min_j P_j(x)`` is the lower envelope of the parabolas ``P_j(x) = f_j + (x - y_j)^2 / (2t)``.
All have the same curvature, so two of them cross exactly once, at::

    s(q, r) = [ (2 t f_q + y_q^2) - (2 t f_r + y_r^2) ] / ( 2 (y_q - y_r) ).

Sweeping ``j`` left to right with a stack of the parabolas that are visible and the abscissae where
visibility changes builds the envelope in ``O(N)`` (each parabola is pushed and popped at most once); each
query point is then located by binary search, ``O(M log N)``. In 2-D the minimisation separates
(``min_{y1} [ (x1 - y1)^2/(2t) + min_{y2} f(y1, y2) + (x2 - y2)^2/(2t) ]``), so two passes of the 1-D
transform along the axes cost ``O(N1 N2)`` up to the logarithm; the sweep is vectorised over the rows.

``refine=True`` corrects the grid minimiser by the vertex of the parabola (1-D) or the Newton step of the
quadratic model (2-D) through the neighbouring samples of ``f(y) + |x - y|^2/(2t)``, which makes the value
accurate to ``O(h^3)`` for smooth ``f`` instead of ``O(h^2)`` (needed for second derivatives of ``u``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from deeprelax.pde._grid import check_positive, sample_on_grid, tensor_grid_problem, uniform_grid

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

__all__ = [
    "HopfLax1D",
    "HopfLax2D",
    "hopf_lax_1d",
    "hopf_lax_2d",
    "lower_envelope_of_parabolas",
    "polish_prox",
]

# Below this many rows a plain Python sweep per row is faster than the row-vectorised sweep.
_VECTORISE_ROWS = 16


def _envelope_python(a: list[float], y: list[float]) -> tuple[list[int], list[float]]:
    """Lower envelope of ``P_j(x) = (a_j - 2 x y_j + x^2) / (2t)`` (``a_j = 2 t f_j + y_j^2``): one row.

    Returns the visible parabolas ``v`` and the breakpoints ``z`` (``v[i]`` is minimal on
    ``[z[i], z[i+1]]``; ``z[0] = -inf`` and ``z[len(v)] = +inf`` are implicit).
    """
    v = [0]
    z = [-np.inf]
    for q in range(1, len(y)):
        while True:
            r = v[-1]
            s = (a[q] - a[r]) / (2.0 * (y[q] - y[r]))
            if s <= z[-1]:
                v.pop()
                z.pop()
            else:
                break
        v.append(q)
        z.append(s)
    return v, z


def _envelope_rows(a: FloatArray, y: FloatArray) -> tuple[IntArray, FloatArray, IntArray]:
    """The same sweep for all rows of ``a`` (shape ``(R, N)``) at once; returns ``v``, ``z``, top ``k``."""
    n_rows, n = a.shape
    rows = np.arange(n_rows)
    v = np.zeros((n_rows, n), dtype=np.int64)
    z = np.full((n_rows, n + 1), np.inf)
    z[:, 0] = -np.inf
    k = np.zeros(n_rows, dtype=np.int64)
    for q in range(1, n):
        r = v[rows, k]
        s = (a[:, q] - a[rows, r]) / (2.0 * (y[q] - y[r]))
        pop = s <= z[rows, k]
        while pop.any():
            idx = rows[pop]
            k[idx] -= 1
            r = v[idx, k[idx]]
            s[idx] = (a[idx, q] - a[idx, r]) / (2.0 * (y[q] - y[r]))
            pop[idx] = s[idx] <= z[idx, k[idx]]
        k += 1
        v[rows, k] = q
        z[rows, k] = s
    return v, z, k


def lower_envelope_of_parabolas(
    c: ArrayLike, y: ArrayLike, x: ArrayLike, t: float
) -> tuple[FloatArray, IntArray]:
    r"""``u[..., i] = min_j c[..., j] + (x_i - y_j)^2 / (2t)`` and the minimising ``j``, O((N + M) log N).

    ``c`` has shape ``(..., N)`` (each leading index is an independent row), ``y`` is strictly increasing
    (not necessarily uniform), ``x`` is any 1-D array of query points. Exact: the minimum over the nodes,
    the same as brute-force minimisation up to round-off (ties may pick either node).
    """
    t = check_positive("t", t)
    ya = np.asarray(y, dtype=float)
    if ya.ndim != 1 or ya.size < 1 or np.any(np.diff(ya) <= 0) or not np.all(np.isfinite(ya)):
        raise ValueError("y must be a finite, strictly increasing 1-D array")
    ca = np.asarray(c, dtype=float)
    if ca.shape[-1:] != ya.shape:
        raise ValueError(f"c must have shape (..., {ya.size}), got {ca.shape}")
    if not np.all(np.isfinite(ca)):
        raise ValueError("c must be finite")
    xa = np.asarray(x, dtype=float).ravel()
    lead = ca.shape[:-1]
    c2 = ca.reshape(-1, ya.size)
    a = 2.0 * t * c2 + ya**2
    idx = np.empty((c2.shape[0], xa.size), dtype=np.int64)
    if c2.shape[0] < _VECTORISE_ROWS:
        yl = ya.tolist()
        for r in range(c2.shape[0]):
            v, z = _envelope_python(a[r].tolist(), yl)
            idx[r] = np.asarray(v)[np.searchsorted(np.asarray(z[1:]), xa, side="right")]
    else:
        vr, zr, k = _envelope_rows(a, ya)
        for r in range(c2.shape[0]):
            idx[r] = vr[r, np.searchsorted(zr[r, 1 : k[r] + 1], xa, side="right")]
    vals = np.take_along_axis(c2, idx, axis=1) + (xa[None, :] - ya[idx]) ** 2 / (2.0 * t)
    return vals.reshape(*lead, xa.size), idx.reshape(*lead, xa.size)


@dataclass
class HopfLax1D:
    """Hopf-Lax solution at points ``x``: ``value`` u(x,t), ``prox`` argmin, ``grad`` p* = (x - prox)/t."""

    x: FloatArray
    t: float
    value: FloatArray
    prox: FloatArray
    grad: FloatArray


def hopf_lax_1d(
    f: Callable[[FloatArray], ArrayLike] | ArrayLike,
    x: ArrayLike,
    t: float,
    y_grid: ArrayLike,
    refine: bool = True,
) -> HopfLax1D:
    r"""u(x, t) = min_y f(y) + (x - y)^2/(2t), prox and p* = (x - prox)/t (so p* = f'(x - t p*)).

    ``f`` is a vectorised callable or its samples on the uniform ``y_grid`` (the grid is the domain of the
    minimisation). ``refine``: parabolic sub-grid correction of the minimiser (see the module docstring).
    """
    t = check_positive("t", t)
    y, h = uniform_grid("y_grid", y_grid)
    fy = sample_on_grid("f", f, y)
    xa = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(xa)):
        raise ValueError("x must be finite")
    xs = xa.ravel()
    value, j = lower_envelope_of_parabolas(fy, y, xs, t)
    prox = y[j]
    if refine:
        inner = (j > 0) & (j < y.size - 1)
        jj = j[inner]
        xi = xs[inner]
        phi_m = fy[jj - 1] + (xi - y[jj - 1]) ** 2 / (2.0 * t)
        phi_0 = fy[jj] + (xi - y[jj]) ** 2 / (2.0 * t)
        phi_p = fy[jj + 1] + (xi - y[jj + 1]) ** 2 / (2.0 * t)
        d2 = phi_m - 2.0 * phi_0 + phi_p
        ok = d2 > 0
        delta = np.where(ok, h * (phi_m - phi_p) / (2.0 * np.where(ok, d2, 1.0)), 0.0)
        drop = np.where(ok, (phi_m - phi_p) ** 2 / (8.0 * np.where(ok, d2, 1.0)), 0.0)
        prox = prox.copy()
        prox[inner] = y[jj] + delta
        value = value.copy()
        value[inner] = phi_0 - drop
    return HopfLax1D(
        x=xa,
        t=t,
        value=value.reshape(xa.shape),
        prox=prox.reshape(xa.shape),
        grad=((xs - prox) / t).reshape(xa.shape),
    )


@dataclass
class HopfLax2D:
    """Hopf-Lax solution on the grid ``x1 x x2``: ``value`` (M1, M2), ``prox`` and ``grad`` (M1, M2, 2)."""

    x1: FloatArray
    x2: FloatArray
    t: float
    value: FloatArray
    prox: FloatArray
    grad: FloatArray


def hopf_lax_2d(
    f: Callable[[FloatArray, FloatArray], ArrayLike] | ArrayLike,
    y1: ArrayLike,
    y2: ArrayLike,
    t: float,
    x1: ArrayLike | None = None,
    x2: ArrayLike | None = None,
    refine: bool = True,
) -> HopfLax2D:
    r"""u(x, t) = min_y f(y) + |x - y|^2/(2t) on a tensor grid, by two separable lower-envelope passes.

    ``f``: ``f(Y1, Y2)`` vectorised (on ``meshgrid(y1, y2, indexing="ij")``) or samples of shape
    ``(y1.size, y2.size)``. Output grids ``x1``, ``x2`` default to ``y1``, ``y2``. ``refine``: one Newton step
    of the quadratic model of ``f(y) + |x - y|^2/(2t)`` through the 3 x 3 neighbourhood of the grid minimiser.
    """
    t = check_positive("t", t)
    ya, h1, yb, h2, fy, xa, xb = tensor_grid_problem(f, y1, y2, x1, x2)
    # pass 1: g[a, j] = min_b f[a, b] + (x2_j - y2_b)^2/(2t), minimiser b1[a, j]
    g, b1 = lower_envelope_of_parabolas(fy, yb, xb, t)
    # pass 2: u[j, i] = min_a g[a, j] + (x1_i - y1_a)^2/(2t), minimiser a_star[j, i]
    u, a_star = lower_envelope_of_parabolas(g.T, ya, xa, t)
    ia = a_star.T  # (M1, M2)
    ib = np.take_along_axis(b1, ia, axis=0)  # b1[ia[i, j], j]
    value = u.T
    prox = np.stack([ya[ia], yb[ib]], axis=-1)
    xx = np.stack(np.meshgrid(xa, xb, indexing="ij"), axis=-1)
    if refine:
        inner = (ia > 0) & (ia < ya.size - 1) & (ib > 0) & (ib < yb.size - 1)
        i0, j0 = ia[inner], ib[inner]
        px, py = xx[inner][:, 0], xx[inner][:, 1]

        def phi(da: int, db: int) -> FloatArray:
            a_, b_ = i0 + da, j0 + db
            return fy[a_, b_] + ((px - ya[a_]) ** 2 + (py - yb[b_]) ** 2) / (2.0 * t)

        p00 = phi(0, 0)
        g1 = (phi(1, 0) - phi(-1, 0)) / (2 * h1)
        g2 = (phi(0, 1) - phi(0, -1)) / (2 * h2)
        h11 = (phi(1, 0) - 2 * p00 + phi(-1, 0)) / h1**2
        h22 = (phi(0, 1) - 2 * p00 + phi(0, -1)) / h2**2
        h12 = (phi(1, 1) - phi(1, -1) - phi(-1, 1) + phi(-1, -1)) / (4 * h1 * h2)
        det = h11 * h22 - h12**2
        ok = (h11 > 0) & (det > 0)
        sdet = np.where(ok, det, 1.0)
        d1 = np.where(ok, -(h22 * g1 - h12 * g2) / sdet, 0.0)
        d2 = np.where(ok, -(-h12 * g1 + h11 * g2) / sdet, 0.0)
        # keep the step inside the cell around the grid minimiser (else the model is not trusted)
        ok &= (np.abs(d1) <= h1) & (np.abs(d2) <= h2)
        d1, d2 = np.where(ok, d1, 0.0), np.where(ok, d2, 0.0)
        value = value.copy()
        prox = prox.copy()
        value[inner] = p00 + 0.5 * (g1 * d1 + g2 * d2)
        prox[inner] = prox[inner] + np.stack([d1, d2], axis=-1)
    return HopfLax2D(x1=xa, x2=xb, t=t, value=value, prox=prox, grad=(xx - prox) / t)


def polish_prox(
    f: Callable[..., ArrayLike],
    grad_f: Callable[..., ArrayLike],
    hess_f: Callable[..., ArrayLike],
    x: ArrayLike,
    y0: ArrayLike,
    t: float,
    n_iter: int = 10,
) -> tuple[FloatArray, FloatArray]:
    r"""Newton-polish grid minimisers: solve grad f(y) + (y - x)/t = 0 from ``y0`` (e.g. the grid prox).

    The lower envelope picks the basin globally; this refines the minimiser inside it to machine precision,
    so that ``u = f(y) + |x - y|^2/(2t)`` can be differentiated twice. ``x``, ``y0``: shape ``(M, n)``;
    ``f(*y.T)`` returns ``(M,)``, ``grad_f(*y.T)`` a sequence of ``n`` arrays, ``hess_f(*y.T)`` an
    ``n x n`` nested sequence of arrays. A Newton step is taken only where the model Hessian
    ``hess f + I/t`` is positive definite and the step lowers the objective (else the point is kept).
    Returns ``(prox, value)``.
    """
    t = check_positive("t", t)
    xa = np.atleast_2d(np.asarray(x, dtype=float))
    y = np.array(np.atleast_2d(np.asarray(y0, dtype=float)))
    if xa.shape != y.shape:
        raise ValueError(f"x and y0 must have the same shape (M, n), got {xa.shape} and {y.shape}")
    n = y.shape[1]

    def objective(yy: FloatArray) -> FloatArray:
        return np.asarray(f(*yy.T), dtype=float) + np.sum((xa - yy) ** 2, axis=1) / (2.0 * t)

    phi = objective(y)
    for _ in range(int(n_iter)):
        gs = cast(Sequence[ArrayLike], grad_f(*y.T))
        g = np.stack([np.asarray(c, dtype=float) for c in gs], axis=1) + (y - xa) / t
        hs = cast(Sequence[Sequence[ArrayLike]], hess_f(*y.T))
        H = np.empty((y.shape[0], n, n))
        for i in range(n):
            for j in range(n):
                H[:, i, j] = np.asarray(hs[i][j], dtype=float) + (1.0 / t if i == j else 0.0)
        pd = np.all(np.linalg.eigvalsh(H) > 0, axis=1)
        step = np.zeros_like(y)
        if pd.any():
            step[pd] = np.linalg.solve(H[pd], g[pd][..., None])[..., 0]
        y_new = y - step
        phi_new = objective(y_new)
        better = pd & (phi_new <= phi)
        y[better] = y_new[better]
        phi[better] = phi_new[better]
    return y, phi
