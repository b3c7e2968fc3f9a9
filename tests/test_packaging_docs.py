"""The docs site's griffe extension: RST math, roles and doctests become Markdown + arithmatex."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("griffe")
ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("rst_math", ROOT / "docs" / "_ext" / "rst_math.py")
rst_math = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rst_math)


def test_math_blocks_roles_and_doctests():
    text = """Intro :math:`x^2`, :class:`~deeprelax.optim.EntropySGD`, :func:`deeprelax.nets.load_dataset`.

.. math::  f(x) = x^2

.. math::

    a &= b \\\\
    c &= d

after

>>> 1 + 1
2

end"""
    out = rst_math.rst_to_markdown(text)
    assert "$x^2$" in out and "`EntropySGD`" in out and "`deeprelax.nets.load_dataset`" in out
    assert "$$\nf(x) = x^2\n$$" in out
    assert "$$\n\\begin{aligned}\na &= b \\\\\nc &= d\n\\end{aligned}\n$$" in out
    assert "```pycon\n>>> 1 + 1\n2\n```" in out
    assert ".. math::" not in out and ":math:" not in out and out.rstrip().endswith("end")
    assert "\nafter\n" in out


def test_every_math_directive_of_the_package_is_converted():
    converted = 0
    for path in (ROOT / "src" / "deeprelax").rglob("*.py"):
        text = path.read_text()
        if ".. math::" in text:
            out = rst_math.rst_to_markdown(text)
            assert ".. math::" not in out, path
            assert out.count("$$") % 2 == 0, path
            converted += 1
    assert converted > 0
