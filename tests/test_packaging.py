"""Packaging hygiene: one version, true dependency floors, a changelog, no machine-specific paths."""

import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import deeprelax

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
MACHINE_PATH = "/wo" + "rk/"  # spelled in two pieces so that this file does not match itself

# The oldest release of each dependency that the code needs, and why (raise the floor when you use more).
NEEDED = {
    "torch": ("2.3", "torch.amp.GradScaler('cpu'); torch.optim.optimizer.ParamsT (2.2)"),
    "numpy": ("2.0", "np.trapezoid"),
    "scipy": ("1.13", "the first scipy built against numpy 2"),
    "scikit-learn": ("1.6", "sklearn.utils.validation.validate_data"),
    "matplotlib": ("3.8.4", "the first matplotlib wheels built against numpy 2"),
}


def version_tuple(text):
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def floors():
    out = {}
    for req in PYPROJECT["project"]["dependencies"]:
        name, floor = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*>=\s*(\S+)", req).groups()
        out[name] = floor
    return out


def test_version_has_one_source():
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "deeprelax.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", deeprelax.__version__)
    try:
        installed = importlib.metadata.distribution("deeprelax")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("deeprelax is not installed")
    origin = json.loads(installed.read_text("direct_url.json") or "{}").get("url")
    if origin != ROOT.as_uri():
        pytest.skip(f"the installed deeprelax comes from {origin}, not this checkout")
    assert installed.version == deeprelax.__version__  # the metadata was built from __version__


@pytest.mark.parametrize("name", sorted(NEEDED))
def test_dependency_floor_is_at_least_what_the_code_needs(name):
    declared = floors()[name]
    needed, why = NEEDED[name]
    assert version_tuple(declared) >= version_tuple(needed), f"{name}>={declared}; we need {needed}: {why}"


def test_ci_floors_script_reads_every_floor_except_torch():
    out = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "floors.py")], capture_output=True, text=True, check=True
    ).stdout.split()
    expected = [f"{n}=={v}" for n, v in floors().items() if n != "torch"]
    assert out == expected


def test_changelog_names_the_current_version_or_unreleased():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text or f"## [{deeprelax.__version__}]" in text


def test_no_machine_specific_paths():
    files = [ROOT / "README.md"]
    for folder in ("src", "docs", "tests"):
        files += [
            p
            for p in (ROOT / folder).rglob("*")
            if p.is_file()
            and not {"gallery", "assets", "__pycache__"} & set(p.parts)
            and p.suffix in {".py", ".md", ".txt", ".json", ".html", ".csv", ".cfg", ".toml", ".yml"}
        ]
    hits = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in files
        for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if MACHINE_PATH in line
    ]
    assert not hits, "machine-specific paths (use --data-dir / $DEEPRELAX_DATA):\n" + "\n".join(hits)
