"""Run a queue of Table-1 training runs one after another, resumably, and export their per-epoch logs.

Each non-empty line of the queue file (``#`` starts a comment) is ``NAME ARGS...``: ``NAME`` is the run's
folder under ``--root`` and the file stem under ``--export``; ``ARGS`` are ``deeprelax train`` arguments
(without ``--out``/``--resume``). A run whose ``result.json`` exists is skipped; every other one is started
with ``--resume``, which continues from its checkpoint (so killing the queue and starting it again loses at
most one epoch) or starts afresh when it was killed before its first one. After each
run finishes, its per-epoch log is written to ``EXPORT/NAME.jsonl``: a first line ``{"header": ...}`` with the
run's config (machine-specific paths removed), the commit of the code that ran it, its result and the
machine (platform, CPUs, load average sampled while it ran), then one line per epoch (the run's
``log.jsonl`` records). Those files are all ``bench/collect_table1.py`` needs to rebuild ``docs/table1.json``.

    python bench/table1_queue.py bench/table1_queue.txt --root runs/table1q --export docs/table1-runs \\
        --data-dir "$DEEPRELAX_DATA/mnist"

Start it in the background (``nohup nice -n 10 ... &``), from the checkout whose code should run (the commit
is read there, once per run, when the run starts or resumes); several queues may run at once on different
queue files (each run folder is locked by ``deeprelax train``). ``--threads 1`` per run is the recorded
setting. ``--copy-from DIR`` only re-exports: it copies finished exports ``DIR/NAME.jsonl`` of the queue's
runs into ``--export``, removing machine-specific paths (for exports written by an older version of this
script). ``--partial`` only exports the queue's *unfinished* runs as they stand (header ``"complete": false``,
``"result": null``), for runs that cannot finish in the time there is; the collector keeps them apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

# config fields that describe the machine, not the computation: never exported
MACHINE_FIELDS = ("data_dir",)
COMMIT_FILE = "commit.txt"


def parse_queue(path: Path) -> list[tuple[str, list[str]]]:
    jobs = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, *args = shlex.split(line)
            jobs.append((name, args))
    return jobs


def git_commit(cwd: Path | None = None) -> str:
    """HEAD of the checkout in ``cwd``, with ``+dirty`` when tracked files differ from it."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=cwd
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            cwd=cwd,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def sanitize_config(config: dict) -> dict:
    return {k: (None if k in MACHINE_FIELDS else v) for k, v in config.items()}


def export(
    name: str,
    run_dir: Path,
    dest: Path,
    commit: str | list[str],
    machine: dict | None = None,
    *,
    partial: bool = False,
) -> Path:
    """Write ``dest/NAME.jsonl``: a header record (config, commit, result, machine) then the epoch records.

    ``partial``: the run has not finished (no ``result.json``); the header says ``"complete": false``.
    """
    config = sanitize_config(json.loads((run_dir / "config.json").read_text()))
    result = None if partial else json.loads((run_dir / "result.json").read_text())
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), **(machine or {})}
    header = {
        "run": name,
        "config": config,
        "commit": commit,
        "result": result,
        "complete": not partial,
        "machine": machine,
    }
    lines = [json.dumps({"header": header})]
    lines += [ln for ln in (run_dir / "log.jsonl").read_text().splitlines() if ln.strip()]
    return _write(dest / f"{name}.jsonl", lines)


def copy_export(src: Path, dest: Path) -> Path:
    """Copy an export, removing machine-specific paths from its header's config."""
    lines = [ln for ln in src.read_text().splitlines() if ln.strip()]
    head = json.loads(lines[0])
    head["header"]["config"] = sanitize_config(head["header"]["config"])
    return _write(dest / src.name, [json.dumps(head), *lines[1:]])


