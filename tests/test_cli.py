import subprocess
import sys

from deeprelax.cli import build_parser, main


def test_help_lists_existing_subcommands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    sub = build_parser()._subparsers._group_actions[0]  # the subparsers action
    for name in sub.choices:
        assert name in out


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "deeprelax", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("deeprelax ")
