"""Issue 13, run folders: no run silently loses another's work (lock, refusing an earlier run's folder,
atomic files, consistent resume), and determinism is recorded and checked."""

import builtins
import io
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from _tiny_run import tiny_train_argv
from deeprelax.cli import main
from deeprelax.experiments.runfiles import LOCK_FILE, RunLock, RunLockedError
from deeprelax.experiments.train import TrainConfig, Trainer, parse_lr_schedule, train

TINY = tiny_train_argv(epochs=None, threads=None, optimizer="sgd")
CFG = dict(
    model="lenet",
    data="mnist-subset",
    n_train=64,
    n_test=50,
    batch_size=16,
    steps_per_epoch=2,
    dry_feed_batches=1,
    threads=1,
    optimizer="sgd",
    hparams={"lr": 0.05},
)


@pytest.fixture(autouse=True)
def _keep_one_thread():
    yield
    torch.set_num_threads(1)  # --threads N sets torch's global thread count


def last_err(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


# -- the lock --------------------------------------------------------------------------------------
HOLD = textwrap.dedent("""
    import sys, time
    from deeprelax.experiments.runfiles import RunLock
    lock = RunLock(sys.argv[1]); lock.acquire()
    print("locked", flush=True)
    time.sleep(120)
""")


def test_second_train_into_a_locked_folder_is_refused_and_a_dead_holder_is_reported(tmp_path, capsys):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["train", *TINY, "--epochs", "1", "--threads", "1", "--out", str(out)]) == 2
        msg = last_err(capsys)
        assert f"{out} is in use by another training run (pid {holder.pid}" in msg
        assert not (out / "config.json").exists()  # refused before touching anything
    finally:
        holder.kill()  # SIGKILL: the holder cannot clean up; the OS drops its lock
        holder.wait()
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == holder.pid  # its record is left behind
    assert main(["train", *TINY, "--epochs", "1", "--threads", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"stale lock {out / LOCK_FILE} taken over" in printed and f"pid {holder.pid}" in printed
    assert (out / LOCK_FILE).read_text() == ""  # released cleanly


def test_lock_is_exclusive_in_process_and_released_on_error(tmp_path):
    with RunLock(tmp_path) as lock:
        assert lock.held
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            RunLock(tmp_path).acquire()
        with pytest.raises(RunLockedError, match="in use"):
            train(TrainConfig(**CFG, epochs=1), tmp_path, progress=False, log=None)
    bad = TrainConfig(**{**CFG, "hparams": {"lr": 0.05}}, epochs=1)

    def boom(*args):
        raise RuntimeError("boom")

    t = Trainer(bad, tmp_path, progress=False, log=None, on_step=boom)
    with pytest.raises(RuntimeError, match="boom"):
        t.run()
    with RunLock(tmp_path) as again:  # the failed run released it: no stale notice
        assert again.stale is None


def test_compare_and_table1_folders_are_locked(tmp_path, capsys):
    from deeprelax.experiments.compare import build_configs, load_compare_config, run_compare

    configs = build_configs(
        load_compare_config(),
        optimizers=["sgd"],
        budget=1,
        overrides={"n_train": 64, "n_test": 50, "steps_per_epoch": 1},
    )
    with RunLock(tmp_path / "cmp"):
        with pytest.raises(RunLockedError, match="in use by another compare run"):
            run_compare(configs, tmp_path / "cmp", jobs=1, log=None)
        assert (
            main(
                [
                    "compare",
                    "--optimizers",
                    "sgd",
                    "--budget",
                    "1",
                    "--n-train",
                    "64",
                    "--steps-per-epoch",
                    "1",
                    "--out",
                    str(tmp_path / "cmp"),
                ]
            )
            == 2
        )  # tiny if unlocked
        assert "in use by another compare run" in last_err(capsys)
    (tmp_path / "cmp" / "results.json").write_text("{}")
    with pytest.raises(FileExistsError, match="earlier compare run"):
        run_compare(configs, tmp_path / "cmp", jobs=1, log=None)
    with RunLock(tmp_path / "cell"):
        assert (
            main(
                [
                    "table1",
                    "--model",
                    "lenet",
                    "--optimizer",
                    "sgd",
                    "--seeds",
                    "0",
                    "--data",
                    "mnist-subset",
                    "--epochs",
                    "1",
                    "--steps-per-epoch",
                    "1",
                    "--dry-feed-batches",
                    "1",
                    "--no-progress",
                    "--out",
                    str(tmp_path / "cell"),
                ]
            )
            == 2
        )
        assert "in use by another table1 cell" in last_err(capsys)


# -- an earlier run's files ------------------------------------------------------------------------
def test_folder_with_an_earlier_run_but_no_checkpoint_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "result.json").write_text('{"final_error": 1.0}')
    (out / "log.csv").write_text("epoch\n1\n")
    for extra in ([], ["--resume"]):
        assert main(["train", *TINY, "--epochs", "1", "--out", str(out), *extra]) == 2
        msg = last_err(capsys)
        assert "holds files of an earlier run (log.csv, result.json)" in msg and "--overwrite" in msg
    assert (out / "result.json").read_text() == '{"final_error": 1.0}'
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "result.json").read_text())["epochs"] == 1
    # --overwrite also replaces a run that has a checkpoint; without it the checkpoint is protected
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 2
    assert "--resume" in last_err(capsys)
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out), "--overwrite"]) == 0


def test_run_killed_in_its_first_epoch_can_be_resumed(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "config.json").write_text(json.dumps(TrainConfig(**CFG, epochs=1).to_dict()))
    (out / "log.jsonl").write_text("")
    res = train(TrainConfig(**CFG, epochs=1), out, resume=True, progress=False, log=None)
    assert len(res.history) == 1


