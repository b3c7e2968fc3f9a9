"""Table-1 cells: the shipped configs (the paper's numbers and budgets, ours and the authors' variants),
both readings over seeds, the runner and the CLI."""

import json
import math
import statistics

import pytest

from deeprelax.experiments.table1 import (
    MODELS,
    OPTIMIZERS,
    aggregate,
    load_cell,
    markdown_table,
    mean_std,
    read_log,
    run_cell,
    variants_of,
)
from deeprelax.experiments.train import TrainConfig

# REFERENCE §4 (Deep Relaxation, Table 1): error (%), std, effective epochs
PAPER = {
    ("mnistfc", "entropy-sgd"): (1.08, 0.02, 120),
    ("mnistfc", "heat"): (1.13, 0.02, 200),
    ("mnistfc", "hj"): (1.17, 0.04, 200),
    ("mnistfc", "sgd"): (1.10, 0.01, 194),
    ("lenet", "entropy-sgd"): (0.50, 0.01, 80),
    ("lenet", "heat"): (0.59, 0.02, 75),
    ("lenet", "hj"): (0.50, 0.01, 70),
    ("lenet", "sgd"): (0.50, 0.02, 67),
    ("allcnn", "entropy-sgd"): (7.96, 0.05, 160),
    ("allcnn", "heat"): (9.04, 0.04, 150),
    ("allcnn", "hj"): (7.89, 0.07, 145),
    ("allcnn", "sgd"): (7.94, 0.06, 195),
}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_cell_config_matches_the_paper_budget(model, opt):
    doc = load_cell(model, opt)
    cfg = TrainConfig.from_dict(doc["train"])
    err, std, eff = PAPER[(model, opt)]
    assert (doc["paper"]["error"], doc["paper"]["std"], doc["paper"]["effective_epochs"]) == (err, std, eff)
    L = cfg.hparams.get("L", 0)
    assert cfg.epochs * max(L, 1) == eff  # exactly the paper's effective epochs
    assert cfg.model == model and cfg.optimizer == opt and cfg.batch_size == 128
    assert cfg.sampling == "replacement"
    assert cfg.data == ("cifar10" if model == "allcnn" else "mnist")
    assert doc["notes"]


AUTHORS_CELLS = [(m, o) for m in ("lenet", "mnistfc") for o in OPTIMIZERS if "authors" in variants_of(m, o)]


@pytest.mark.parametrize(("model", "opt"), AUTHORS_CELLS)
def test_authors_variant_runs_at_least_the_paper_budget(model, opt):
    ours, doc = load_cell(model, opt), load_cell(model, opt, "authors")
    cfg = TrainConfig.from_dict(doc["train"])
    assert doc["paper"] == ours["paper"] and doc["variant"] == "authors" and doc["notes"]
    assert cfg.epochs * max(cfg.hparams.get("L", 0), 1) >= doc["paper"]["effective_epochs"]  # E is read off
    assert (cfg.model, cfg.optimizer, cfg.batch_size, cfg.sampling, cfg.data) == (
        model,
        opt,
        128,
        "replacement",
        "mnist",
    )
    if model == "lenet":
        assert cfg.model_options["dropout"] == 0.25  # hard-coded in the Table-1 code's models.py


def test_authors_variants_shipped():
    assert AUTHORS_CELLS == [
        ("lenet", "sgd"),
        ("lenet", "entropy-sgd"),
        ("lenet", "hj"),
        ("lenet", "heat"),
        ("mnistfc", "sgd"),
        ("mnistfc", "entropy-sgd"),
    ]
    with pytest.raises(ValueError, match="no 'authors' variant for mnistfc/hj"):
        load_cell("mnistfc", "hj", "authors")
    with pytest.raises(ValueError, match="variant"):
        load_cell("lenet", "sgd", "theirs")


