"""Data sets of the experiments, loaded into memory as float tensors (no torchvision).

=================  ===========================================  ==========================================
name               files                                        preprocessing
=================  ===========================================  ==========================================
``mnist``          4 IDX files (raw or .gz)                     x/255, standardised by train mean and std
``fashion-mnist``  4 IDX files (raw or .gz)                     same
``mnist-subset``   bundled in the package (8000 + 2000 images)  same
``cifar10``        official python/binary batches or .tar.gz    per-image normalisation, ZCA (fit on train)
=================  ===========================================  ==========================================

Files come from ``data_dir`` when given (``--data-dir DIR``), otherwise from the cache
(:func:`deeprelax.nets.download.cache_dir`), downloading what is missing. Every IDX file is checked against
the pinned sha256 of its *uncompressed* content (raw files, the official .gz and recompressed copies
all pass); CIFAR archives against the sha256 of the official archive. A mismatch is an error naming the
file; no file is ever overwritten.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from deeprelax.nets.download import cache_dir, check_sha256, fetch, sha256_bytes
from deeprelax.nets.idx import DataFileError, parse_idx, read_bytes

IDX_PARTS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class IdxSpec:
    """An MNIST-format data set: where to download it and the sha256 of each uncompressed IDX file."""

    urls: tuple[str, ...]
    content_sha256: dict[str, str]
    prefix: str = ""  # file-name prefix (the bundled subset uses "mnist-subset-")
    bundled: bool = False


@dataclass(frozen=True)
class CifarSpec:
    archives: dict[str, tuple[str, str]]  # format → (url, sha256 of the archive)


MNIST = IdxSpec(
    urls=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    content_sha256={
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
)
FASHION_MNIST = IdxSpec(
    urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    content_sha256={
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
)
# Written by bench/make_mnist_subset.py from the canonical MNIST files (the first 800 training and the first
# 200 test images of each digit, in file order).
MNIST_SUBSET = IdxSpec(
    urls=(),
    prefix="mnist-subset-",
    bundled=True,
    content_sha256={
        "train-images-idx3-ubyte": "92e265b7414886ac52594f31a52609edbfc8c4bfa17dbe9e48c742312f417caa",
        "train-labels-idx1-ubyte": "f7122ad9ee966f9c5014cbeac576e34fabb37bb75738f2f277c6fd4a7ba36fd4",
        "t10k-images-idx3-ubyte": "780e99a56e963f3affe4791a03545a6ddbdc0904dd880c7f3c50753282177303",
        "t10k-labels-idx1-ubyte": "b547e409b08f1d55c77b7f0964dfb27202f97c41c014d9427a3acecfcf6a7129",
    },
)
CIFAR10 = CifarSpec(
    archives={
        "python": (
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        ),
        "binary": (
            "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
        ),
    }
)

DATASETS: dict[str, IdxSpec | CifarSpec] = {
    "mnist": MNIST,
    "fashion-mnist": FASHION_MNIST,
    "mnist-subset": MNIST_SUBSET,
    "cifar10": CIFAR10,
}
IMAGE_SHAPES = {
    "mnist": (1, 28, 28),
    "fashion-mnist": (1, 28, 28),
    "mnist-subset": (1, 28, 28),
    "cifar10": (3, 32, 32),
}


@dataclass
class ImageDataset:
    """Preprocessed images (float32, N×C×H×W) and int64 labels of a train and a test split."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int = 10
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError("images and labels differ in length")

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> ImageDataset:
        """The first ``n_train`` training and ``n_test`` test examples (for quick runs and tests)."""
        return ImageDataset(
            self.name,
            self.x_train[:n_train],
            self.y_train[:n_train],
            self.x_test[:n_test],
            self.y_test[:n_test],
            self.num_classes,
            dict(self.info),
        )


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    progress: bool = True,
    zca_eps: float = 1e-2,
) -> ImageDataset:
    """Load the data set ``name`` (see :data:`DATASETS`) from ``data_dir``, the package or the cache."""
    key = name.lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    spec = DATASETS[key]
    if isinstance(spec, IdxSpec):
        x_tr, y_tr, x_te, y_te = load_idx_arrays(spec, key, data_dir, download=download, progress=progress)
        return _standardize(key, x_tr, y_tr, x_te, y_te)
    return load_cifar10(data_dir, download=download, progress=progress, zca_eps=zca_eps)