def test_resume_with_fewer_epochs_is_refused_and_files_stay_consistent(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    before = {n: (out / n).read_bytes() for n in ("config.json", "result.json", "log.csv", "log.jsonl")}
    assert main(["train", *TINY, "--epochs", "1", "--resume", "--out", str(out)]) == 2
    assert "cannot resume with epochs = 1" in last_err(capsys)
    assert {n: (out / n).read_bytes() for n in before} == before
    assert json.loads(before["config.json"])["epochs"] == json.loads(before["result.json"])["epochs"] == 2


def test_duplicate_schedule_keys_and_bool_integers_are_rejected(capsys, tmp_path):
    with pytest.raises(ValueError, match="epoch 2 is given twice"):
        parse_lr_schedule("0:1,2:0.1,2:0.01")
    with pytest.raises(ValueError, match="given twice"):
        TrainConfig(lr_schedule={"1": 0.1, "01": 0.2})
    for field in ("epochs", "batch_size", "steps_per_epoch", "threads", "seed"):
        with pytest.raises(ValueError, match=field):
            TrainConfig(**{field: True})
    with pytest.raises(ValueError, match="augment"):
        TrainConfig(augment=1)
    assert main(["train", *TINY, "--lr-schedule", "0:1,0:2", "--out", str(tmp_path)]) == 2
    assert "epoch 0 is given twice" in last_err(capsys)


# -- atomic files ----------------------------------------------------------------------------------
def test_every_run_file_is_written_through_a_temporary_file(tmp_path, monkeypatch):
    """Record every file opened for writing inside the run folder: apart from the lock file (os.open), each
    must be a temporary name that is then renamed into place."""
    out = tmp_path / "r"
    opened = []
    real_open = builtins.open

    def spy(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+") and str(file).startswith(str(out)):
            opened.append(os.path.basename(str(file)))
        return real_open(file, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    train(TrainConfig(**CFG, epochs=2), out, progress=False, log=None)
    assert opened and all(n.startswith(".") and ".tmp" in n for n in opened), opened
    written = {n.split(".")[1] for n in opened}
    assert {"config", "log", "checkpoint", "result", "error"} <= written
    assert sorted(p.name for p in out.iterdir()) == [
        ".lock",
        "checkpoint.pt",
        "config.json",
        "error.png",
        "log.csv",
        "log.jsonl",
        "result.json",
    ]


# -- determinism -----------------------------------------------------------------------------------
def test_environment_is_recorded_and_same_settings_are_bitwise_reproducible(tmp_path):
    a = train(TrainConfig(**CFG, epochs=2), tmp_path / "a", progress=False, log=None)
    b = train(TrainConfig(**CFG, epochs=2), tmp_path / "b", progress=False, log=None)
    strip = [{k: v for k, v in r.items() if k != "wall_time"} for r in a.history]
    assert strip == [{k: v for k, v in r.items() if k != "wall_time"} for r in b.history]
    env = json.loads((tmp_path / "a" / "result.json").read_text())["environment"]
    assert env["torch"] == torch.__version__ and env["threads"] == 1
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and env["device"] == "cpu"
    assert torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["environment"] == env


def test_resume_under_another_environment_is_refused_unless_allowed(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *TINY, "--epochs", "1", "--threads", "1", "--out", str(out)]) == 0
    assert main(["train", *TINY, "--epochs", "2", "--threads", "2", "--resume", "--out", str(out)]) == 2
    msg = last_err(capsys)
    assert "threads 1 -> 2" in msg and "--threads 1" in msg and "--allow-env-change" in msg
    # another CPU instruction set (AVX512 vs AVX2 kernels round differently)
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    ck["environment"]["cpu_capability"] = "NOT-" + ck["environment"]["cpu_capability"]
    torch.save(ck, out / "checkpoint.pt")
    assert main(["train", *TINY, "--epochs", "2", "--threads", "1", "--resume", "--out", str(out)]) == 2
    assert "cpu_capability" in last_err(capsys)
    assert (
        main(
            [
                "train",
                *TINY,
                "--epochs",
                "2",
                "--threads",
                "1",
                "--resume",
                "--allow-env-change",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "WARNING: resuming with a changed environment" in capsys.readouterr().out
    env = json.loads((out / "result.json").read_text())["environment"]
    assert env["changes_at_resume"][0]["after_epoch"] == 1
    assert list(env["changes_at_resume"][0]["changed"]) == ["cpu_capability"]
    # a finished run trains no further: "resuming" it under other threads changes nothing and is allowed
    assert main(["train", *TINY, "--epochs", "2", "--threads", "2", "--resume", "--out", str(out)]) == 0


def test_occupied_or_locked_folders_are_refused_before_the_data_are_loaded(tmp_path, monkeypatch):
    import deeprelax.experiments.train as tr

    def no_loading(*a, **k):
        raise AssertionError("the data were loaded before the folder was checked")

    monkeypatch.setattr(tr, "load_dataset", no_loading)
    c = TrainConfig(**CFG, epochs=1)
    with RunLock(tmp_path / "locked"), pytest.raises(RunLockedError):
        train(c, tmp_path / "locked", progress=False, log=None)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "result.json").write_text("{}")
    with pytest.raises(FileExistsError, match="earlier run"):
        train(c, tmp_path / "old", resume=True, progress=False, log=None)
    with pytest.raises(NotADirectoryError):
        train(c, "/dev/null/x", progress=False, log=None)
