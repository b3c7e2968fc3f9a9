"""``deeprelax diagnose`` on a real (tiny) run folder, its errors, and the ``compare --diagnose`` hook."""

import json

import pytest

from deeprelax.cli import build_parser, main
from deeprelax.experiments import diagnose as dx
from deeprelax.experiments.compare import build_configs, load_compare_config, run_compare
from deeprelax.experiments.train import TrainConfig, train

TINY = [
    "--n-examples",
    "48",
    "--n-noise",
    "24",
    "--k",
    "1",
    "--tol",
    "1e-2",
    "--trace-samples",
    "2",
    "--slq-probes",
    "1",
    "--slq-steps",
    "4",
    "--mc-samples",
    "3",
    "--gammas",
    "10,100",
    "--sigmas",
    "0.1",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "sgd"
    cfg = TrainConfig(
        model="lenet",
        optimizer="sgd",
        epochs=1,
        n_train=128,
        n_test=50,
        steps_per_epoch=2,
        dry_feed_batches=1,
    )
    train(cfg, out, progress=False, log=None)
    return out


def test_diagnose_json_and_files(run_dir, capsys, monkeypatch):
    # keep the Langevin and landscape parts tiny too
    monkeypatch.setattr(dx.DiagnoseSettings, "langevin_steps", 2)
    monkeypatch.setattr(dx.DiagnoseSettings, "landscape_points", 3)
    monkeypatch.setattr(dx.DiagnoseSettings, "landscape_grid", 2)
    monkeypatch.setattr(dx.DiagnoseSettings, "ncv", 6)
    monkeypatch.setattr(dx.DiagnoseSettings, "energy_samples", 2)
    assert main(["diagnose", str(run_dir), "--json", *TINY]) == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("top_eigenvalues", "trace", "local_entropy", "noise_rank_percent"):
        assert res[key] is not None, key
    assert len(res["top_eigenvalues"]) == 1 and res["trace_stderr"] >= 0
    assert {e["method"] for e in res["local_entropy"]} == {"mc", "langevin"}
    assert res["noise"]["n_samples"] == 24
    assert 0 < res["noise_rank_percent"] <= res["noise"]["rank_bound_percent"]
    assert res["run"]["optimizer"] == "sgd" and res["n_params"] == 131220
    d = run_dir / "diagnostics"
    for name in (
        "diagnostics.json",
        "diagnostics.md",
        "hessian_density.png",
        "local_entropy.png",
        "noise_spectrum.png",
        "landscape.png",
    ):
        assert (d / name).stat().st_size > 0, name
    md = (d / "diagnostics.md").read_text()
    assert "Hessian" in md and "SGD noise" in md and "![landscape](landscape.png)" in md
    # a subset of --what: the other keys are there, as null
    assert main(["diagnose", str(run_dir), "--json", "--what", "noise", "--out", str(d / "n"), *TINY]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["top_eigenvalues"] is None and res["trace"] is None and res["noise_rank_percent"] > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["diagnose", "/nonexistent/run"], "not a folder"),
        (["diagnose", "{tmp}"], "no checkpoint.pt"),
        (["diagnose", "{run}", "--what", "hessian,flatness"], "--what"),
        (["diagnose", "{run}", "--gammas", "1,x"], "--gammas"),
        (["diagnose", "{run}", "--k", "0"], "k must"),
        (["diagnose", "{bad}"], "cannot read"),
    ],
)
def test_diagnose_errors_exit_2_with_a_message(argv, message, run_dir, tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    argv = [a.format(tmp=tmp_path, run=run_dir, bad=tmp_path / "bad") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_compare_diagnose_hook(tmp_path, monkeypatch):
    settings = load_compare_config()
    tiny = {"n_train": 128, "n_test": 50, "steps_per_epoch": 2, "dry_feed_batches": 1}
    configs = build_configs(settings, optimizers=["sgd", "entropy-sgd"], budget=5, overrides=tiny)
    monkeypatch.setattr(
        dx,
        "COMPARE_SETTINGS",
        dx.DiagnoseSettings(
            n_examples=32,
            batch_size=32,
            k=1,
            tol=1e-2,
            ncv=6,
            trace_samples=2,
            gammas=(10.0,),
            mc_samples=3,
            langevin=False,
            sigmas=(0.1,),
            energy_samples=2,
        ),
    )
    res = run_compare(configs, tmp_path, jobs=1, log=None, diagnose=True)
    rows = {r["optimizer"]: r for r in res["diagnostics"]["rows"]}
    assert set(rows) == {"sgd", "entropy-sgd"}
    for r in rows.values():
        assert r["top_eigenvalue"] > 0 and r["trace_stderr"] >= 0 and r["local_entropy_stderr"] >= 0
        assert r["local_energy_stderr"] > 0 and r["sigma"] == 0.1
    interp = res["diagnostics"]["interpolation"]
    assert len(interp["ts"]) == len(interp["loss"]) == 13
    assert (tmp_path / "interpolation.png").stat().st_size > 0
    report = (tmp_path / "report.md").read_text()
    assert "top Hessian eigenvalue" in report and "local energy" in report and "interpolation.png" in report
    assert json.loads((tmp_path / "diagnostics.json").read_text())["rows"]
    assert build_parser().parse_args(["compare", "--diagnose"]).diagnose


def test_what_and_settings_validation():
    assert dx.parse_what("all") == dx.WHAT
    assert dx.parse_what("noise,hessian") == ("hessian", "noise")  # canonical order
    with pytest.raises(ValueError, match="--what"):
        dx.parse_what("")
    with pytest.raises(ValueError, match="gammas"):
        dx.DiagnoseSettings(gammas=(1.0, -2.0))
    with pytest.raises(ValueError, match="n_noise"):
        dx.DiagnoseSettings(n_noise=1)
    with pytest.raises(ValueError, match="beta"):
        dx.DiagnoseSettings(beta=0.0)
