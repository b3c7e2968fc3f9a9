"""The PDE lab: one module per theoretical claim of the seeds.

Every module of this package whose name does not start with ``_`` is a lab and defines::

    NAME: str    # command-line name, e.g. "local-entropy"
    ORDER: int   # position in ``deeprelax lab list``
    TITLE: str   # one line: the claim the lab checks
    def run(out: pathlib.Path, *, seed: int = 0) -> LabResult

``run`` writes its PNG figure(s) into ``out`` (created by the caller) and returns a :class:`LabResult`
whose ``numbers`` are JSON-serialisable (floats, ints, lists, dicts of those).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any


@dataclass
class LabResult:
    name: str
    numbers: dict[str, Any]
    figures: list[Path] = field(default_factory=list)
    summary: str = ""


def labs() -> dict[str, ModuleType]:
    """All labs, keyed by their command-line name, in presentation order."""
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            mods.append(importlib.import_module(f"{__name__}.{info.name}"))
    mods.sort(key=lambda m: (m.ORDER, m.NAME))
    return {m.NAME: m for m in mods}
