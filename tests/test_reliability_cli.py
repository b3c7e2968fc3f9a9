"""Issue 13, command line: every ordinary mistake is one line ``deeprelax <cmd>: error: <cause> (<file>)`` and
exit 2, never a raw traceback; ``--debug`` / ``DEEPRELAX_DEBUG=1`` add the traceback. Each test is one probe
of the issue (each gave a traceback and exit 1 on b6a52cc)."""

import errno
import json
import os
import pickle
import shutil

import pytest
import torch

from _tiny_run import tiny_train_argv
from deeprelax.cli import error_line, main

TINY = tiny_train_argv()
CHEAP = tiny_train_argv(data=False, epochs=None)  # a config file gives the data and the epochs


def fails(capsys, argv, *needles, cmd="train"):
    """Run the CLI in-process; assert exit 2 with one message line naming every needle, no traceback."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2, err
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith(f"deeprelax {cmd}: error: "), err
    for n in needles:
        assert n in lines[-1], (n, lines[-1])
    return lines[-1]


def argparse_fails(capsys, argv, *needles):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)


# -- hyperparameters and model options -------------------------------------------------------------
@pytest.mark.parametrize(
    "opt,flag,value",
    [("hj", "--alpha", "0.5"), ("sgd", "--L", "5"), ("heat", "--damping", "0.5"), ("sgd", "--gamma", "1")],
)
def test_hyperparameter_the_optimizer_does_not_take(capsys, tmp_path, opt, flag, value):
    fails(capsys, ["train", *TINY, "--optimizer", opt, flag, value, "--out", str(tmp_path)], flag, opt)
    assert not (tmp_path / "config.json").exists()


def test_config_file_hyperparameter_the_optimizer_does_not_take(capsys, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"optimizer": "sgd", "hparams": {"L": 5}}))
    fails(capsys, ["train", "--config", str(cfg), *TINY, "--out", str(tmp_path / "o")], "hparams", "L")


@pytest.mark.parametrize(
    "opt,bad", [("foo=1", "foo"), ("foo", "KEY=VALUE"), ("dropout=abc", "dropout"), ("bn=sideways", "bn")]
)
def test_bad_model_option(capsys, tmp_path, opt, bad):
    fails(capsys, ["train", *TINY, "--model-option", opt, "--out", str(tmp_path)], bad)


# -- devices ---------------------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="probes a machine without CUDA")
def test_cuda_without_cuda(capsys, tmp_path):
    fails(capsys, ["train", *TINY, "--device", "cuda", "--out", str(tmp_path)], "'cuda'", "--device cpu")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="probes a machine without MPS")
def test_mps_without_mps(capsys, tmp_path):
    fails(capsys, ["train", *TINY, "--device", "mps", "--out", str(tmp_path)], "'mps'")


def test_malformed_device(capsys, tmp_path):
    fails(capsys, ["train", *TINY, "--device", "cuda:x", "--out", str(tmp_path)], "device")


# -- config files ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,needle",
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"hparams": null}', "hparams"),
        ('{"epochs": true}', "epochs"),
        ('{"model_options": [1]}', "model_options"),
        ('{"lr_schedule": [1]}', "lr_schedule"),
        ('{"lr_schedule": {"1": 0.1, "01": 0.2}}', "twice"),
        ('{"seed": 1, "seed": 2}', "twice"),
        ('{"epochs": 2', "not valid JSON"),
        ('{"optimizer": 3}', "optimizer"),
        ('{"data": []}', "data"),
        ('{"seed": -1}', "seed"),
        ('{"modle": "lenet"}', "modle"),
        ("", "not valid JSON"),
        ('{"model": "\udcff"}'.encode("utf-8", "surrogateescape"), "not valid JSON"),  # not UTF-8
    ],
)
def test_malformed_config(capsys, tmp_path, text, needle):
    cfg = tmp_path / "c.json"
    cfg.write_bytes(text if isinstance(text, bytes) else text.encode())
    fails(capsys, ["train", "--config", str(cfg), *CHEAP, "--out", str(tmp_path / "o")], needle)


def test_missing_config(capsys, tmp_path):
    fails(
        capsys,
        ["train", "--config", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o")],
        "No such file or directory",
        str(tmp_path / "nope.json"),
    )


# -- unwritable places -----------------------------------------------------------------------------
def test_unwritable_out(capsys):
    fails(capsys, ["train", *TINY, "--out", "/dev/null/x"], "Not a directory (/dev/null/x)")


def test_unwritable_data_cache_fails_before_any_download(capsys, tmp_path, monkeypatch):
    import deeprelax.nets.download as dl

    def no_network(*a, **k):
        raise AssertionError("a test must not download")

    monkeypatch.setattr(dl, "_download", no_network)
    monkeypatch.setenv("DEEPRELAX_DATA", "/dev/null/x")
    fails(
        capsys,
        ["train", "--data", "mnist", "--model", "lenet", "--out", str(tmp_path)],
        "cannot create the download folder /dev/null/x",
        "DEEPRELAX_DATA",
    )


def test_unwritable_lab_out(capsys):
    from deeprelax.experiments.lab import labs

    fails(
        capsys,
        ["lab", next(iter(labs())), "--out", "/dev/null/x"],
        "Not a directory",
        "/dev/null/x",
        cmd="lab",
    )
    fails(capsys, ["lab", "all", "--out", "/dev/null/x"], "Not a directory (/dev/null/x", cmd="lab")


# -- checkpoints -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    assert main(["train", *TINY, "--optimizer", "sgd", "--out", str(out)]) == 0
    return out


def _copy(run, tmp_path):
    dst = tmp_path / "r"
    shutil.copytree(run, dst)
    return dst


@pytest.mark.parametrize("kind", ["truncated", "zeroed", "random", "empty", "tensor", "dict"])
def test_unreadable_checkpoint_is_named_and_left_untouched(capsys, tmp_path, finished_run, kind):
    out = _copy(finished_run, tmp_path)
    ck = out / "checkpoint.pt"
    good = ck.read_bytes()
    if kind == "tensor":
        torch.save(torch.ones(3), ck)
    elif kind == "dict":
        torch.save({"epoch": 1}, ck)
    else:
        bad = {
            "truncated": good[: len(good) // 2],
            "zeroed": bytes(len(good)),
            "random": os.urandom(len(good)),
            "empty": b"",
        }[kind]
        ck.write_bytes(bad)
    before = ck.read_bytes()
    fails(
        capsys,
        [
            "train",
            *TINY[:-3],
            "--epochs",
            "2",
            "--no-progress",
            "--optimizer",
            "sgd",
            "--resume",
            "--out",
            str(out),
        ],
        str(ck),
    )
    assert ck.read_bytes() == before


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_checkpoint_is_refused_and_never_run(capsys, tmp_path, finished_run, monkeypatch):
    out = _copy(finished_run, tmp_path)
    monkeypatch.chdir(tmp_path)
    torch.save({"config": {}, "x": _Evil()}, out / "checkpoint.pt")
    line = fails(
        capsys,
        ["train", *TINY, "--optimizer", "sgd", "--resume", "--out", str(out)],
        "refusing to load",
        str(out / "checkpoint.pt"),
    )
    assert "weights_only=False" not in line  # never advise the unsafe load
    assert not (tmp_path / "PWNED").exists()
    with open(out / "checkpoint.pt", "wb") as f:  # a bare pickle, not torch's zip format
        pickle.dump({"config": _Evil()}, f)
    fails(
        capsys,
        ["train", *TINY, "--optimizer", "sgd", "--resume", "--out", str(out)],
        str(out / "checkpoint.pt"),
    )
    assert not (tmp_path / "PWNED").exists()


def test_full_disk_while_checkpointing_keeps_the_old_checkpoint(capsys, tmp_path, monkeypatch):
    real_save, calls = torch.save, []

    def full_disk(obj, f, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            f.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full_disk)
    out = tmp_path / "r"
    fails(
        capsys,
        ["train", *TINY[:-3], "--epochs", "2", "--no-progress", "--optimizer", "sgd", "--out", str(out)],
        "No space left on device",
        "the previous checkpoint (epoch 1) was kept",
        str(out / "checkpoint.pt"),
    )
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1


# -- the other subcommands -------------------------------------------------------------------------
def test_missing_and_malformed_compare_settings(capsys, tmp_path):
    fails(
        capsys,
        ["compare", "--settings", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o")],
        "No such file or directory",
        str(tmp_path / "nope.json"),
        cmd="compare",
    )
    bad = tmp_path / "s.json"
    for text, needle in (
        ("{", "not valid JSON"),
        ("[1]", "budget"),
        ('{"budget": 4, "optimizers": {"sgd": 1}}', "optimizers.sgd"),
    ):
        bad.write_text(text)
        fails(
            capsys,
            ["compare", "--settings", str(bad), "--out", str(tmp_path / "o")],
            needle,
            str(bad),
            cmd="compare",
        )


@pytest.mark.parametrize(
    "argv,flag",
    [
        (["train", "--seed", "-1", "--out", "x"], "argument --seed"),
        (["train", "--seed", str(2**63), "--out", "x"], "argument --seed"),
        (["train", "--threads", "0", "--out", "x"], "argument --threads"),
        (["train", "--epochs", "0", "--out", "x"], "argument --epochs"),
        (["train", "--n-train", "-3", "--out", "x"], "argument --n-train"),
        (["train", "--resume", "--overwrite", "--out", "x"], "not allowed with argument"),
        (["compare", "--threads", "0"], "argument --threads"),
        (["compare", "--jobs", "0"], "argument --jobs"),
        (["compare", "--seed", "-1"], "argument --seed"),
        (["table1", "--model", "lenet", "--optimizer", "sgd", "--threads", "0"], "argument --threads"),
        (["table1", "--model", "lenet", "--optimizer", "sgd", "--seeds", "-1"], "argument --seeds"),
    ],
)
def test_bad_numbers_name_the_argument(capsys, argv, flag):
    argparse_fails(capsys, argv, flag)


# -- the boundary itself ---------------------------------------------------------------------------
def test_debug_flag_and_env_var_show_the_traceback(capsys, tmp_path, monkeypatch):
    argv = ["train", *TINY, "--optimizer", "hj", "--alpha", "0.5", "--out", str(tmp_path)]
    for args in (["--debug", *argv], [*argv, "--debug"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "Traceback" in err
        assert err.strip().splitlines()[-1].startswith("deeprelax train: error: --alpha")
    monkeypatch.setenv("DEEPRELAX_DEBUG", "1")
    assert main(argv) == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("DEEPRELAX_DEBUG", "0")
    fails(capsys, argv, "--alpha")


def test_a_bug_still_shows_its_traceback(monkeypatch):
    import deeprelax.cli.train as cli_train

    def buggy(args):
        raise KeyError("internal")

    monkeypatch.setattr(cli_train, "run", buggy)
    with pytest.raises(KeyError):
        main(["train", "--out", "x"])


def test_error_line_names_the_file_and_stays_on_one_line():
    e = FileNotFoundError(errno.ENOENT, "No such file or directory", "a.json")
    assert error_line(e) == "No such file or directory (a.json)"
    assert (
        error_line(OSError(errno.EXDEV, "Invalid cross-device link", "a", None, "b"))
        == "Invalid cross-device link (a -> b)"
    )
    assert "\n" not in error_line(ValueError("two\nlines"))


def test_create_model_names_unknown_and_mistyped_options():
    from deeprelax.nets import create_model, model_option_names

    assert {"dropout", "bn", "fc_bn"} <= model_option_names("lenet")
    with pytest.raises(ValueError, match="no option.*foo.*its options are"):
        create_model("lenet", foo=1)
    with pytest.raises(ValueError, match="lenet"):
        create_model("lenet", dropout="abc")
