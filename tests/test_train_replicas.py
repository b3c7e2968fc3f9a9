"""Training with replicas end to end: ``deeprelax train --replicas N`` through torch.distributed.run (gloo).

* a 2-replica Parle run writes one set of logs (rank 0) with per-replica and total gradient counts;
* kill -9 of one rank mid-epoch under ``--max-restarts 1``: the group restarts, resumes from the last
  checkpoint and ends with exactly the numbers (and weights) of an uninterrupted run;
* a peer that never arrives ends with a timeout message, not a hang.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SRC = str(Path(__file__).resolve().parents[1] / "src")
ARGS = [
    "train",
    "--optimizer",
    "parle",
    "--model",
    "lenet",
    "--data",
    "mnist-subset",
    "--n-train",
    "256",
    "--n-test",
    "200",
    "--epochs",
    "3",
    "--steps-per-epoch",
    "3",
    "--L",
    "2",
    "--dry-feed-batches",
    "1",
    "--replicas",
    "2",
    "--no-progress",
    "--seed",
    "3",
]


def run_cli(args, env_extra=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "deeprelax", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def history(out):
    recs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    for r in recs:
        r.pop("wall_time")
    return recs


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("replicas") / "plain"
    proc = run_cli([*ARGS, "--out", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_replica_run_writes_one_set_of_logs_with_totals(uninterrupted):
    recs = history(uninterrupted)
    assert [r["epoch"] for r in recs] == [1, 2, 3]
    last = recs[-1]
    assert last["replicas"] == 2 and last["grad_evals"] == 3 * 3 * 3  # epochs × steps × (L + 1)
    assert last["grad_evals_total"] == 2 * last["grad_evals"] and len(last["train_loss_replicas"]) == 2
    config = json.loads((uninterrupted / "config.json").read_text())
    assert config["replicas"] == 2 and config["optimizer"] == "parle"
    ckpt = torch.load(uninterrupted / "checkpoint.pt", weights_only=True)
    assert sorted(ckpt["replicas"]) == [0, 1] and ckpt["world_size"] == 2
    key = next(iter(ckpt["replicas"][0]["model"]))
    w0, w1 = (ckpt["replicas"][r]["model"][key] for r in (0, 1))
    assert not torch.equal(w0, w1)  # two replicas, two points, each with its own stream


def test_kill_9_of_one_rank_restarts_the_group_and_ends_exactly_as_uninterrupted(uninterrupted, tmp_path):
    out = tmp_path / "killed"
    proc = run_cli(
        [*ARGS, "--out", str(out), "--max-restarts", "1"], env_extra={"DEEPRELAX_TEST_KILL_AT": "1:1:1"}
    )  # rank 1, second epoch, second step
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / ".killed-rank1").exists()
    assert history(out) == history(uninterrupted)
    a = torch.load(uninterrupted / "checkpoint.pt", weights_only=True)["replicas"]
    b = torch.load(out / "checkpoint.pt", weights_only=True)["replicas"]
    for r in (0, 1):
        for k, v in a[r]["model"].items():
            assert torch.equal(v, b[r]["model"][k]), (r, k)


def test_a_missing_peer_is_a_timeout_error_not_a_hang(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "DEEPRELAX_DIST_TIMEOUT": "3",
    }
    i = ARGS.index("--replicas")
    args = ARGS[:i] + ARGS[i + 2 :] + ["--out", str(tmp_path / "alone")]
    proc = run_cli(args, env_extra=env, timeout=120)
    assert proc.returncode == 1
    assert "replica communication failed" in proc.stderr and "Traceback" not in proc.stderr
