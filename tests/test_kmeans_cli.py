"""``deeprelax kmeans`` end to end on a tiny run, and the table arithmetic."""

import json

import numpy as np
import pytest

from deeprelax.cli import main
from deeprelax.experiments.kmeans import MethodRuns, markdown_table, same_partition, summarize, time_ratio


def test_summary_rows_are_the_seed_table():
    f = 2.0
    runs = {
        "A": MethodRuns(
            energies=[f, f * (1 + 2e-3), 2 * f],
            times=[0.01, 0.02, 0.03],
            optimal_partition=[True, True, False],
        ),
        "B": MethodRuns(energies=[f, f], times=[0.04, 0.04], optimal_partition=[True, True]),
    }
    rows = summarize(runs, f_star=f, rtol=1e-3)
    a = rows[0]
    assert a["min"] == f and a["max"] == 2 * f
    assert a["mean"] == pytest.approx(np.mean(runs["A"].energies))
    assert a["variance"] == pytest.approx(np.var(runs["A"].energies))
    assert a["pct_global_min"] == pytest.approx(100 / 3)
    assert a["pct_optimal_partition"] == pytest.approx(200 / 3)
    assert a["ms_per_trial"] == pytest.approx(20.0)
    assert time_ratio(rows, "B", "A") == pytest.approx(2.0)
    md = markdown_table(rows)
    assert md.splitlines()[0].startswith("| Method | Min | Max | Mean | Variance | % global min")
    assert len(md.splitlines()) == 4


def test_same_partition_ignores_label_names():
    assert same_partition(np.array([0, 0, 1, 2]), np.array([2, 2, 0, 1]))
    assert not same_partition(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert not same_partition(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 2]))


def test_cli_kmeans_writes_table_and_figures(tmp_path, capsys):
    out = tmp_path / "km"
    rc = main(
        [
            "kmeans",
            "--trials",
            "2",
            "--dataset",
            "four-means",
            "--batch-size",
            "100",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "| ESGD |" in text and "ESGD / mb-EM wall time per trial" in text
    res = json.loads((out / "kmeans_four-means_b100.json").read_text())
    assert [r["method"] for r in res["rows"]] == ["EM", "mb-EM", "k-means++", "ESGD", "ESGD-strong"]
    assert res["trials"] == 2 and len(res["raw"]["ESGD"]["energies"]) == 2
    assert all(e >= res["f_star"] * (1 - 1e-12) for m in res["raw"].values() for e in m["energies"])
    assert (out / "kmeans_four-means_b100.md").read_text().count("|") > 20
    for png in ["kmeans_four-means_b100_hist.png", "kmeans_four_means.png", "kmeans_four-means_data.png"]:
        assert (out / png).stat().st_size > 10_000


def test_cli_kmeans_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["kmeans", "--trials", "0"])
    with pytest.raises(SystemExit):
        main(["kmeans", "--dataset", "nope"])
    assert "invalid" in capsys.readouterr().err


def test_family_summary_goals_and_table(tmp_path):
    from deeprelax.cluster.datasets import FamilyMember
    from deeprelax.experiments.kmeans import (
        MBKM_PP,
        MemberRuns,
        family_figure,
        family_goal_status,
        family_table,
        run_family,
        summarize_member,
    )

    f = 1.0
    runs = {
        "k-means++": MemberRuns(energies=[f] * 9 + [2 * f], times=[0.01] * 10, basin=[True] * 9 + [False]),
        "ESGD": MemberRuns(energies=[f * (1 + 5e-4)] * 10, times=[0.025] * 10, basin=[True] * 10),
        MBKM_PP: MemberRuns(energies=[3 * f] * 10, times=[0.02] * 10, basin=[False] * 10),
    }
    s = summarize_member(runs, f_ref=f)
    assert s["k-means++"]["pct_at_ref"] == pytest.approx(90) and s["ESGD"]["pct_at_ref"] == 100
    assert s["time_ratio"] == pytest.approx(1.25)
    eq = FamilyMember("m", dict(imbalance=1.0), 100, "held-out")
    uneq = FamilyMember("m", dict(imbalance=3.0), 100, "held-out")
    assert family_goal_status(eq, s) == ("met", "met")
    s["ESGD"]["pct_at_ref"] = 94.0
    assert family_goal_status(eq, s)[0] == "MISSED" and family_goal_status(uneq, s)[0] == "met"
    s["k-means++"]["pct_at_ref"] = 85.0
    assert family_goal_status(eq, s)[0] == "n/a"
    # end to end on one tiny member
    tiny = FamilyMember(
        "tiny",
        dict(
            n_samples=400,
            n_clusters=4,
            n_features=2,
            separation=10.0,
            imbalance=2.0,
            anisotropy=2.0,
            random_state=0,
        ),
        50,
        "held-out",
    )
    recs = run_family([tiny], trials=2, restarts=3, progress=False)
    assert recs[0]["summary"]["ESGD"]["pct_at_ref"] == 100  # well separated: every method but random init
    assert len(recs[0]["raw"]["ESGD"]["energies"]) == 2 and "time_ratio" in recs[0]["summary"]
    md = family_table(recs)
    assert md.count("\n") == 2 and "| tiny | unequal |" in md
    assert family_figure(recs, tmp_path / "f.png", "t").stat().st_size > 5000
