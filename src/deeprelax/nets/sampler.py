"""Minibatch sampling as the reference runs do it: indices drawn uniformly *with replacement*, each minibatch
independent of the others (``replacement=True``), or shuffled passes over the data (``replacement=False``: the
index stream is a concatenation of independent random permutations of 0…n−1, cut into batches of equal size).

The sampler owns its ``torch.Generator``; :meth:`state_dict` captures everything needed to continue the exact
same stream after a restart.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class MinibatchSampler:
    """An endless stream of index minibatches over a data set of ``n`` examples."""

    def __init__(self, n: int, batch_size: int, *, replacement: bool = True, seed: int = 0) -> None:
        if n < 1:
            raise ValueError(f"n must be positive, got {n!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size!r}")
        self.n, self.batch_size, self.replacement = int(n), int(batch_size), bool(replacement)
        self.generator = torch.Generator().manual_seed(int(seed))
        self._perm = torch.empty(0, dtype=torch.int64)
        self._pos = 0

    def next(self) -> Tensor:
        """The next minibatch of ``batch_size`` indices (int64, CPU)."""
        if self.replacement:
            return torch.randint(self.n, (self.batch_size,), generator=self.generator)
        parts, need = [], self.batch_size
        while need:
            if self._pos == len(self._perm):
                self._perm, self._pos = torch.randperm(self.n, generator=self.generator), 0
            take = min(need, len(self._perm) - self._pos)
            parts.append(self._perm[self._pos : self._pos + take])
            self._pos += take
            need -= take
        return torch.cat(parts)

    __next__ = next

    def __iter__(self) -> MinibatchSampler:
        return self

    def state_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "batch_size": self.batch_size,
            "replacement": self.replacement,
            "generator": self.generator.get_state(),
            "perm": self._perm.clone(),
            "pos": self._pos,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("n", "batch_size", "replacement"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"sampler state has {key}={state[key]!r}, this sampler has {getattr(self, key)!r}"
                )
        self.generator.set_state(state["generator"])
        self._perm, self._pos = state["perm"].clone(), int(state["pos"])
