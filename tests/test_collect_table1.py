"""bench/collect_table1.py and bench/table1_queue.py on synthetic exported logs whose answers are known."""

import json
import statistics
from pathlib import Path

import pytest

from _bench import load_bench
from deeprelax.experiments.table1 import load_cell, mean_curve, paper_reading, reach
from deeprelax.experiments.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


collect_table1 = load_bench("collect_table1")
table1_queue = load_bench("table1_queue")


def curve(errors, L=20, seconds_per_epoch=150.0):
    return [
        {
            "epoch": e,
            "effective_epochs": e * max(L, 1),
            "grad_evals": 469 * e * (L + 1),
            "test_error": err,
            "wall_time": seconds_per_epoch * e,
        }
        for e, err in enumerate(errors, start=1)
    ]


def write_export(folder, name, train, seed, errors, *, data_dir="/somewhere/mnist", commit="abc1234"):
    cfg = TrainConfig.from_dict({**train, "seed": seed, "data_dir": data_dir, "threads": 1}).to_dict()
    L = cfg["hparams"].get("L", 0)
    recs = curve(errors, L, 150.0 * (seed + 1))
    best = min(recs, key=lambda r: r["test_error"])
    result = {
        "seed": seed,
        "final_error": errors[-1],
        "best_error": best["test_error"],
        "best_effective_epochs": best["effective_epochs"],
        "effective_epochs": recs[-1]["effective_epochs"],
        "wall_time": 600.0 * (seed + 1),
    }
    header = {
        "run": name,
        "config": cfg,
        "commit": commit,
        "result": result,
        "machine": {"cpus": 2, "load_avg_1min_mean": 3.5},
    }
    lines = [json.dumps({"header": header})] + [json.dumps(r) for r in recs]
    (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture
def runs(tmp_path):
    esgd = load_cell("lenet", "entropy-sgd")["train"]
    write_export(tmp_path, "esgd-s0", esgd, 0, [0.70, 0.55, 0.52, 0.56])
    write_export(
        tmp_path,
        "esgd-s1",
        esgd,
        1,
        [0.68, 0.57, 0.50, 0.54],
        data_dir="/elsewhere",
        commit=["abc1234", "def5678"],
    )
    d25 = {**esgd, "model_options": {**esgd["model_options"], "dropout": 0.25}}
    write_export(tmp_path, "esgd-d25-s0", d25, 0, [0.60, 0.55, 0.49, 0.51])
    sgd = load_cell("lenet", "sgd", "authors")["train"]  # 100 epochs; the curve's length does not matter
    write_export(tmp_path, "sgd-authors-s0", sgd, 0, [0.9, 0.7, 0.5, 0.5, 0.6])
    return tmp_path


def test_both_readings_of_a_two_seed_cell(runs):
    cells = collect_table1.collect(runs)
    assert [(c["optimizer"], c["variant"]) for c in cells] == [
        ("entropy-sgd", "ours"),
        ("entropy-sgd", "ours + model_options.dropout=0.25"),
        ("sgd", "authors"),
    ]
    c = cells[0]
    assert c["seeds"] == [0, 1] and c["runs"] == ["esgd-s0", "esgd-s1"]
    # honest reading: the last epoch, mean ± sample std
    assert c["final_mean"] == pytest.approx(0.55)
    assert c["final_std"] == pytest.approx(statistics.stdev([0.56, 0.54]))
    # paper's reading: mean curve 0.69, 0.56, 0.51, 0.55 -> 0.51 at epoch 3 = 60 effective epochs
    assert c["paper_min"] == pytest.approx(0.51) and c["paper_min_effective_epoch"] == 60
    assert c["paper_min_std"] == pytest.approx(statistics.stdev([0.52, 0.50]))
    assert (c["paper_value"], c["paper_std"], c["paper_effective_epochs"]) == (0.50, 0.01, 80)
    assert c["paper_min_within_2_paper_std"] is True  # |0.51 - 0.50| <= 0.02
    # first epoch of the mean curve at or below 0.60 %
    assert c["reach_threshold"] == 0.60 and c["reach_effective_epoch"] == 40
    assert c["wall_time_s"] == [600.0, 1200.0] and c["commits"] == ["abc1234", "def5678"]
    assert c["per_run_commits"] == [["abc1234"], ["abc1234", "def5678"]]  # each run's own, in its row
    rows = [x for x in collect_table1.markdown(cells).splitlines() if x.startswith("| esgd-s")]
    assert rows[0].endswith("| abc1234 |") and rows[1].endswith("| abc1234, def5678 |")
    one = cells[1]
    assert one["seeds"] == [0] and one["paper_min"] == 0.49 and one["paper_min_std"] == 0.0
    assert one["final_std"] == 0.0 and one["paper_min_effective_epoch"] == 60
    sgd = cells[2]
    assert sgd["paper_min"] == 0.5 and sgd["paper_min_effective_epoch"] == 3  # earliest of the tie (L = 1)
    assert sgd["final_mean"] == 0.6 and sgd["reach_effective_epoch"] == 3


def test_json_keys_check_and_markdown(runs, tmp_path_factory, capsys):
    out = tmp_path_factory.mktemp("out")
    js, md = out / "table1.json", out / "results.md"
    md.write_text(f"intro\n{collect_table1.BEGIN}\nold\n{collect_table1.END}\noutro\n")
    assert collect_table1.main([str(runs), "--json", str(js), "--results", str(md)]) == 0
    cells = json.loads(js.read_text())
    for key in (
        "model",
        "optimizer",
        "seeds",
        "final_mean",
        "final_std",
        "paper_min",
        "paper_min_effective_epoch",
        "paper_min_std",
        "paper_value",
    ):
        assert all(key in c for c in cells)
    text = md.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert (
        "| lenet | Entropy-SGD | ours | 2 | 0.55 ± 0.01 @ 80 | 0.51 ± 0.01 @ 60 | 0.50 ± 0.01 @ 80 "
        "| 0.60 % @ 40 | 15.0 min |" in text
    )
    assert "selects the epoch on the test set" in text
    assert "/somewhere" not in js.read_text()
    assert collect_table1.main([str(runs), "--check", str(js)]) == 0
    write_export(runs, "esgd-s2", load_cell("lenet", "entropy-sgd")["train"], 2, [0.7, 0.6, 0.6, 0.6])
    assert collect_table1.main([str(runs), "--check", str(js)]) == 1  # a new run makes the JSON stale
    assert "stale" in capsys.readouterr().err


def test_repeated_seed_is_an_error(runs):
    write_export(runs, "esgd-s0-again", load_cell("lenet", "entropy-sgd")["train"], 0, [0.7, 0.6, 0.6, 0.6])
    with pytest.raises(ValueError, match="seed repeated"):
        collect_table1.collect(runs)


def test_mean_curve_uses_the_epochs_every_seed_reached():
    a, b = curve([1.0, 0.8, 0.6], L=1), curve([1.2, 0.6], L=1)
    mc = mean_curve([a, b])
    assert [r["epoch"] for r in mc] == [1, 2] and mc[1]["mean"] == pytest.approx(0.7)
    assert paper_reading([a, b])["paper_min_effective_epoch"] == 2
    assert reach([a, b], 0.5)["reach_effective_epoch"] is None
    assert paper_reading([])["paper_min"] is None


def test_committed_table_is_rebuilt_from_the_committed_logs():
    runs, js = ROOT / "docs" / "table1-runs", ROOT / "docs" / "table1.json"
    assert collect_table1.main([str(runs), "--check", str(js)]) == 0
    for path in runs.glob("*.jsonl"):
        header, _ = collect_table1.read_export(path)
        assert header["config"]["data_dir"] is None  # no machine paths in the committed logs


def test_queue_parsing_and_export_without_machine_paths(tmp_path):
    q = tmp_path / "q.txt"
    q.write_text("# comment\nrun-a  --config x.json --seed 1   # trailing\n\nrun-b --seed 2\n")
    assert table1_queue.parse_queue(q) == [
        ("run-a", ["--config", "x.json", "--seed", "1"]),
        ("run-b", ["--seed", "2"]),
    ]
    run = tmp_path / "runs" / "run-a"
    run.mkdir(parents=True)
    cfg = TrainConfig.from_dict({**load_cell("lenet", "hj")["train"], "data_dir": "/secret/place"}).to_dict()
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "result.json").write_text(json.dumps({"final_error": 0.6}))
    (run / "log.jsonl").write_text(json.dumps(curve([0.7, 0.6], L=5)[0]) + "\n")
    assert table1_queue.record_commit(run, "c1") == ["c1"]
    assert table1_queue.record_commit(run, "c2") == ["c1", "c2"]
    out = table1_queue.export("run-a", run, tmp_path / "exp", ["c1", "c2"], {"load_avg_1min_mean": 2.0})
    text = out.read_text()
    assert "/secret" not in text
    head = json.loads(text.splitlines()[0])["header"]
    assert head["commit"] == ["c1", "c2"] and head["machine"]["load_avg_1min_mean"] == 2.0
    assert len(text.splitlines()) == 2
    # an export written with the path (older script) is copied without it
    old = tmp_path / "old"
    old.mkdir()
    (old / "run-a.jsonl").write_text(
        json.dumps({"header": {**head, "config": cfg}}) + "\n" + text.splitlines()[1]
    )
    copied = table1_queue.copy_export(old / "run-a.jsonl", tmp_path / "new")
    assert "/secret" not in copied.read_text() and copied.read_text().splitlines()[1] == text.splitlines()[1]