def test_authors_entropy_sgd_is_the_lua_procedure():
    for model, epochs in (("lenet", 5), ("mnistfc", 6)):
        t = load_cell(model, "entropy-sgd", "authors")["train"]
        h = t["hparams"]
        assert (h["momentum"], h["inner_momentum"], h["inner_nesterov"]) == (0.0, 0.9, True)
        # momentum on the loss gradient only, reset at every outer step
        assert h.get("inner_momentum_on", "gradient") == "gradient"
        assert t["lr_schedule"] == {"0": 1.0, "2": 0.1} and t["epochs"] == epochs  # never 0.01
        assert {k: h[k] for k in ("L", "inner_lr", "gamma", "scoping", "noise", "alpha")} == {
            "L": 20,
            "inner_lr": 0.1,
            "gamma": 1e-4,
            "scoping": 1e-3,
            "noise": 1e-4,
            "alpha": 0.75,
        }
    assert load_cell("lenet", "sgd", "authors")["train"]["epochs"] == 100
    assert load_cell("mnistfc", "sgd", "authors")["train"]["epochs"] == 200


STABILITY_CELLS = [(m, o, v) for m in MODELS for o in ("entropy-sgd", "heat") for v in variants_of(m, o)]


@pytest.mark.parametrize(("model", "opt", "variant"), STABILITY_CELLS)
def test_scoped_gamma_stays_inside_the_langevin_stability_line(model, opt, variant):
    # the inner loop is unstable once inner_lr·(γ_t + wd) >= 2; γ_t = min(γ(1 + scoping)^t, gamma_max)
    # must stay below that line for the whole budget (uncapped, mnistfc HEAT crossed it and diverged)
    cfg = TrainConfig.from_dict(load_cell(model, opt, variant)["train"])
    h = cfg.hparams
    n_train = 50_000 if model == "allcnn" else 60_000
    steps = cfg.epochs * math.ceil(n_train / cfg.batch_size)
    gamma = h["gamma"] * (1 + h["scoping"]) ** steps
    if h.get("gamma_max") is not None:
        gamma = min(gamma, h["gamma_max"])
    assert h["inner_lr"] * (gamma + h["weight_decay"]) < 2


def test_published_hyperparameters_are_the_reference_ones():
    esgd = load_cell("lenet", "entropy-sgd")["train"]
    assert esgd["hparams"] == {
        "lr": 1.0,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 0.0,
        "L": 20,
        "inner_lr": 0.1,
        "gamma": 1e-4,
        "scoping": 1e-3,
        "noise": 1e-4,
        "alpha": 0.75,
    }
    sgd = load_cell("mnistfc", "sgd")["train"]
    assert sgd["lr_schedule"] == {"0": 0.1, "30": 0.02, "60": 0.004}
    cifar = load_cell("allcnn", "sgd")["train"]
    assert cifar["hparams"]["weight_decay"] == 1e-3
    assert cifar["lr_schedule"] == {"0": 0.1, "60": 0.02, "120": 0.004, "180": 0.0008}
    assert load_cell("allcnn", "entropy-sgd")["train"]["hparams"]["gamma"] == 0.03
    assert load_cell("mnistfc", "entropy-sgd")["train"]["model_options"]["dropout"] == 0.2


def test_mean_std_and_aggregate():
    m, s = mean_std([0.5, 0.7, 0.6])
    assert m == pytest.approx(0.6) and s == pytest.approx(statistics.stdev([0.5, 0.7, 0.6]))
    assert s == pytest.approx(0.1)  # sample std (ddof = 1)
    assert mean_std([0.42]) == (0.42, 0.0)
    doc = load_cell("lenet", "hj")
    summaries = [
        {
            "seed": k,
            "final_error": e,
            "best_error": e - 0.05,
            "effective_epochs": 15,
            "grad_evals": 9,
            "wall_time": 60.0 * (k + 1),
            "data": "mnist",
        }
        for k, e in enumerate([0.55, 0.45])
    ]
    # mean curve 0.65, 0.50, 0.50: minimum 0.50 first at epoch 2 (10 effective epochs), std 0.07 there
    curves = [
        [{"epoch": e + 1, "effective_epochs": 5 * (e + 1), "test_error": x} for e, x in enumerate(c)]
        for c in ([0.70, 0.45, 0.55], [0.60, 0.55, 0.45])
    ]
    row = aggregate(doc, summaries, curves)
    assert row["final_mean"] == pytest.approx(0.5) and row["final_std"] == pytest.approx(0.0707107)
    assert row["paper_min"] == pytest.approx(0.5) and row["paper_min_effective_epoch"] == 10
    assert row["paper_min_std"] == pytest.approx(0.0707107) and row["reach_effective_epoch"] == 10
    assert row["wall_time_mean"] == 90.0 and row["paper_value"] == 0.5 and row["variant"] == "ours"
    line = markdown_table([row]).splitlines()[-1]
    assert line == (
        "| lenet | HJ | ours | 2 | 0.50 ± 0.07 @ 15 | 0.50 ± 0.07 @ 10 | 0.50 ± 0.01 @ 70 "
        "| 0.60 % @ 10 | 1.5 min |"
    )


