"""Griffe extension for the API reference: the docstrings' RST math, roles and doctests, in Markdown.

The docstrings write equations as ``.. math::`` blocks and ``:math:`...``` roles (so they also read well in
``help()``); mkdocstrings renders Markdown, where pymdownx.arithmatex takes ``$...$`` and ``$$...$$``. Cross
references such as ``:class:`~deeprelax.optim.EntropySGD``` become code spans.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE_MATH = re.compile(r":math:`([^`]+)`")
_ROLE_REF = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc|const):`(~?)([^`]+)`")


def _ref(match: re.Match[str]) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def _block(lines: list[str]) -> list[str]:
    body = "\n".join(lines).strip("\n")
    if "\\\\" in body or "&" in body:
        body = "\\begin{aligned}\n" + body + "\n\\end{aligned}"
    return ["", "$$", body, "$$", ""]


def rst_to_markdown(text: str) -> str:
    """Convert ``.. math::`` blocks and the inline roles of a docstring."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith(".. math::"):
            indent = len(line) - len(stripped)
            inline = stripped[len(".. math::") :].strip()
            block = [inline] if inline else []
            i += 1
            while i < len(lines) and (
                not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
            ):
                block.append(lines[i].strip())
                i += 1
            while block and not block[-1]:
                block.pop()
            out.extend(_block(block))
            continue
        if stripped.startswith(">>>"):  # a doctest: a console code block up to the next blank line
            out.extend(["", "```pycon"])
            while i < len(lines) and lines[i].strip():
                out.append(lines[i])
                i += 1
            out.extend(["```", ""])
            continue
        out.append(line)
        i += 1
    result = "\n".join(out)
    result = _ROLE_MATH.sub(lambda m: f"${m.group(1)}$", result)
    return _ROLE_REF.sub(_ref, result)


class RstMath(griffe.Extension):
    """Rewrite every docstring once it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