def test_unfinished_runs_form_their_own_cells(runs, tmp_path_factory):
    sgd = load_cell("lenet", "sgd", "authors")["train"]
    write_export(runs, "sgd-authors-s1", sgd, 1, [0.8, 0.6, 0.55])
    path = runs / "sgd-authors-s1.jsonl"
    lines = path.read_text().splitlines()
    head = json.loads(lines[0])
    head["header"].update(result=None, complete=False)
    path.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    cells = collect_table1.collect(runs)
    done = [c for c in cells if c["optimizer"] == "sgd" and c["complete"]]
    partial = [c for c in cells if not c["complete"]]
    assert len(done) == 1 and done[0]["seeds"] == [0]  # the unfinished seed does not enter the finished cell
    assert len(partial) == 1 and cells[-1] is partial[0]
    p = partial[0]
    assert p["variant"] == "authors" and p["final_mean"] is None and p["per_seed_final"] == [0.55]
    assert p["paper_min"] == 0.55 and p["effective_epochs"] == 3 and p["budget_effective_epochs"] == 100
    md = collect_table1.markdown(cells)
    assert "Unfinished runs" in md and "| sgd-authors-s1 | 1 | no | 0.55 | 0.55 @ 3 | 3 / 100 |" in md


def test_queue_partial_export(tmp_path):
    run = tmp_path / "runs" / "run-p"
    run.mkdir(parents=True)
    cfg = TrainConfig.from_dict({**load_cell("lenet", "hj")["train"], "data_dir": "/secret/place"}).to_dict()
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in curve([0.7, 0.6], L=5)) + "\n")
    out = table1_queue.export("run-p", run, tmp_path / "exp", "c1", partial=True)
    head, recs = collect_table1.read_export(out)
    assert head["complete"] is False and head["result"] is None and len(recs) == 2
    assert head["config"]["data_dir"] is None


