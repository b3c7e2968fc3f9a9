"""CIFAR-10 readers for the official "python" (pickled) and "binary" batches, from a folder or the .tar.gz.

Python batches: ``data_batch_1 … data_batch_5`` and ``test_batch``, each a pickled dict with ``b"data"`` (a
uint8 array of shape (n, 3072), channel-major R, G, B planes of 32×32) and ``b"labels"`` (n ints in 0…9).
Binary batches: ``data_batch_1.bin … data_batch_5.bin`` and ``test_batch.bin``, each a sequence of 3073-byte
records (one label byte, then the 3072 pixel bytes in the same order).

The pickles are read with an unpickler that only admits numpy arrays and plain containers, so a tampered
batch cannot run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from deeprelax.nets.idx import DataFileError

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
RECORD = 1 + 3 * 32 * 32

_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}, which a data batch never needs")


def parse_python_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 3, 32, 32), labels int64 (n,)) from the bytes of one pickled batch."""
    try:
        d = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
        x = np.asarray(d[b"data"])
        y = np.asarray(d[b"labels"])
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise DataFileError(f"{source} is not a readable CIFAR-10 python batch ({exc})") from exc
    x = _as_uint8_pixels(x, source)
    if y.size and y.dtype.kind not in "iu":
        raise DataFileError(f"{source}: labels must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if x.ndim != 2 or x.shape[1] != 3072 or y.shape != (x.shape[0],):
        raise DataFileError(f"{source}: data {x.shape} / labels {y.shape} are not (n, 3072) / (n,)")
    return _check(x.reshape(-1, 3, 32, 32), y, source)


def parse_binary_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) from the bytes of one binary batch of 3073-byte records."""
    if len(data) == 0 or len(data) % RECORD:
        raise DataFileError(
            f"{source} is truncated or corrupt: {len(data)} bytes is not a multiple of {RECORD}"
        )
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    return _check(rec[:, 1:].reshape(-1, 3, 32, 32).copy(), rec[:, 0].astype(np.int64), source)


def _as_uint8_pixels(x: np.ndarray, source: str) -> np.ndarray:
    """The pixels as uint8; values that uint8 cannot hold exactly (1e6, -1, 0.5, NaN) are an error, never a
    silent wrap-around (``np.asarray(1e6, dtype=np.uint8)`` is 64)."""
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "iuf":
        raise DataFileError(f"{source}: pixels must be numbers 0…255 (uint8), got dtype {x.dtype}")
    if x.size:
        bad = ~np.isfinite(x) | (x < 0) | (x > 255) if x.dtype.kind == "f" else (x < 0) | (x > 255)
        if x.dtype.kind == "f":
            bad |= np.isfinite(x) & (x != np.round(x))
        if bad.any():
            v = x.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]]
            raise DataFileError(
                f"{source}: pixel value {v.item()!r} (dtype {x.dtype}) is not an integer in "
                f"0…255; CIFAR-10 pixels are uint8"
            )
    return x.astype(np.uint8)


def _check(x: np.ndarray, y: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DataFileError(f"{source}: labels outside 0…9")
    return x, y


def _batch_names(fmt: str) -> list[str]:
    suffix = ".bin" if fmt == "binary" else ""
    return [n + suffix for n in (*TRAIN_BATCHES, TEST_BATCH)]


def read_cifar10(source: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read CIFAR-10 as (x_train, y_train, x_test, y_test), images uint8 (n, 3, 32, 32).

    ``source`` is a ``.tar.gz`` of either official format, or a folder holding the batches directly or in
    ``cifar-10-batches-py`` / ``cifar-10-batches-bin`` (or one of those archives).
    """
    source = Path(source)
    blobs: tuple[str, dict[str, bytes]] | None
    if source.is_file():
        blobs = _from_tar(source)
    else:
        blobs = None
        for sub in (source, source / "cifar-10-batches-py", source / "cifar-10-batches-bin"):
            for fmt in ("python", "binary"):
                files = [sub / n for n in _batch_names(fmt)]
                if all(f.is_file() for f in files):
                    blobs = fmt, {f.name: f.read_bytes() for f in files}
                    break
            if blobs:
                break
        if blobs is None:
            for arch in ("cifar-10-python.tar.gz", "cifar-10-binary.tar.gz"):
                if (source / arch).is_file():
                    return read_cifar10(source / arch)
            raise DataFileError(f"no CIFAR-10 batches (python or binary) or archive found in {source}")
    fmt, data = blobs
    parse = parse_python_batch if fmt == "python" else parse_binary_batch
    names = _batch_names(fmt)
    parts = [parse(data[n], str(source / n)) for n in names]
    x_train = np.concatenate([p[0] for p in parts[:-1]])
    y_train = np.concatenate([p[1] for p in parts[:-1]])
    return x_train, y_train, parts[-1][0], parts[-1][1]


def _from_tar(path: Path) -> tuple[str, dict[str, bytes]]:
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            for fmt in ("python", "binary"):
                names = _batch_names(fmt)
                if all(n in members for n in names):
                    return fmt, {n: tar.extractfile(members[n]).read() for n in names}  # type: ignore[union-attr]
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataFileError(f"{path} is truncated or corrupt ({exc})") from exc
    raise DataFileError(f"{path} holds no complete set of CIFAR-10 batches")
