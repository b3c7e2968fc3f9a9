"""The main job, ``deeprelax compare``: equal effective-epoch budgets, schedules, table, plot, report."""

import json

import pytest

from deeprelax.experiments.compare import build_configs, load_compare_config, markdown_table, run_compare


def test_default_settings_give_equal_effective_epoch_budgets():
    settings = load_compare_config()
    configs = build_configs(settings)
    assert list(configs) == ["sgd", "entropy-sgd", "hj", "heat"]
    budget = settings["budget"]
    for name, c in configs.items():
        L = c.hparams.get("L", 0)
        assert c.epochs * max(L, 1) == budget, name
        assert c.data == "mnist-subset" and c.model == "lenet" and c.seed == 0
    # schedules are fractions of the budget: SGD 20 epochs → drops at epochs 10 and 15
    assert configs["sgd"].lr_schedule == {0: 0.1, 10: 0.02, 15: 0.004}
    assert configs["entropy-sgd"].lr_schedule == {0: 1.0, 2: 0.1, 3: 0.01}  # 4 epochs
    c = build_configs(settings, optimizers=["heat"], budget=30)["heat"]
    assert c.epochs == 6 and c.lr_schedule == {0: 1.0, 3: 0.1, 5: 0.01}  # ceil(0.5·6), ceil(0.75·6)


def test_a_missing_L_means_the_optimizers_own_default_not_zero():
    # the registry is the one source of truth: Entropy-SGD without "L" in its settings runs L = 20
    settings = load_compare_config()
    settings["optimizers"]["entropy-sgd"]["hparams"].pop("L")
    c = build_configs(settings, optimizers=["entropy-sgd"], budget=40)["entropy-sgd"]
    assert c.epochs == 2  # 40 effective epochs / L = 20 (the old default of 0 gave 40 epochs)
    with pytest.raises(ValueError, match="multiple of L = 20"):
        build_configs(settings, optimizers=["entropy-sgd"], budget=30)


def test_budget_override_and_errors():
    settings = load_compare_config()
    c = build_configs(settings, optimizers=["sgd", "hj"], budget=10, overrides={"model": "mnistfc"})
    assert c["sgd"].epochs == 10 and c["hj"].epochs == 2 and c["hj"].model == "mnistfc"
    assert c["hj"].lr_schedule == {0: 0.1, 1: 0.02}  # 0.75·2 = 1.5 → epoch 2 = beyond the run
    with pytest.raises(ValueError, match="multiple of L"):
        build_configs(settings, budget=7)
    with pytest.raises(ValueError, match="adam"):
        build_configs(settings, optimizers=["adam"])


def test_run_compare_writes_table_plot_and_report(tmp_path):
    settings = load_compare_config()
    tiny = {"n_train": 256, "n_test": 100, "steps_per_epoch": 2, "dry_feed_batches": 1}
    configs = build_configs(settings, budget=5, overrides=tiny)
    res = run_compare(configs, tmp_path, jobs=1, threads=1, log=None)
    rows = [r["summary"] for r in res["results"].values()]
    assert [r["optimizer"] for r in rows] == ["sgd", "entropy-sgd", "hj", "heat"]
    assert all(r["effective_epochs"] == 5 for r in rows)
    # gradient evaluations: SGD 5 epochs × 2 steps; L = 5 optimizers 1 epoch × 2 steps × 6 calls
    assert [r["grad_evals"] for r in rows] == [10, 12, 12, 12]
    report = (tmp_path / "report.md").read_text()
    assert markdown_table(rows) in report and "compare.png" in report
    assert (tmp_path / "compare.png").stat().st_size > 20_000
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"] == rows
    with pytest.raises(FileExistsError):
        run_compare(configs, tmp_path, jobs=1, log=None)


def test_cli_compare_in_parallel_processes(tmp_path, capsys):
    from deeprelax.cli import main

    rc = main(
        [
            "compare",
            "--out",
            str(tmp_path),
            "--optimizers",
            "sgd",
            "heat",
            "--budget",
            "5",
            "--steps-per-epoch",
            "1",
            "--n-train",
            "128",
            "--dry-feed-batches",
            "1",
            "--jobs",
            "2",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "| SGD (Nesterov) | 0 | 5 | 5 | 5 |" in out and "| HEAT | 5 | 1 | 5 | 6 |" in out
    assert "total wall time" in out
    assert main(["compare", "--out", str(tmp_path / "b"), "--budget", "3"]) == 2
    assert "multiple of L" in capsys.readouterr().err