def test_queue_restarts_a_run_killed_before_its_first_checkpoint(tmp_path):
    """A queue killed during a run's first epoch leaves config.json and an empty log.jsonl (no checkpoint);
    started again, the queue's command must train that run afresh, not stop at "holds files of an earlier
    run" (the 1 Dec evening queue did, with exit 2, because it passed --resume only with a checkpoint)."""
    from _tiny_run import tiny_train_argv
    from deeprelax.cli import main

    run = tmp_path / "run-a"
    cmd = table1_queue.train_command(tiny_train_argv(threads=None), run, 1, None)
    assert cmd[1:4] == ["-m", "deeprelax", "train"] and "--resume" in cmd
    assert main(cmd[3:]) == 0  # a fresh folder
    first = json.loads((run / "result.json").read_text())
    killed = tmp_path / "run-b"
    killed.mkdir()
    (killed / "config.json").write_text((run / "config.json").read_text())
    (killed / "log.jsonl").write_text("")
    cmd = table1_queue.train_command(tiny_train_argv(threads=None), killed, 1, None)
    assert main(cmd[3:]) == 0
    again = json.loads((killed / "result.json").read_text())
    assert again["final_error"] == first["final_error"]
    assert main(cmd[3:]) == 0  # finished: --resume of a finished run is a no-op, not an error
