"""``deeprelax lab``: run the PDE lab — one verified computation and figure per theoretical claim.

    deeprelax lab list                        names and titles of the labs
    deeprelax lab NAME [--out DIR] [--json]   run one lab: PNG figure(s) into DIR, its numbers on stdout
    deeprelax lab all --out DIR [--json]      run every lab into DIR/NAME/, write DIR/index.md + index.html
                     [--index FILE]           (the markdown index at FILE instead, links relative to it)

With ``--json`` exactly one JSON object is printed on stdout: the lab's numbers as its top-level keys, and
its name, title, summary, figures, seconds and seed under ``"lab"`` (for ``all``: one such object per lab,
keyed by lab name); progress goes to stderr. An unknown lab name is an error (exit code 2) that lists
the choices.
"""

from __future__ import annotations

import argparse
import html
import inspect
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

NAME = "lab"
HELP = "run the PDE lab: one verified computation + figure per claim of the seeds (list, NAME or all)"
ORDER = 30

DEFAULT_OUT = Path("lab-results")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", metavar="NAME", help="a lab name, 'list' to list them, or 'all' to run every lab"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output directory for figures (and the index page for 'all'); default ./{DEFAULT_OUT}",
    )
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.add_argument(
        "--index",
        type=Path,
        default=None,
        help="for 'all': where to write the markdown index (default OUT/index.md)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed passed to the lab(s) (default 0)")


def _jsonable(x: Any) -> Any:
    """Plain JSON types; numpy scalars/arrays converted, non-finite floats become null."""
    import numpy as np

    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, complex):
        return [x.real, x.imag]
    if isinstance(x, Path):
        return str(x)
    if x is None or isinstance(x, str):
        return x
    return str(x)


def _claim(mod: Any) -> str:
    """The lab module's docstring without its first line (the claim and how it is checked)."""
    doc = inspect.getdoc(mod) or ""
    parts = doc.split("\n", 1)
    return parts[1].strip() if len(parts) > 1 else ""


def _run_one(mod: Any, out: Path, seed: int) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = mod.run(out, seed=seed)
    secs = time.perf_counter() - t0
    return {
        "name": mod.NAME,
        "title": mod.TITLE,
        "summary": res.summary,
        "numbers": _jsonable(res.numbers),
        "figures": [str(Path(f)) for f in res.figures],
        "seconds": round(secs, 3),
        "seed": seed,
    }


def _json_view(rec: dict[str, Any]) -> dict[str, Any]:
    """What ``--json`` prints for one lab: its numbers at the top level (``json.load(out)["beta"]``), and the
    rest (name, title, summary, figures, seconds, seed — or the error) under ``"lab"``."""
    meta = {k: v for k, v in rec.items() if k != "numbers"}
    return {**rec.get("numbers", {}), "lab": meta}


def _print_human(rec: dict[str, Any]) -> None:
    print(f"== {rec['name']}: {rec['title']}")
    print(rec["summary"])
    for k, v in rec["numbers"].items():
        print(f"  {k}: {json.dumps(v)}")
    for f in rec["figures"]:
        print(f"  figure: {f}")
    print(f"  ({rec['seconds']:.2f} s)")


def _fmt_value(v: Any) -> str:
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= 400 else s[:400] + " …"


def _cell(text: str) -> str:
    """Escape a markdown table cell (a ``|`` would end the cell)."""
    return text.replace("|", "\\|")


