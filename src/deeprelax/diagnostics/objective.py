r"""The deterministic objective every diagnostic measures: loss, gradient and Hessian-vector products.

Given a model with trainable parameters flattened into one vector w ∈ R^p, a loss function ``loss_fn(outputs,
targets)`` that returns the **mean** over its batch, and a fixed list of batches B_1, …, B_m (together N
examples), the objective is the mean loss over all of them

.. math::  f(w) = \frac{1}{N} \sum_{j=1}^{m} |B_j|\, \ell_{B_j}(w),

evaluated batch by batch (memory stays that of one batch). The network is evaluated **in eval mode** with
its BatchNorm statistics **frozen**: BatchNorm layers normalise with the running mean and variance stored in
the model (the training harness re-estimates them on training data, its "dry feed", before every checkpoint)
and dropout is off, so f is a deterministic function of w alone. The buffers are captured when the
:class:`Objective` is built and never updated.

Derivatives, all exact (up to floating-point rounding):

- ``grad(w)`` = ∇f(w), by reverse mode;
- ``hvp(v, w)`` = ∇²f(w)·v, by reverse-over-forward (``method="reverse-over-forward"``, the default: the
  gradient of the directional derivative ⟨∇f(w), v⟩ = d/dt f(w + tv)|₀, itself computed by forward mode,
  ``torch.func.jvp``), by double backward (``method="autograd"``: the gradient of ⟨∇f(w), v⟩ with ∇f from a
  first backward pass) or by forward-over-reverse (``method="func"``: ``torch.func.jvp`` of
  ``torch.func.grad``). All three are the same exact product (they differ by floating-point rounding only)
  and cost a small multiple (≈ 2–3) of one gradient. The default is the cheapest on convolutional nets:
  PyTorch's convolution double backward always computes the gradient with respect to the convolution's
  *input* (``_convolution_double_backward`` ignores its output mask), which for the first layer is the
  gradient with respect to the images, and reverse-over-forward never forms it (docs/diagnostics.md, Cost);
- ``per_sample_grads(x, y, w)`` = the rows ∇ℓ_k(w) of single examples, by ``torch.func.vmap(grad(·))``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jvp, vmap

LossFn = Callable[[Tensor, Tensor], Tensor]
Batches = Iterable[tuple[Tensor, Tensor]]

__all__ = ["Batches", "LossFn", "Objective", "make_batches"]

HVP_METHODS = ("reverse-over-forward", "autograd", "func")


def make_batches(
    x: Tensor, y: Tensor, *, batch_size: int = 1000, n: int | None = None, seed: int | None = None
) -> list[tuple[Tensor, Tensor]]:
    """Split ``(x, y)`` into batches of ``batch_size``; with ``n``, keep only ``n`` examples: the first ``n``
    when ``seed`` is ``None``, otherwise a subset drawn without replacement by ``torch.randperm`` with a
    generator seeded by ``seed`` (the same seed gives the same subset)."""
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if n is not None:
        if not isinstance(n, int) or not 1 <= n <= len(x):
            raise ValueError(f"n must be an integer in [1, {len(x)}], got {n!r}")
        if seed is None:
            idx = torch.arange(n)
        else:
            idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(int(seed)))[:n]
            idx = idx.sort().values
        x, y = x[idx], y[idx]
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]


class Objective:
    """f(w) = mean of ``loss_fn`` over ``data`` (see the module docstring), with its derivatives.

    Args:
        model: the network; its trainable parameters define w (in ``named_parameters`` order), its buffers
            (BatchNorm statistics) are captured now and frozen.
        loss_fn: ``loss_fn(outputs, targets)`` → the *mean* loss over the batch (e.g. ``F.cross_entropy``).
        data: an iterable of ``(inputs, targets)`` batches; it is materialised into a list once.
        hvp_method: ``"reverse-over-forward"`` (default: the gradient of a ``torch.func.jvp``; it needs
            forward-mode formulas for every operation of the model, which PyTorch's standard layers have),
            ``"autograd"`` (double backward) or ``"func"`` (``torch.func.jvp`` over ``grad``).

    ``w`` arguments default to the model's parameters at construction (:attr:`w0`); the model itself is never
    modified.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: Batches,
        *,
        hvp_method: str = "reverse-over-forward",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise ValueError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        if hvp_method not in HVP_METHODS:
            raise ValueError(f"hvp_method must be one of {HVP_METHODS}, got {hvp_method!r}")
        batches = []
        for item in data:
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise ValueError("data must be an iterable of (inputs, targets) pairs")
            xb, yb = item
            if not (isinstance(xb, Tensor) and isinstance(yb, Tensor)) or len(xb) != len(yb) or len(xb) == 0:
                raise ValueError("data: every batch must be a pair of non-empty tensors of equal length")
            batches.append((xb, yb))
        if not batches:
            raise ValueError("data must hold at least one batch")
        named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("model has no trainable parameters")
        self.model = model
        self.loss_fn = loss_fn
        self.hvp_method = hvp_method
        self.batches = batches
        self.n = sum(len(xb) for xb, _ in batches)
        self.names = [k for k, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.numels = [p.numel() for _, p in named]
        self.p = sum(self.numels)
        self.buffers = {k: b.detach().clone() for k, b in model.named_buffers()}
        self.w0 = torch.cat([p.detach().reshape(-1) for _, p in named]).clone()
        self.dtype, self.device = self.w0.dtype, self.w0.device
        self.n_loss = self.n_grad = self.n_hvp = 0  # full-data evaluations so far (for cost reports)

    # -- parameters ---------------------------------------------------------------------------------------
    def unflatten(self, w: Tensor) -> dict[str, Tensor]:
        """The flat vector ``w`` as a ``{name: tensor}`` dict (views of ``w``)."""
        if w.shape != (self.p,):
            raise ValueError(f"w must be a vector of length {self.p}, got shape {tuple(w.shape)}")
        return {k: t.view(s) for k, t, s in zip(self.names, w.split(self.numels), self.shapes)}

    def flatten(self, tensors: Iterable[Tensor]) -> Tensor:
        return torch.cat([t.reshape(-1) for t in tensors])

    def _w(self, w: Tensor | None) -> Tensor:
        if w is None:
            return self.w0
        if w.shape != (self.p,):
            raise ValueError(f"w must be a vector of length {self.p}, got shape {tuple(w.shape)}")
        return w.to(self.dtype)

    @contextmanager
    def _eval_mode(self) -> Iterator[None]:
        was = self.model.training
        self.model.eval()
        try:
            yield
        finally:
            self.model.train(was)

    def _batch_loss(self, w: Tensor, xb: Tensor, yb: Tensor) -> Tensor:
        out = functional_call(self.model, {**self.buffers, **self.unflatten(w)}, (xb,))
        return self.loss_fn(out, yb)

    # -- evaluations --------------------------------------------------------------------------------------
    def loss(self, w: Tensor | None = None) -> float:
        """f(w)."""
        w = self._w(w)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        with torch.no_grad(), self._eval_mode():
            for xb, yb in self.batches:
                total += self._batch_loss(w, xb, yb).double() * len(xb)
        self.n_loss += 1
        return float(total) / self.n

    def loss_and_grad(self, w: Tensor | None = None) -> tuple[float, Tensor]:
        """(f(w), ∇f(w)); the gradient has the dtype of the parameters."""
        w = self._w(w).detach().requires_grad_(True)
        total, g = 0.0, torch.zeros_like(w)
        with self._eval_mode():
            for xb, yb in self.batches:
                lb = self._batch_loss(w, xb, yb) * (len(xb) / self.n)
                (gb,) = torch.autograd.grad(lb, w)
                g += gb
                total += float(lb.detach())
        self.n_grad += 1
        return total, g

    def grad(self, w: Tensor | None = None) -> Tensor:
        """∇f(w)."""
        return self.loss_and_grad(w)[1]

    def hvp(self, v: Tensor, w: Tensor | None = None) -> Tensor:
        """∇²f(w)·v (``v`` any dtype; the result has the parameters' dtype)."""
        w = self._w(w).detach()
        if v.shape != (self.p,):
            raise ValueError(f"v must be a vector of length {self.p}, got shape {tuple(v.shape)}")
        v = v.to(self.dtype)
        out = torch.zeros_like(w)
        with self._eval_mode():
            for xb, yb in self.batches:
                scale = len(xb) / self.n
                if self.hvp_method == "reverse-over-forward":

                    def f_of(z: Tensor, xb: Tensor = xb, yb: Tensor = yb) -> Tensor:
                        return self._batch_loss(z, xb, yb)

                    wg = w.requires_grad_(True)
                    _, db = jvp(f_of, (wg,), (v,))  # type: ignore[misc]  # db = ⟨∇f_B(w), v⟩, forward mode
                    (hb,) = torch.autograd.grad(db, wg)
                    w = w.detach()
                elif self.hvp_method == "autograd":
                    wg = w.requires_grad_(True)
                    (gb,) = torch.autograd.grad(self._batch_loss(wg, xb, yb), wg, create_graph=True)
                    (hb,) = torch.autograd.grad(gb, wg, grad_outputs=v)
                    w = w.detach()
                else:

                    def g_of(u: Tensor, xb: Tensor = xb, yb: Tensor = yb) -> Tensor:
                        return grad(lambda z: self._batch_loss(z, xb, yb))(u)

                    _, hb = jvp(g_of, (w,), (v,))  # type: ignore[misc]  # torch.func stubs: 2-tuple
                out += hb.detach() * scale
        self.n_hvp += 1
        return out

    def per_sample_grads(self, x: Tensor, y: Tensor, w: Tensor | None = None) -> Tensor:
        """The matrix whose row k is ∇ℓ(w; x_k, y_k), shape ``(len(x), p)``, by ``vmap(grad)``."""
        w = self._w(w).detach()

        def single(u: Tensor, xk: Tensor, yk: Tensor) -> Tensor:
            return self._batch_loss(u, xk.unsqueeze(0), yk.unsqueeze(0))

        with self._eval_mode():
            return vmap(grad(single), in_dims=(None, 0, 0))(w, x, y)
