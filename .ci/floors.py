"""Print the declared minimum of every runtime dependency as a pip requirement ``name==floor``.

Read from pyproject.toml (the one source), so the floors CI installs are the floors we declare. torch is left
out: CI pins the CPU build it always uses (``torch==2.13.0``) — see the comment in pyproject.toml.
"""

import re
import sys
from pathlib import Path

import tomllib

pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
for requirement in pyproject["project"]["dependencies"]:
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)", requirement.strip())
    if match is None:
        sys.exit(f"floors.py: cannot read a '>=' floor from {requirement!r}")
    name, floor = match.groups()
    if name != "torch":
        print(f"{name}=={floor}")
