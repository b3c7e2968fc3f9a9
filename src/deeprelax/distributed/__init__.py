"""Process-group plumbing for the parallel optimizers: who am I, average these tensors, do we agree.

Nothing here knows about optimizers. ``group=None`` means the default process group; when
``torch.distributed`` is not initialised (or not available) the world is one process and every function is
a local no-op, so the parallel optimizers run unchanged in a single process.

The mean is computed as SUM then divide (``ReduceOp.AVG`` is not on every backend), on one flat buffer per
(device, dtype), so one outer step costs one collective however many tensors the model has.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed(group: Any = None) -> bool:
    """True when a process group is initialised and has more than one member."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1


def rank_and_size(group: Any = None) -> tuple[int, int]:
    """(rank, world size) in ``group``; (0, 1) without an initialised process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


@dataclass
class MeanHandle:
    """An all-reduce in flight (or, in one process, already finished)."""

    shapes: list[torch.Size]
    order: list[tuple[int, ...]]  # indices of the tensors in each flat buffer
    buffers: list[Tensor]
    works: list[Any] = field(default_factory=list)
    world_size: int = 1
    done: bool = False


def start_mean(tensors: list[Tensor], group: Any = None, *, async_op: bool = True) -> MeanHandle:
    """Start averaging ``tensors`` over the processes of ``group`` (copies them into flat buffers first)."""
    _, size = rank_and_size(group)
    buckets: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(tensors):
        buckets.setdefault((t.device, t.dtype), []).append(i)
    order, buffers, works = [], [], []
    for idx in buckets.values():
        flat = torch.cat([tensors[i].detach().reshape(-1) for i in idx]) if idx else torch.zeros(0)
        order.append(tuple(idx))
        buffers.append(flat)
        if size > 1:
            works.append(dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group, async_op=async_op))
    return MeanHandle([t.shape for t in tensors], order, buffers, works, size)


def finish_mean(handle: MeanHandle) -> list[Tensor]:
    """Wait for :func:`start_mean` and return the averaged tensors, in the order given."""
    for w in handle.works:
        if w is not None:
            w.wait()
    out: list[Tensor | None] = [None] * len(handle.shapes)
    for idx, flat in zip(handle.order, handle.buffers):
        if handle.world_size > 1 and not handle.done:
            flat.div_(handle.world_size)
        offset = 0
        for i in idx:
            n = handle.shapes[i].numel()
            out[i] = flat[offset : offset + n].view(handle.shapes[i])
            offset += n
    handle.done = True
    return out  # type: ignore[return-value]


def mean(tensors: list[Tensor], group: Any = None) -> list[Tensor]:
    """The average of ``tensors`` over the processes of ``group`` (blocking)."""
    return finish_mean(start_mean(tensors, group, async_op=False))


def first_mismatch(reference: Any, other: Any, path: str = "") -> str | None:
    """The path of the first difference between two nested dict/list structures, or None."""
    if isinstance(reference, dict) and isinstance(other, dict):
        for k in list(reference) + [k for k in other if k not in reference]:
            if k not in reference or k not in other:
                return f"{path}{k} (present on one side only)"
            found = first_mismatch(reference[k], other[k], f"{path}{k}.")
            if found:
                return found
        return None
    if isinstance(reference, (list, tuple)) and isinstance(other, (list, tuple)):
        if len(reference) != len(other):
            return f"{path.rstrip('.')} (length {len(reference)} vs {len(other)})"
        for i, (a, b) in enumerate(zip(reference, other)):
            found = first_mismatch(a, b, f"{path}{i}.")
            if found:
                return found
        return None
    return None if reference == other else f"{path.rstrip('.')} ({reference!r} vs {other!r})"


def check_same(summary: Any, group: Any = None, *, what: str = "configuration") -> None:
    """One collective: raise ``ValueError`` on every rank if ``summary`` differs from rank 0's.

    ``summary`` must be picklable (plain numbers, strings, lists, dicts). The message names the first
    differing entry and the rank that has it.
    """
    if not is_distributed(group):
        return
    rank, size = rank_and_size(group)
    gathered: list[Any] = [None] * size
    dist.all_gather_object(gathered, summary, group=group)
    for r in range(1, size):
        found = first_mismatch(gathered[0], gathered[r])
        if found:
            raise ValueError(
                f"the {what} differs between ranks at {found}: first value rank 0, second rank {r}"
            )


def default_timeout() -> datetime.timedelta:
    """The collective timeout the training harness uses (a missing peer ends with an error, not a hang)."""
    return datetime.timedelta(minutes=5)


def launched_world_size() -> int:
    """WORLD_SIZE set by ``torchrun`` / ``torch.distributed.run`` (1 when not launched by it)."""
    import os

    try:
        return max(int(os.environ.get("WORLD_SIZE", "1")), 1)
    except ValueError:
        return 1


def init_from_env(device: str = "cpu", timeout: datetime.timedelta | None = None) -> bool:
    """Join the process group that ``torchrun`` described in the environment (gloo on CPU, NCCL on CUDA).

    Returns False (and does nothing) when not launched with more than one process or already initialised.
    A peer that does not arrive within ``timeout`` (default :func:`default_timeout`, or
    ``$DEEPRELAX_DIST_TIMEOUT`` seconds) ends with an error instead of a hang.
    """
    import os

    if launched_world_size() <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    if timeout is None:
        seconds = os.environ.get("DEEPRELAX_DIST_TIMEOUT")
        timeout = datetime.timedelta(seconds=float(seconds)) if seconds else default_timeout()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    # The store: torchrun's agent hosts one (all ranks are clients); a hand-made launch has rank 0 host it.
    # Keys go under the restart attempt, so a group restarted by torchrun never reads its dead
    # predecessors' addresses (gloo's full-mesh connect would otherwise dial them and fail).
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store: dist.Store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        world,
        is_master=not agent_store and rank == 0,
        timeout=timeout,
    )
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"deeprelax/attempt-{attempt}", store)
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group(
            "nccl",
            store=store,
            rank=rank,
            world_size=world,
            timeout=timeout,
            device_id=torch.device("cuda", local),
        )
    else:
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world, timeout=timeout)
    return True


def barrier(group: Any = None) -> None:
    if is_distributed(group):
        dist.barrier(group)


def broadcast_object(obj: Any, src: int = 0, group: Any = None) -> Any:
    """``obj`` of rank ``src`` on every rank."""
    if not is_distributed(group):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, group=group)
    return box[0]


def gather_objects(obj: Any, dst: int = 0, group: Any = None) -> list[Any] | None:
    """The list of every rank's ``obj`` on rank ``dst`` (``None`` elsewhere); ``[obj]`` in one process."""
    if not is_distributed(group):
        return [obj]
    rank, size = rank_and_size(group)
    out: list[Any] | None = [None] * size if rank == dst else None
    dist.gather_object(obj, out, dst=dst, group=group)
    return out


def all_true(flag: bool, group: Any = None) -> bool:
    """True on every rank iff ``flag`` is True on every rank (one tiny all-reduce)."""
    if not is_distributed(group):
        return bool(flag)
    t = torch.tensor([0 if flag else 1], dtype=torch.int64)
    if dist.get_backend(group) == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
    return int(t.item()) == 0