def _write(out: Path, lines: list[str]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".jsonl.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out)
    return out


def record_commit(run_dir: Path, commit: str) -> list[str]:
    """Append this start's commit to ``RUN/commit.txt`` (a resumed run may span commits); return them all."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / COMMIT_FILE
    seen = path.read_text().split() if path.exists() else []
    if not seen or seen[-1] != commit:
        seen.append(commit)
        path.write_text("\n".join(seen) + "\n")
    return seen


def run_with_load(cmd: list[str], env: dict, every: float = 30.0) -> tuple[int, list[float]]:
    """Run ``cmd``; sample the 1-minute load average every ``every`` seconds while it runs."""
    proc = subprocess.Popen(cmd, env=env)
    loads = []
    while True:
        try:
            return proc.wait(timeout=every), loads
        except subprocess.TimeoutExpired:
            loads.append(os.getloadavg()[0])


def train_command(extra: list[str], run_dir: Path, threads: int, data_dir: str | None) -> list[str]:
    """The ``deeprelax train`` command of one queue line. Always with ``--resume``: ``deeprelax train``
    continues from a checkpoint, starts afresh in an empty folder or in one whose run was killed in its
    first epoch (only ``config.json`` and an empty ``log.jsonl``), and refuses anything else with a message
    (exit 2), so a queue killed at any moment can be started again."""
    cmd = [sys.executable, "-m", "deeprelax", "train", *extra, "--out", str(run_dir)]
    cmd += ["--threads", str(threads), "--no-progress", "--resume"]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    return cmd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("queue", type=Path)
    ap.add_argument("--root", type=Path, default=Path("runs/table1q"))
    ap.add_argument("--export", type=Path, default=Path("docs/table1-runs"))
    ap.add_argument("--data-dir", default=os.environ.get("DEEPRELAX_DATA"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dry-run", action="store_true", help="print the commands only")
    ap.add_argument(
        "--copy-from",
        type=Path,
        default=None,
        help="only copy the queue's finished exports from this folder (paths removed)",
    )
    ap.add_argument("--partial", action="store_true", help="only export the unfinished runs as they stand")
    ap.add_argument(
        "--commit",
        default=None,
        help="with --partial: commit of a run without RUN/commit.txt (default: HEAD here)",
    )
    args = ap.parse_args()
    jobs = parse_queue(args.queue)
    if args.partial:
        for name, _ in jobs:
            run_dir = args.root / name
            if (
                (run_dir / "result.json").exists()
                or not (run_dir / "log.jsonl").exists()
                or not (run_dir / "log.jsonl").read_text().strip()
            ):
                print(f"[queue] {name}: finished or not started, not exported as partial", flush=True)
                continue
            commits = (
                (run_dir / COMMIT_FILE).read_text().split()
                if (run_dir / COMMIT_FILE).exists()
                else [args.commit or git_commit()]
            )
            out = export(
                name, run_dir, args.export, commits if len(commits) > 1 else commits[0], partial=True
            )
            print(f"[queue] {name}: partial -> {out}", flush=True)
        return 0
    if args.copy_from is not None:
        for name, _ in jobs:
            src = args.copy_from / f"{name}.jsonl"
            print(
                f"[queue] {name}: "
                + (f"copied -> {copy_export(src, args.export)}" if src.exists() else "no export yet"),
                flush=True,
            )
        return 0
    for name, extra in jobs:
        run_dir = args.root / name
        if (run_dir / "result.json").exists():
            if not (args.export / f"{name}.jsonl").exists():
                commits = (
                    (run_dir / COMMIT_FILE).read_text().split()
                    if (run_dir / COMMIT_FILE).exists()
                    else [git_commit()]
                )
                export(name, run_dir, args.export, commits if len(commits) > 1 else commits[0])
            print(f"[queue] {name}: finished earlier", flush=True)
            continue
        cmd = train_command(extra, run_dir, args.threads, args.data_dir)
        print(f"[queue] {time.strftime('%H:%M:%S')} {name}: {shlex.join(cmd)}", flush=True)
        if args.dry_run:
            continue
        commits = record_commit(run_dir, git_commit())
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        started = time.time()
        rc, loads = run_with_load(cmd, env)
        if rc != 0:
            print(f"[queue] {name}: exit {rc}; continuing with the next run", flush=True)
            continue
        machine = {
            "load_avg_1min_mean": round(statistics.fmean(loads), 2) if loads else None,
            "load_avg_1min_max": max(loads) if loads else None,
            "queue_wall_time_s": round(time.time() - started, 1),
        }
        out = export(name, run_dir, args.export, commits if len(commits) > 1 else commits[0], machine)
        print(f"[queue] {time.strftime('%H:%M:%S')} {name}: done -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
