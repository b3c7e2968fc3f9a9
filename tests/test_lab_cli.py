"""``deeprelax lab``: list, one lab with --json, unknown names, and the index page of ``all``."""

import json
import types

from deeprelax.cli import lab as lab_cli
from deeprelax.cli import main
from deeprelax.experiments.lab import LabResult, labs


def test_list_names_every_lab_with_its_title(capsys):
    assert main(["lab", "list"]) == 0
    out = capsys.readouterr().out
    for name, mod in labs().items():
        assert name in out and mod.TITLE in out
    assert main(["lab", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {n: m.TITLE for n, m in labs().items()}


def test_one_lab_json_into_tmp_path(tmp_path, capsys):
    assert main(["lab", "minibatch-noise", "--out", str(tmp_path), "--json", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    rec = json.loads(out)  # exactly one JSON object on stdout
    meta = rec["lab"]
    assert meta["name"] == "minibatch-noise" and meta["seed"] == 1 and meta["summary"]
    assert "loglog_slope" in rec  # the lab's numbers are the top-level keys
    assert meta["figures"] and all((tmp_path / f.split("/")[-1]).exists() for f in meta["figures"])


def test_unknown_lab_is_an_error_listing_the_choices(capsys):
    assert main(["lab", "no-such-lab"]) == 2
    err = capsys.readouterr().err
    assert "no-such-lab" in err and "kramers" in err and "list" in err


def _fake_lab(name, order, fail=False):
    def run(out, *, seed=0):
        if fail:
            raise RuntimeError("boom")
        p = out / f"{name}.png"
        p.write_bytes(b"\x89PNG fake")
        return LabResult(
            name=name,
            numbers={"x": 1.5, "arr": [1, 2], "nan": float("nan")},
            figures=[p],
            summary=f"{name} ok",
        )

    return types.SimpleNamespace(
        NAME=name,
        ORDER=order,
        TITLE=f"title of {name}",
        run=run,
        __doc__=f"{name}.\n\nClaim: something about {name}.",
    )


def test_all_writes_index_and_one_json_object(tmp_path, capsys, monkeypatch):
    fake = {"alpha": _fake_lab("alpha", 1), "beta": _fake_lab("beta", 2)}
    monkeypatch.setattr("deeprelax.experiments.lab.labs", lambda: fake)
    assert main(["lab", "all", "--out", str(tmp_path), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert set(rec) == {"alpha", "beta"} and rec["alpha"]["nan"] is None
    md = (tmp_path / "index.md").read_text()
    html = (tmp_path / "index.html").read_text()
    for name in fake:
        assert f"## {name}" in md and f"title of {name}" in md and f"{name}/{name}.png" in md
        assert f"Claim: something about {name}" in md
        assert f"src='{name}/{name}.png'" in html
        assert (tmp_path / name / f"{name}.png").exists()


def test_all_reports_a_failing_lab(tmp_path, capsys, monkeypatch):
    fake = {"good": _fake_lab("good", 1), "bad": _fake_lab("bad", 2, fail=True)}
    monkeypatch.setattr("deeprelax.experiments.lab.labs", lambda: fake)
    assert main(["lab", "all", "--out", str(tmp_path)]) == 1
    assert "FAILED" in (tmp_path / "index.md").read_text()
    assert "bad FAILED" in capsys.readouterr().err


def test_jsonable_converts_numpy():
    import numpy as np

    d = lab_cli._jsonable({"a": np.float64(1.5), "b": np.arange(3), "c": np.inf, "d": np.bool_(True)})
    assert d == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": True}


def test_all_with_index_elsewhere_links_relative_to_it(tmp_path, capsys, monkeypatch):
    fake = {"alpha": _fake_lab("alpha", 1)}
    monkeypatch.setattr("deeprelax.experiments.lab.labs", lambda: fake)
    out, index = tmp_path / "docs" / "lab", tmp_path / "docs" / "lab.md"
    assert main(["lab", "all", "--out", str(out), "--index", str(index)]) == 0
    md = index.read_text()
    assert "](lab/alpha/alpha.png)" in md and f"--index {index}" in md
    assert "src='alpha/alpha.png'" in (out / "index.html").read_text()
    assert not (out / "index.md").exists()