def write_index(
    out: Path,
    records: dict[str, dict[str, Any]],
    claims: dict[str, str],
    seed: int,
    *,
    md_path: Path | None = None,
    command: str | None = None,
) -> list[Path]:
    """Write the markdown index (``md_path``, default ``out/index.md``) and ``out/index.html`` with every
    lab's claim, summary, numbers and figures; figure links are relative to each page."""
    md_path = out / "index.md" if md_path is None else Path(md_path)
    total = sum(r.get("seconds", 0.0) for r in records.values())
    command = command or f"deeprelax lab all --out {out}"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    md = [
        "# deeprelax PDE lab",
        "",
        f"Generated by `{command}` (seed {seed}): {len(records)} labs, {total:.1f} s wall-clock in total "
        f"on this machine ({os.cpu_count()} cores, load average {load:.1f} when the run ended). Every "
        "number below is recomputed by that command; each lab's claim and method are its module docstring.",
        "",
    ]
    md += ["| lab | claim | seconds |", "|---|---|---|"]
    for name, r in records.items():
        secs = r.get("seconds", float("nan"))
        md.append(f"| [{name}](#{name}) | {_cell(r.get('title', ''))} | {secs:.1f} |")
    md.append("")
    h = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>deeprelax PDE lab</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
        "pre{white-space:pre-wrap;background:#f4f4f4;padding:6px}img{max-width:100%}"
        "td,th{padding:2px 8px;vertical-align:top}</style>",
        "</head><body><h1>deeprelax PDE lab</h1>",
        f"<p>{len(records)} labs, seed {seed}, total {total:.1f} s.</p>",
    ]
    for name, r in records.items():
        md += [f"## {name}", "", f"**{r.get('title', '')}**", ""]
        h += [
            f"<h2 id='{html.escape(name)}'>{html.escape(name)}</h2>",
            f"<p><b>{html.escape(r.get('title', ''))}</b></p>",
        ]
        if "error" in r:
            md += [f"**FAILED**: `{r['error']}`", ""]
            h += [f"<p><b>FAILED</b>: {html.escape(r['error'])}</p>"]
            continue
        claim = claims.get(name, "")
        if claim:
            md += ["```text", claim, "```", ""]
            h += [f"<pre>{html.escape(claim)}</pre>"]
        md += [f"**Result.** {r['summary']}", ""]
        h += [f"<p><b>Result.</b> {html.escape(r['summary'])}</p>"]
        for f in r["figures"]:
            rel_md = Path(os.path.relpath(Path(f).resolve(), md_path.parent.resolve())).as_posix()
            rel_html = Path(os.path.relpath(Path(f).resolve(), out.resolve())).as_posix()
            md += [f"![{name}]({rel_md})", ""]
            h += [f"<img src='{html.escape(rel_html)}' alt='{html.escape(name)}'>"]
        md += ["| number | value |", "|---|---|"]
        h += ["<table><tr><th>number</th><th>value</th></tr>"]
        for k, v in r["numbers"].items():
            md.append(f"| `{_cell(k)}` | `{_cell(_fmt_value(v))}` |")
            h.append(
                f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(_fmt_value(v))}</code>"
                "</td></tr>"
            )
        md += ["", f"({r['seconds']:.2f} s)", ""]
        h += ["</table>", f"<p>({r['seconds']:.2f} s)</p>"]
    h.append("</body></html>")
    p_md, p_html = md_path, out / "index.html"
    p_md.parent.mkdir(parents=True, exist_ok=True)
    p_md.write_text("\n".join(md) + "\n", encoding="utf-8")
    p_html.write_text("\n".join(h) + "\n", encoding="utf-8")
    return [p_md, p_html]


def run(args: argparse.Namespace) -> int:
    from deeprelax.experiments.lab import labs

    registry = labs()
    name: str = args.name
    log = sys.stderr if args.json else sys.stdout

    if name == "list":
        if args.json:
            print(json.dumps({n: m.TITLE for n, m in registry.items()}, ensure_ascii=False))
        else:
            width = max(len(n) for n in registry)
            for n, m in registry.items():
                print(f"{n:<{width}}  {m.TITLE}")
        return 0

    import matplotlib

    matplotlib.use("Agg")
    out: Path = args.out if args.out is not None else DEFAULT_OUT
    if name == "all":
        records: dict[str, dict[str, Any]] = {}
        failed = False
        for n, mod in registry.items():
            print(f"[lab] running {n} ...", file=sys.stderr, flush=True)
            try:
                records[n] = _run_one(mod, out / n, args.seed)
            except Exception as exc:  # keep going: report the failure in the index and the exit code
                failed = True
                records[n] = {"name": n, "title": mod.TITLE, "error": f"{type(exc).__name__}: {exc}"}
                print(f"[lab] {n} FAILED: {exc}", file=sys.stderr)
                continue
            if not args.json:
                _print_human(records[n])
        command = f"deeprelax lab all --out {out}" + (f" --index {args.index}" if args.index else "")
        if args.seed:
            command += f" --seed {args.seed}"
        index = write_index(
            out,
            records,
            {n: _claim(m) for n, m in registry.items()},
            args.seed,
            md_path=args.index,
            command=command,
        )
        total = sum(r.get("seconds", 0.0) for r in records.values())
        if args.json:
            view = {n: _json_view(r) for n, r in records.items()}
            print(json.dumps(_jsonable(view), ensure_ascii=False, allow_nan=False))
        else:
            print(f"index: {index[0]}  {index[1]}  (total {total:.1f} s)", file=log)
        return 1 if failed else 0

    if name not in registry:
        choices = ", ".join(["list", "all", *registry])
        print(f"deeprelax lab: unknown lab {name!r}; choose one of: {choices}", file=sys.stderr)
        return 2
    rec = _run_one(registry[name], out, args.seed)
    if args.json:
        print(json.dumps(_jsonable(_json_view(rec)), ensure_ascii=False, allow_nan=False))
    else:
        _print_human(rec)
    return 0
