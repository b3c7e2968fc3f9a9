"""The training harness: gradient-evaluation accounting, schedules, logs, checkpoints, exact resume (also
after kill -9), NaN/Inf stops, configuration errors."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from deeprelax.experiments.train import (
    NonFiniteLossError,
    TrainConfig,
    Trainer,
    parse_lr_schedule,
    train,
)

TINY = dict(
    model="lenet",
    data="mnist-subset",
    n_train=256,
    n_test=200,
    batch_size=16,
    steps_per_epoch=3,
    dry_feed_batches=2,
    threads=1,
)
RELAX = {
    "sgd": {"lr": 0.05},
    "entropy-sgd": {"lr": 1.0, "L": 3, "gamma": 1e-3, "noise": 1e-3},
    "hj": {"lr": 0.05, "L": 2, "gamma": 10.0},
    "heat": {"lr": 1.0, "L": 3, "gamma": 1e-3, "noise": 1e-3},
}


def cfg(**kw):
    return TrainConfig(**{**TINY, **kw})


def strip(history):
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in history]


@pytest.mark.parametrize("opt", list(RELAX))
def test_gradient_evaluations_and_effective_epochs(opt):
    hp = RELAX[opt]
    L = hp.get("L", 0)
    res = train(cfg(optimizer=opt, hparams=hp, epochs=2), None, progress=False, log=None)
    for e, rec in enumerate(res.history, start=1):
        assert rec["grad_evals"] == e * 3 * (L + 1)  # L + 1 closure calls per outer step, 1 for SGD
        assert rec["effective_epochs"] == e * max(L, 1)
        assert rec["grad_epochs"] == pytest.approx(rec["grad_evals"] * 16 / 256)
    assert res.L == L and res.n_train == 256


def test_learning_rate_schedule_acts_on_the_outer_lr():
    t = Trainer(
        cfg(
            optimizer="entropy-sgd",
            hparams=RELAX["entropy-sgd"],
            epochs=3,
            lr_schedule={0: 1.0, 1: 0.1, 2: 0.01},
        ),
        None,
        progress=False,
        log=None,
    )
    res = t.run()
    assert [r["lr"] for r in res.history] == [1.0, 0.1, 0.01]
    assert t.optimizer.param_groups[0]["lr"] == 0.01
    # γ-scoping counter advanced by one per outer step: γ_t = γ(1 + scoping)^t, t = 9
    assert res.history[-1]["gamma"] == pytest.approx(1e-3 * (1 + 1e-3) ** 9)
    assert parse_lr_schedule("0:1, 2:0.1,4:0.01") == {0: 1.0, 2: 0.1, 4: 0.01}
    with pytest.raises(ValueError, match="EPOCH:LR"):
        parse_lr_schedule("0=1")
    assert cfg(lr_schedule={3: 0.5}).lr_at(1, base=0.2) == 0.2  # before the first key: the base lr


def test_outputs_logs_and_plot(tmp_path):
    res = train(cfg(optimizer="hj", hparams=RELAX["hj"], epochs=2), tmp_path, progress=False, log=None)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == res.history
    csv_lines = (tmp_path / "log.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,effective_epochs,grad_evals") and len(csv_lines) == 3
    assert (tmp_path / "error.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["final_error"] == res.history[-1]["test_error"] and summary["effective_epochs"] == 4
    assert TrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == res_config(res)


def res_config(res):
    return TrainConfig.from_dict(res.config)


def test_resume_in_process_is_bit_identical(tmp_path):
    c = cfg(optimizer="entropy-sgd", hparams=RELAX["entropy-sgd"], epochs=3, lr_schedule={0: 1.0, 2: 0.1})
    a = Trainer(c, tmp_path / "a", progress=False, log=None)
    ra = a.run()
    Trainer(TrainConfig(**{**c.to_dict(), "epochs": 1}), tmp_path / "b", progress=False, log=None).run()
    b = Trainer(c, tmp_path / "b", progress=False, log=None)
    rb = b.run(resume=True)
    assert strip(ra.history) == strip(rb.history)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert a.optimizer.param_groups[0]["outer_steps"] == b.optimizer.param_groups[0]["outer_steps"] == 9


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from deeprelax.experiments.train import TrainConfig, Trainer
    cfg = TrainConfig.from_dict({cfg!r})

    def kill_mid_epoch(trainer, epoch, step):
        if epoch == 1 and step == 1:   # second epoch, after its second outer step
            os.kill(os.getpid(), signal.SIGKILL)

    Trainer(cfg, sys.argv[1], progress=False, log=None, on_step=kill_mid_epoch).run()
""")


def test_kill_9_mid_epoch_then_resume_gives_the_uninterrupted_numbers(tmp_path):
    # HEAT with Langevin noise (global torch RNG), dropout (global RNG) and shuffled passes (sampler state)
    c = cfg(optimizer="heat", hparams=RELAX["heat"], epochs=3, sampling="shuffle")
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(cfg=c.to_dict()))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "killed")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # the checkpoint of the last completed epoch survived; the killed epoch is lost, nothing else
    ck = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 1
    # no temp files left; the lock file still names the killed process
    assert [p.name for p in (tmp_path / "killed").iterdir() if p.name.startswith(".")] == [".lock"]
    holder = json.loads((tmp_path / "killed" / ".lock").read_text())
    assert holder["pid"] != os.getpid() and str(script) in holder["command"]
    with pytest.warns(RuntimeWarning, match="stale lock .* ended without releasing it"):
        resumed = Trainer(c, tmp_path / "killed", progress=False, log=None).run(resume=True)
    assert (tmp_path / "killed" / ".lock").read_text() == ""  # released cleanly this time
    straight = Trainer(c, tmp_path / "straight", progress=False, log=None).run()
    assert strip(resumed.history) == strip(straight.history)
    assert len(resumed.history) == 3


