"""IDX files, verified loading, the bundled MNIST subset and cache downloads (over file:// URLs; nothing
is downloaded from the network)."""

import gzip
import io
import os
from pathlib import Path

import numpy as np
import pytest

from deeprelax.nets import datasets
from deeprelax.nets.datasets import IDX_PARTS, IdxSpec, load_dataset, load_idx_arrays
from deeprelax.nets.download import fetch, sha256_bytes, sha256_file
from deeprelax.nets.idx import DataFileError, encode_idx, parse_idx, read_idx, write_idx


def _shared_mnist() -> Path:
    """Canonical MNIST: ``$DEEPRELAX_MNIST_DIR``, else ``shared/data/mnist`` in or beside the checkout."""
    if os.environ.get("DEEPRELAX_MNIST_DIR"):
        return Path(os.environ["DEEPRELAX_MNIST_DIR"])
    root = Path(__file__).resolve().parents[1]
    candidates = [root / "shared" / "data" / "mnist", root.parent / "shared" / "data" / "mnist"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


SHARED_MNIST = _shared_mnist()


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((5, 3, 4)) * 50).astype(dtype)
    path = write_idx(tmp_path / f"a-idx3-ubyte{suffix}", arr)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_idx_header_layout_is_the_mnist_one():
    # magic 0x00000803 for a 3-d ubyte array, then big-endian sizes
    data = encode_idx(np.zeros((2, 28, 28), np.uint8))
    assert data[:4] == b"\x00\x00\x08\x03"
    assert data[4:16] == (2).to_bytes(4, "big") + (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
    assert len(data) == 16 + 2 * 28 * 28


def test_truncated_and_foreign_files_are_clear_errors(tmp_path):
    data = encode_idx(np.arange(100, dtype=np.uint8).reshape(10, 10))
    with pytest.raises(DataFileError, match="truncated"):
        parse_idx(data[:-3], "x")
    with pytest.raises(DataFileError, match="not an IDX file"):
        parse_idx(b"PK\x03\x04" + data, "x")
    gz = gzip.compress(data)
    (tmp_path / "t.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DataFileError, match="truncated or corrupt"):
        read_idx(tmp_path / "t.gz")


def _write_tiny_set(folder: Path, prefix="", compress=True, n_train=30, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for part, arr in zip(IDX_PARTS, arrays):
        write_idx(folder / (prefix + part + (".gz" if compress else "")), arr)
        hashes[part] = sha256_bytes(encode_idx(arr))
    return arrays, hashes


@pytest.mark.parametrize("compress", [True, False])
def test_load_from_local_folder_raw_or_gz(tmp_path, compress):
    arrays, hashes = _write_tiny_set(tmp_path, compress=compress)
    spec = IdxSpec(urls=(), content_sha256=hashes)
    got = load_idx_arrays(spec, "tiny", tmp_path)
    for a, b in zip(arrays, got):
        np.testing.assert_array_equal(a, b)


def test_content_hash_mismatch_names_the_file(tmp_path):
    _, hashes = _write_tiny_set(tmp_path)
    bad = dict(hashes, **{"t10k-labels-idx1-ubyte": "0" * 64})
    with pytest.raises(DataFileError, match="t10k-labels-idx1-ubyte"):
        load_idx_arrays(IdxSpec(urls=(), content_sha256=bad), "tiny", tmp_path)


def test_missing_file_is_reported(tmp_path):
    _, hashes = _write_tiny_set(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte"):
        load_idx_arrays(IdxSpec(urls=(), content_sha256=hashes), "tiny", tmp_path)


def test_bundled_subset_is_verified_and_balanced():
    d = load_dataset("mnist-subset")
    assert d.x_train.shape == (8000, 1, 28, 28) and d.x_test.shape == (2000, 1, 28, 28)
    assert d.y_train.bincount().tolist() == [800] * 10
    assert d.y_test.bincount().tolist() == [200] * 10
    # standardised with the training mean/std
    assert abs(float(d.x_train.mean())) < 1e-4 and abs(float(d.x_train.std()) - 1) < 1e-3
    total = sum(f.stat().st_size for f in datasets.bundled_data_dir().glob("mnist-subset-*.gz"))
    assert total < 2_500_000


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="canonical MNIST files not on this machine")
def test_bundled_subset_is_the_documented_selection_of_canonical_mnist():
    """bench/make_mnist_subset.py's rule: the first 800 train / 200 test images of each digit, in order."""
    x_tr, y_tr, x_te, y_te = load_idx_arrays(datasets.MNIST, "mnist", SHARED_MNIST)
    s = load_idx_arrays(datasets.MNIST_SUBSET, "mnist-subset")
    for x, y, sx, sy, k in ((x_tr, y_tr, s[0], s[1], 800), (x_te, y_te, s[2], s[3], 200)):
        idx = np.sort(np.concatenate([np.flatnonzero(y == c)[:k] for c in range(10)]))
        np.testing.assert_array_equal(sx, x[idx])
        np.testing.assert_array_equal(sy, y[idx])


# ---- downloads into the cache, over file:// URLs --------------------------------------------------------


def test_fetch_downloads_verifies_and_renames(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.bin").write_bytes(b"hello deeprelax")
    expected = sha256_file(src / "f.bin")
    dest = tmp_path / "cache" / "f.bin"

    def verify(p):
        if sha256_file(p) != expected:
            raise DataFileError("bad")

    out = fetch([f"file://{src}/missing.bin", f"file://{src}/f.bin"], dest, verify, progress=False)
    assert out == dest and dest.read_bytes() == b"hello deeprelax"
    assert [p.name for p in dest.parent.iterdir()] == ["f.bin"]  # no temporary left over


def test_fetch_never_overwrites_a_corrupt_file(tmp_path):
    src = tmp_path / "good.bin"
    src.write_bytes(b"good")
    dest = tmp_path / "cache" / "good.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"goo")  # truncated earlier download

    def verify(p):
        if Path(p).read_bytes() != b"good":
            raise DataFileError(f"{p} is truncated or corrupt")

    with pytest.raises(DataFileError, match="not overwritten"):
        fetch([f"file://{src}"], dest, verify, progress=False)
    assert dest.read_bytes() == b"goo"


def test_failed_verification_leaves_nothing(tmp_path):
    src = tmp_path / "evil.bin"
    src.write_bytes(b"not what we pinned")
    dest = tmp_path / "cache" / "x.bin"

    def verify(p):
        raise DataFileError("sha256 mismatch")

    with pytest.raises(DataFileError, match="could not download"):
        fetch([f"file://{src}"], dest, verify, progress=False)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_truncated_transfer_is_detected(tmp_path, monkeypatch):
    class Resp(io.BytesIO):
        headers = {"Content-Length": "100"}

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: Resp(b"only 20 bytes here!!"))
    dest = tmp_path / "c" / "f"
    with pytest.raises(DataFileError, match="truncated"):
        fetch(["https://example.invalid/f"], dest, lambda p: None, progress=False)
    assert not dest.exists()


def test_load_dataset_downloads_into_the_cache(tmp_path, monkeypatch):
    """The real download path of load_dataset('mnist'), with the URLs pointing at files the test wrote."""
    server = tmp_path / "server"
    arrays, hashes = _write_tiny_set(server)
    spec = IdxSpec(urls=(f"file://{server}/",), content_sha256=hashes)
    monkeypatch.setitem(datasets.DATASETS, "mnist", spec)
    monkeypatch.setenv("DEEPRELAX_DATA", str(tmp_path / "cache"))
    d = load_dataset("mnist", progress=False)
    cached = sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir())
    assert cached == sorted(f"{p}.gz" for p in IDX_PARTS)
    np.testing.assert_array_equal(d.y_train.numpy(), arrays[1])
    # second call: served from the cache (the "server" may disappear)
    for f in server.iterdir():
        f.unlink()
    assert load_dataset("mnist", progress=False).x_train.shape == (30, 1, 28, 28)
    with pytest.raises(DataFileError, match="switched off"):
        monkeypatch.setenv("DEEPRELAX_DATA", str(tmp_path / "empty"))
        load_dataset("mnist", download=False)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("imagenet")