def _verify_content(expected: str) -> Callable[[Path], None]:
    def verify(path: Path) -> None:
        got = sha256_bytes(read_bytes(path))
        if got != expected:
            raise DataFileError(
                f"{path} is corrupt or not the expected file: sha256 of its content {got}, "
                f"expected {expected}"
            )

    return verify


def bundled_data_dir() -> Path:
    """The folder of the data shipped inside the package (the MNIST subset)."""
    return Path(str(importlib.resources.files("deeprelax") / "data"))


def _find_local(folder: Path, stem: str) -> Path | None:
    for cand in (folder / stem, folder / f"{stem}.gz"):
        if cand.is_file():
            return cand
    # the official names with a dot (t10k-images.idx3-ubyte) appear in some mirrors
    dotted = stem.replace("-idx", ".idx")
    for cand in (folder / dotted, folder / f"{dotted}.gz"):
        if cand.is_file():
            return cand
    return None


def load_idx_arrays(
    spec: IdxSpec,
    key: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four raw uint8 arrays (train images, train labels, test images, test labels), verified."""
    arrays = []
    for part in IDX_PARTS:
        stem = spec.prefix + part
        expected = spec.content_sha256[part]
        if data_dir is not None or spec.bundled:
            folder = Path(data_dir) if data_dir is not None else bundled_data_dir()
            path = _find_local(folder, stem)
            if path is None:
                raise DataFileError(f"{key}: neither {stem} nor {stem}.gz found in {folder}")
            _verify_content(expected)(path)
        else:
            folder = cache_dir() / key
            path = folder / f"{stem}.gz"
            if not path.exists() and not download:
                raise DataFileError(f"{key}: {path} is missing and downloading is switched off")
            path = fetch(
                [u + f"{stem}.gz" for u in spec.urls], path, _verify_content(expected), progress=progress
            )
        arrays.append(parse_idx(read_bytes(path), str(path)))
    x_tr, y_tr, x_te, y_te = arrays
    if x_tr.ndim != 3 or x_te.ndim != 3 or len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise DataFileError(
            f"{key}: image/label files disagree: {x_tr.shape}, {y_tr.shape}, {x_te.shape}, {y_te.shape}"
        )
    return x_tr, y_tr, x_te, y_te


def _standardize(
    key: str, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray
) -> ImageDataset:
    xtr = torch.from_numpy(x_tr).float().div_(255.0).unsqueeze(1)
    xte = torch.from_numpy(x_te).float().div_(255.0).unsqueeze(1)
    mean, std = float(xtr.mean()), float(xtr.std())
    xtr.sub_(mean).div_(std)
    xte.sub_(mean).div_(std)
    return ImageDataset(
        key,
        xtr,
        torch.from_numpy(y_tr.astype(np.int64)),
        xte,
        torch.from_numpy(y_te.astype(np.int64)),
        info={"mean": mean, "std": std},
    )


def load_cifar10(
    data_dir: str | Path | None = None, *, download: bool = True, progress: bool = True, zca_eps: float = 1e-2
) -> ImageDataset:
    """CIFAR-10 with the reference preprocessing: per-image normalisation, then ZCA whitening fit on train."""
    from deeprelax.nets.cifar import read_cifar10
    from deeprelax.nets.zca import ZCA, per_image_normalize

    if data_dir is not None:
        source = Path(data_dir)
        for url, sha in CIFAR10.archives.values():
            arch = source / url.rsplit("/", 1)[1]
            if arch.is_file():
                check_sha256(arch, sha)
                source = arch
                break
    else:
        url, sha = CIFAR10.archives["python"]
        dest = cache_dir() / "cifar10" / url.rsplit("/", 1)[1]
        if not dest.exists() and not download:
            raise DataFileError(f"cifar10: {dest} is missing and downloading is switched off")
        source = fetch([url], dest, lambda p: check_sha256(p, sha), progress=progress)
    x_tr, y_tr, x_te, y_te = read_cifar10(source)
    x_tr_n = per_image_normalize(x_tr, dtype=np.float32)
    zca = ZCA(eps=zca_eps).fit(x_tr_n)
    shape = (-1, 3, 32, 32)
    xtr = torch.from_numpy(zca.transform(x_tr_n)).reshape(shape)
    xte = torch.from_numpy(zca.transform(per_image_normalize(x_te, dtype=np.float32))).reshape(shape)
    return ImageDataset(
        "cifar10", xtr, torch.from_numpy(y_tr), xte, torch.from_numpy(y_te), info={"zca_eps": zca_eps}
    )