def test_unknown_cell():
    with pytest.raises(ValueError, match="model"):
        load_cell("resnet", "sgd")
    with pytest.raises(ValueError, match="optimizer"):
        load_cell("lenet", "adam")


def test_run_cell_smoke_and_reuse_of_finished_seeds(tmp_path):
    over = {
        "data": "mnist-subset",
        "epochs": 1,
        "steps_per_epoch": 2,
        "n_train": 256,
        "n_test": 100,
        "dry_feed_batches": 1,
        "threads": 1,
    }
    logs = []
    row = run_cell("lenet", "hj", [0, 1], tmp_path, overrides=over, progress=False, log=logs.append)
    assert row["seeds"] == [0, 1] and row["effective_epochs"] == 5 and row["grad_evals"] == 12
    assert json.loads((tmp_path / "row.json").read_text()) == row
    assert (tmp_path / "row.md").read_text().startswith("| model |")
    res = [json.loads((tmp_path / f"seed{k}" / "result.json").read_text()) for k in (0, 1)]
    assert row["final_mean"] == pytest.approx(sum(r["final_error"] for r in res) / 2)
    # one epoch per seed: the mean curve has one point, so the paper's reading is the mean of the finals
    assert row["paper_min"] == pytest.approx(row["final_mean"]) and row["paper_min_effective_epoch"] == 5
    assert [read_log(tmp_path / f"seed{k}" / "log.jsonl")[-1]["test_error"] for k in (0, 1)] == [
        r["final_error"] for r in res
    ]
    logs.clear()
    again = run_cell("lenet", "hj", [0, 1], tmp_path, overrides=over, progress=False, log=logs.append)
    assert again == row and all("finished earlier" in x for x in logs)


def test_cli_table1(tmp_path, capsys):
    from deeprelax.cli import main

    assert main(["table1", "--model", "mnistfc", "--optimizer", "sgd", "--show"]) == 0
    assert '"effective_epochs": 194' in capsys.readouterr().out
    table = tmp_path / "results.md"
    assert (
        main(
            [
                "table1",
                "--model",
                "mnistfc",
                "--optimizer",
                "entropy-sgd",
                "--seeds",
                "3",
                "--data",
                "mnist-subset",
                "--epochs",
                "1",
                "--steps-per-epoch",
                "1",
                "--dry-feed-batches",
                "1",
                "--threads",
                "1",
                "--no-progress",
                "--out",
                str(tmp_path / "cell"),
                "--table",
                str(table),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| mnistfc | Entropy-SGD | ours | 1 |" in out and "1.08 ± 0.02 @ 120" in out
    assert "selects the epoch on the test set" in out
    assert table.read_text().startswith("| mnistfc | Entropy-SGD | ours | 1 |")
    assert main(["table1", "--model", "lenet"]) == 2
    assert main(["table1", "--model", "lenet", "--optimizer", "sgd", "--variant", "authors", "--show"]) == 0
    shown = capsys.readouterr().out
    assert "table1-lenet-sgd-authors.json" in shown
    assert '"epochs": 100' in shown and '"dropout": 0.25' in shown