def test_non_finite_loss_stops_naming_epoch_and_step(tmp_path):
    def poison(trainer, epoch, step):
        if epoch == 1 and step == 0:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))

    t = Trainer(
        cfg(optimizer="sgd", hparams={"lr": 0.05}, epochs=3),
        tmp_path,
        progress=False,
        log=None,
        on_step=poison,
    )
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, outer step 2 of 3"):
        t.run()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 1  # last good epoch kept


def test_checkpoint_write_failure_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    t = Trainer(cfg(optimizer="sgd", hparams={"lr": 0.05}, epochs=2), tmp_path, progress=False, log=None)
    real_save = torch.save
    calls = []

    def flaky_save(obj, f, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            f.write(b"partial")
            raise OSError("disk full")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", flaky_save)
    with pytest.raises(OSError, match=r"epoch 2 \(disk full\); the previous checkpoint \(epoch 1\) was kept"):
        t.run()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".lock"]


def test_existing_run_is_not_overwritten_and_resume_checks_the_config(tmp_path):
    c = cfg(optimizer="sgd", hparams={"lr": 0.05}, epochs=1)
    train(c, tmp_path, progress=False, log=None)
    with pytest.raises(FileExistsError, match="resume"):
        train(c, tmp_path, progress=False, log=None)
    with pytest.raises(ValueError, match="cannot resume.*hparams"):
        train(
            cfg(optimizer="sgd", hparams={"lr": 0.01}, epochs=2),
            tmp_path,
            resume=True,
            progress=False,
            log=None,
        )
    # a finished run resumed with the same number of epochs does nothing more
    again = train(c, tmp_path, resume=True, progress=False, log=None)
    assert len(again.history) == 1


@pytest.mark.parametrize(
    "kw,field",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": -1}, "batch_size"),
        ({"sampling": "bootstrap"}, "sampling"),
        ({"optimizer": "adam"}, "optimizer"),
        ({"model": "vgg"}, "model"),
        ({"data": "cifar10"}, "does not fit"),
        ({"lr_schedule": {0: -1.0}}, "lr_schedule"),
        ({"device": "tpu"}, "device"),
        ({"n_train": 0}, "n_train"),
    ],
)
def test_config_validation_names_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        cfg(**kw)
    with pytest.raises(ValueError, match="unknown training-config keys"):
        TrainConfig.from_dict({"modle": "lenet"})


def test_bad_hyperparameter_is_reported_at_construction():
    with pytest.raises(ValueError, match="gamma"):
        Trainer(cfg(optimizer="hj", hparams={"gamma": -1.0}), None, progress=False, log=None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="cuda"):
        Trainer(cfg(device="cuda"), None, progress=False, log=None)


def test_harness_actually_trains():
    res = train(
        TrainConfig(
            model="lenet",
            data="mnist-subset",
            n_train=4000,
            n_test=1000,
            batch_size=64,
            steps_per_epoch=30,
            epochs=2,
            dry_feed_batches=8,
            optimizer="sgd",
            hparams={"lr": 0.1},
            seed=0,
        ),
        None,
        progress=False,
        log=None,
    )
    assert res.history[-1]["test_error"] < 15.0  # chance is 90 %
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"] or res.history[0]["test_error"] < 15


def test_cli_train_and_resume(tmp_path, capsys):
    from deeprelax.cli import main

    args = [
        "train",
        "--model",
        "lenet",
        "--optimizer",
        "hj",
        "--L",
        "2",
        "--lr",
        "0.05",
        "--gamma",
        "10",
        "--n-train",
        "256",
        "--n-test",
        "200",
        "--batch-size",
        "16",
        "--steps-per-epoch",
        "2",
        "--dry-feed-batches",
        "2",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(tmp_path),
    ]
    assert main(args + ["--epochs", "1", "--lr-schedule", "0:0.05,1:0.01"]) == 0
    assert "final validation error" in capsys.readouterr().out
    assert main(args + ["--epochs", "1", "--lr-schedule", "0:0.05,1:0.01"]) == 2  # exists, no --resume
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--epochs", "2", "--lr-schedule", "0:0.05,1:0.01", "--resume"]) == 0
    hist = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in hist] == [0.05, 0.01] and hist[-1]["grad_evals"] == 2 * 2 * 3
    assert main(["train", "--model", "allcnn", "--out", str(tmp_path / "x")]) == 2  # allcnn needs CIFAR
    assert "does not fit" in capsys.readouterr().err


def test_cli_train_from_a_table1_config_file(tmp_path):
    from deeprelax.cli import main
    from deeprelax.experiments.table1 import config_path

    assert (
        main(
            [
                "train",
                "--config",
                str(config_path("lenet", "entropy-sgd")),
                "--data",
                "mnist-subset",
                "--epochs",
                "1",
                "--steps-per-epoch",
                "1",
                "--n-train",
                "128",
                "--n-test",
                "100",
                "--dry-feed-batches",
                "1",
                "--threads",
                "1",
                "--no-progress",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    rec = json.loads((tmp_path / "log.jsonl").read_text())
    assert rec["grad_evals"] == 21 and rec["effective_epochs"] == 20 and rec["lr"] == 1.0
