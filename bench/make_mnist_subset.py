"""Write the MNIST subset bundled with the package (src/deeprelax/data/mnist-subset-*.gz).

Deterministic: from the canonical MNIST files it takes, in file order, the first ``--train-per-class``
training images and the first ``--test-per-class`` test images of each digit (800 and 200 by default:
8000 + 2000 images), keeps them in file order, and writes gzip'd IDX files with a zero timestamp, so
rerunning the script reproduces the files byte for byte. It prints the sha256 of each file's
uncompressed content, which ``deeprelax.nets.datasets.MNIST_SUBSET`` pins.

    python bench/make_mnist_subset.py --src "$DEEPRELAX_DATA/mnist" --out src/deeprelax/data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deeprelax.nets.datasets import IDX_PARTS, MNIST, load_idx_arrays
from deeprelax.nets.download import sha256_bytes
from deeprelax.nets.idx import encode_idx, write_idx


def first_per_class(labels: np.ndarray, k: int) -> np.ndarray:
    idx = np.concatenate([np.flatnonzero(labels == c)[:k] for c in range(10)])
    return np.sort(idx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True, help="folder with the canonical MNIST IDX files")
    ap.add_argument("--out", default="src/deeprelax/data")
    ap.add_argument("--train-per-class", type=int, default=800)
    ap.add_argument("--test-per-class", type=int, default=200)
    args = ap.parse_args()
    x_tr, y_tr, x_te, y_te = load_idx_arrays(MNIST, "mnist", args.src)
    i_tr, i_te = first_per_class(y_tr, args.train_per_class), first_per_class(y_te, args.test_per_class)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for part, arr in zip(IDX_PARTS, (x_tr[i_tr], y_tr[i_tr], x_te[i_te], y_te[i_te]), strict=True):
        path = write_idx(out / f"mnist-subset-{part}.gz", arr)
        print(
            f"{path}  {path.stat().st_size:8d} bytes  shape {arr.shape}  content sha256 "
            f"{sha256_bytes(encode_idx(arr))}"
        )


if __name__ == "__main__":
    main()
