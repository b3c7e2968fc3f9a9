"""The package's layering: optim is pure PyTorch, pde and cluster pure numpy/scipy, diagnostics torch +
numpy/scipy on top of optim/nets/pde (no plotting), and nothing below the experiments / command line imports
them."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "deeprelax"
ENV = {**os.environ, "PYTHONPATH": str(SRC.parent)}  # this checkout, whatever is installed

FORBIDDEN = {
    "optim": {
        "numpy",
        "scipy",
        "sklearn",
        "matplotlib",
        "deeprelax.pde",
        "deeprelax.cluster",
        "deeprelax.nets",
        "deeprelax.diagnostics",
        "deeprelax.experiments",
        "deeprelax.cli",
        "deeprelax.integrations",
    },
    "pde": {
        "torch",
        "matplotlib",
        "sklearn",
        "deeprelax.optim",
        "deeprelax.nets",
        "deeprelax.cluster",
        "deeprelax.diagnostics",
        "deeprelax.experiments",
        "deeprelax.cli",
    },
    "cluster": {
        "torch",
        "matplotlib",
        "deeprelax.optim",
        "deeprelax.nets",
        "deeprelax.pde",
        "deeprelax.diagnostics",
        "deeprelax.experiments",
        "deeprelax.cli",
    },
    "nets": {
        "matplotlib",
        "deeprelax.diagnostics",
        "deeprelax.experiments",
        "deeprelax.cli",
        "deeprelax.integrations",
    },
    "diagnostics": {
        "matplotlib",
        "sklearn",
        "tqdm",
        "deeprelax.cluster",
        "deeprelax.experiments",
        "deeprelax.cli",
        "deeprelax.integrations",
    },
    # bridges to other frameworks: on top of optim / nets, below the experiments and the command line; the
    # framework itself is imported lazily (test below)
    "integrations": {"deeprelax.experiments", "deeprelax.cli"},
    # process-group plumbing only: below the optimizers, knows nothing about them
    "distributed": {
        "numpy",
        "scipy",
        "sklearn",
        "matplotlib",
        "deeprelax.optim",
        "deeprelax.nets",
        "deeprelax.pde",
        "deeprelax.cluster",
        "deeprelax.diagnostics",
        "deeprelax.experiments",
        "deeprelax.cli",
        "deeprelax.integrations",
    },
}


def imported_modules(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer):
    bad = []
    for path in sorted((SRC / layer).rglob("*.py")):
        for mod in imported_modules(path):
            if any(mod == f or mod.startswith(f + ".") for f in FORBIDDEN[layer]):
                bad.append(f"{path.relative_to(SRC)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_numpy_layers_load_without_torch_or_matplotlib():
    code = (
        "import sys, deeprelax.pde, deeprelax.cluster; "
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV
    ).stdout
    assert out.strip() == "[]"


def test_integrations_load_without_their_framework():
    code = (
        "import sys, deeprelax.integrations.lightning; "
        "print(sorted(m for m in ('lightning', 'pytorch_lightning') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV
    ).stdout
    assert out.strip() == "[]"
