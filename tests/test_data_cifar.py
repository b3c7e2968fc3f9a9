"""CIFAR-10 readers (python and binary batches, folders and archives, files written here), the safe
unpickler, and the preprocessing: per-image normalisation and ZCA whitening against exact oracles."""

import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

from deeprelax.nets import datasets
from deeprelax.nets.cifar import RECORD, TEST_BATCH, TRAIN_BATCHES, read_cifar10
from deeprelax.nets.datasets import load_cifar10
from deeprelax.nets.download import sha256_file
from deeprelax.nets.idx import DataFileError
from deeprelax.nets.zca import ZCA, per_image_normalize

N_PER_BATCH = 4


def _batches(seed=0):
    rng = np.random.default_rng(seed)
    return {
        name: (
            rng.integers(0, 256, (N_PER_BATCH, 3072), dtype=np.uint8),
            rng.integers(0, 10, N_PER_BATCH).tolist(),
        )
        for name in (*TRAIN_BATCHES, TEST_BATCH)
    }


def _write_python(folder, batches):
    folder.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in batches.items():
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": y, b"data": x}, f)


def _write_binary(folder, batches):
    folder.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in batches.items():
        rec = np.concatenate([np.asarray(y, np.uint8)[:, None], x], axis=1)
        (folder / f"{name}.bin").write_bytes(rec.tobytes())


def _expected(batches):
    xs = [batches[n][0].reshape(-1, 3, 32, 32) for n in TRAIN_BATCHES]
    ys = [np.asarray(batches[n][1]) for n in TRAIN_BATCHES]
    return (
        np.concatenate(xs),
        np.concatenate(ys),
        batches[TEST_BATCH][0].reshape(-1, 3, 32, 32),
        np.asarray(batches[TEST_BATCH][1]),
    )


def _tar(folder, archive):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)


@pytest.mark.parametrize("fmt", ["python", "binary"])
@pytest.mark.parametrize("packed", [False, True])
def test_read_cifar10_both_formats_folder_and_archive(tmp_path, fmt, packed):
    batches = _batches()
    folder = tmp_path / ("cifar-10-batches-py" if fmt == "python" else "cifar-10-batches-bin")
    (_write_python if fmt == "python" else _write_binary)(folder, batches)
    source = tmp_path
    if packed:
        source = tmp_path / "c.tar.gz"
        _tar(folder, source)
    got = read_cifar10(source)
    for a, b in zip(got, _expected(batches)):
        np.testing.assert_array_equal(a, b)
    assert got[0].shape == (5 * N_PER_BATCH, 3, 32, 32) and got[1].dtype == np.int64


def test_binary_record_layout_is_label_then_rgb_planes(tmp_path):
    # one image whose red plane is 1, green 2, blue 3, label 7
    rec = np.concatenate([[7], np.full(1024, 1), np.full(1024, 2), np.full(1024, 3)]).astype(np.uint8)
    assert rec.size == RECORD
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name in (*TRAIN_BATCHES, TEST_BATCH):
        (folder / f"{name}.bin").write_bytes(rec.tobytes())
    x, y, _, _ = read_cifar10(tmp_path)
    assert y.tolist() == [7] * 5
    assert [int(x[0, c].mean()) for c in range(3)] == [1, 2, 3]


def test_truncated_binary_batch_is_an_error(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    _write_binary(folder, _batches())
    data = (folder / "data_batch_3.bin").read_bytes()
    (folder / "data_batch_3.bin").write_bytes(data[:-100])
    with pytest.raises(DataFileError, match="data_batch_3.bin is truncated"):
        read_cifar10(tmp_path)


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_python(folder, _batches())
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": _Boom(), b"labels": [0]}, f)
    with pytest.raises(DataFileError, match="not a readable CIFAR-10 python batch"):
        read_cifar10(tmp_path)


def test_missing_batches_and_corrupt_archive(tmp_path):
    with pytest.raises(DataFileError, match="no CIFAR-10 batches"):
        read_cifar10(tmp_path)
    bad = tmp_path / "x.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataFileError, match="truncated or corrupt"):
        read_cifar10(bad)


def test_per_image_normalisation():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (6, 3, 4, 4)).astype(np.uint8)
    z = per_image_normalize(x)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=1), 1, atol=1e-12)
    # invariant to affine changes of brightness/contrast of each image
    np.testing.assert_allclose(per_image_normalize(3.0 * x.astype(float) + 7.0), z, atol=1e-12)


