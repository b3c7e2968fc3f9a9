"""The ``deeprelax`` command line.

Every module of this package whose name does not start with ``_`` is a subcommand. A subcommand module
defines::

    NAME: str                      # the subcommand, e.g. "lab"
    HELP: str                      # one line for ``deeprelax --help``
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...

Modules must import heavy dependencies (torch, matplotlib, ...) inside ``run`` so that ``--help`` stays fast.

Errors: :func:`main` is the one error boundary of every subcommand. An ordinary mistake — ``ValueError``
(invalid arguments, configs and data files; the project's convention), ``OSError`` (missing or unwritable
files) or any exception class defined in ``deeprelax`` — becomes one line on stderr,
``deeprelax <cmd>: error: <cause> (<file>)``, and exit status 2; an exception class may set ``exit_code`` and
``verb`` (``NonFiniteLossError``: "stopped", 1). ``--debug`` (anywhere on the command line) or
``DEEPRELAX_DEBUG=1`` also prints the traceback. Anything else is a bug: its traceback is shown, exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from deeprelax import __version__


def _subcommand_modules() -> list[ModuleType]:
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module(f"{__name__}.{info.name}"))
    return sorted(mods, key=lambda m: getattr(m, "ORDER", 100))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deeprelax",
        description="Deep Relaxation: PDE-derived optimizers, the PDE lab and the paper's experiments.",
    )
    parser.add_argument("--version", action="version", version=f"deeprelax {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False,
        help="show the traceback of an error (also: DEEPRELAX_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _subcommand_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        if not any("--debug" in a.option_strings for a in p._actions):
            # SUPPRESS: absent after the subcommand, it does not overwrite the top-level value
            p.add_argument(
                "--debug",
                action="store_true",
                default=argparse.SUPPRESS,
                help="show the traceback of an error (also: DEEPRELAX_DEBUG=1)",
            )
        p.set_defaults(_run=mod.run)
    return parser


def _is_ordinary(exc: BaseException) -> bool:
    """Errors that are the user's to fix (a message), not bugs (a traceback)."""
    return isinstance(exc, (ValueError, OSError)) or type(exc).__module__.split(".")[0] == "deeprelax"


def error_line(exc: BaseException) -> str:
    """The cause on one line, with the file it concerns: ``No such file or directory (cfg.json)``."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        files = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else f"{exc.filename}"
        text = f"{exc.strerror} ({files})"
    elif isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in str(exc):
        text = f"{exc} ({exc.filename})"
    else:
        text = str(exc) or type(exc).__name__
        if isinstance(exc, KeyError | IndexError) or not str(exc):
            text = f"{type(exc).__name__}: {text}"
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _debug_wanted(args: argparse.Namespace | None, argv: Sequence[str] | None) -> bool:
    if os.environ.get("DEEPRELAX_DEBUG", "").strip().lower() not in ("", "0", "false", "no"):
        return True
    if args is not None and getattr(args, "debug", False):
        return True
    return "--debug" in (sys.argv[1:] if argv is None else argv)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _is_ordinary(exc):
            raise  # a bug: the traceback is the report
        if _debug_wanted(args, argv):
            traceback.print_exc()
        verb = getattr(exc, "verb", "error")
        print(f"deeprelax {args.command}: {verb}: {error_line(exc)}", file=sys.stderr)
        code = getattr(exc, "exit_code", 2)
        return code if isinstance(code, int) else 2