@pytest.mark.parametrize("n", [50, 400])
def test_zca_is_the_symmetric_inverse_square_root_of_the_covariance(n):
    rng = np.random.default_rng(2)
    d = 12
    a = rng.standard_normal((d, d))
    x = rng.standard_normal((n, d)) @ a + 3.0
    eps = 1e-3
    zca = ZCA(eps=eps).fit(x, method="eigh")
    w = zca.matrix
    c = np.cov(x, rowvar=False, bias=True)
    # oracle: W = (C + εI)^(-1/2), symmetric positive definite, so W (C + εI) W = I
    np.testing.assert_allclose(w, w.T, atol=1e-12)
    np.testing.assert_allclose(w @ (c + eps * np.eye(d)) @ w, np.eye(d), atol=1e-9)
    # whitened training data: covariance C (C + εI)^(-1), the identity up to ε
    white = zca.transform(x, dtype=np.float64)
    lam = np.linalg.eigvalsh(c)
    np.testing.assert_allclose(
        np.sort(np.linalg.eigvalsh(np.cov(white, rowvar=False, bias=True))),
        np.sort(lam / (lam + eps)),
        atol=1e-9,
    )
    np.testing.assert_allclose(white.mean(axis=0), 0, atol=1e-9)


def test_zca_svd_path_equals_eigh_path_when_fewer_samples_than_dimensions():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 20))
    w_eigh = ZCA(eps=1e-2).fit(x, method="eigh").matrix
    w_svd = ZCA(eps=1e-2).fit(x, method="svd").matrix
    np.testing.assert_allclose(w_svd, w_eigh, atol=1e-9)


def test_zca_rejects_bad_eps_and_unfitted_use():
    with pytest.raises(ValueError, match="eps"):
        ZCA(eps=0)
    with pytest.raises(RuntimeError):
        ZCA().transform(np.zeros((2, 3)))


def test_load_cifar10_from_local_archive_checks_the_sha256(tmp_path, monkeypatch):
    folder = tmp_path / "build" / "cifar-10-batches-py"
    _write_python(folder, _batches())
    archive = tmp_path / "data" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    _tar(folder, archive)
    with pytest.raises(DataFileError, match="sha256"):  # not the official archive
        load_cifar10(archive.parent)
    url = datasets.CIFAR10.archives["python"][0]
    monkeypatch.setitem(datasets.CIFAR10.archives, "python", (url, sha256_file(archive)))
    d = load_cifar10(archive.parent)
    assert d.x_train.shape == (20, 3, 32, 32) and d.x_test.shape == (4, 3, 32, 32)
    assert d.x_train.dtype == torch.float32
    # ZCA-whitened training images: mean zero, unit variance along every direction of the data
    white = d.x_train.reshape(20, -1).double().numpy()
    np.testing.assert_allclose(white.mean(axis=0), 0, atol=1e-4)


def test_load_cifar10_downloads_into_the_cache(tmp_path, monkeypatch):
    folder = tmp_path / "build" / "cifar-10-batches-bin"
    _write_binary(folder, _batches(seed=5))
    archive = tmp_path / "server" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    _tar(folder, archive)
    monkeypatch.setitem(datasets.CIFAR10.archives, "python", (f"file://{archive}", sha256_file(archive)))
    monkeypatch.setenv("DEEPRELAX_DATA", str(tmp_path / "cache"))
    d = load_cifar10(progress=False)
    assert (tmp_path / "cache" / "cifar10" / "cifar-10-python.tar.gz").is_file()
    assert d.y_test.tolist() == _batches(seed=5)[TEST_BATCH][1]


def test_unpickler_accepts_numpy_arrays_written_by_this_numpy():
    buf = io.BytesIO()
    pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"labels": [3]}, buf)
    from deeprelax.nets.cifar import parse_python_batch

    x, y = parse_python_batch(buf.getvalue(), "mem")
    assert x.shape == (1, 3, 32, 32) and y.tolist() == [3]


@pytest.mark.parametrize(
    "data,bad",
    [
        (np.full((2, 3072), 1e6), "1000000.0"),  # np.asarray(1e6, np.uint8) would be 64
        (np.full((2, 3072), -1, dtype=np.int64), "-1"),  # would be 255
        (np.full((2, 3072), 0.5), "0.5"),
        (np.full((2, 3072), np.nan), "nan"),
        (np.full((2, 3072), 300, dtype=np.int16), "300"),
    ],
)
def test_pixels_that_are_not_uint8_are_an_error_not_a_silent_cast(data, bad):
    from deeprelax.nets.cifar import parse_python_batch

    blob = pickle.dumps({b"data": data, b"labels": [0, 1]})
    with pytest.raises(DataFileError, match=f"batch_x: pixel value {bad}.*not an integer in 0…255"):
        parse_python_batch(blob, "batch_x")


def test_integer_pixels_in_range_are_accepted_exactly():
    from deeprelax.nets.cifar import parse_python_batch

    data = np.arange(2 * 3072).reshape(2, 3072) % 256
    for arr in (data, data.astype(np.float64), data.tolist()):
        x, y = parse_python_batch(pickle.dumps({b"data": arr, b"labels": [3, 4]}), "b")
        assert x.dtype == np.uint8 and np.array_equal(x.reshape(2, 3072), data) and y.tolist() == [3, 4]
    with pytest.raises(DataFileError, match="labels must be integers"):
        parse_python_batch(pickle.dumps({b"data": data, b"labels": [0.5, 1.0]}), "b")
