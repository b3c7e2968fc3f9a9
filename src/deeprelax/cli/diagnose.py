"""``deeprelax diagnose``: flatness, local entropy, SGD noise and landscape of a trained run's weights."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "diagnose"
HELP = "diagnose a trained run: Hessian eigenvalues/trace/density, local entropy, SGD noise rank, landscape"
ORDER = 25
DESCRIPTION = """Read RUN_DIR/checkpoint.pt (written by train, compare or table1), rebuild the network and
measure, on a seeded subset of the training split (eval mode, BatchNorm statistics frozen): the top Hessian
eigenvalues (Lanczos), the trace (Hutchinson, with its standard error) and the spectral density (stochastic
Lanczos quadrature); the local entropy f_gamma(w) - f(w) for a sweep of gamma (Monte Carlo over the Gaussian
kernel and Langevin thermodynamic integration) and the local energy; the SGD noise D (per-sample gradients,
N x N Gram matrix: spectrum, numerical rank in % of the parameters, comparison with the Hessian); and
filter-normalised 1-D/2-D landscape slices. Writes OUT/diagnostics.json, OUT/diagnostics.md and PNG figures
(OUT default RUN_DIR/diagnostics). Example:
  deeprelax diagnose runs/esgd --what hessian,noise --data-dir $DEEPRELAX_DATA/mnist --json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder holding checkpoint.pt")
    parser.add_argument(
        "--what",
        default="hessian,local-entropy,noise,landscape",
        help="comma-separated subset of hessian,local-entropy,noise,landscape (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object with the results")
    parser.add_argument("--out", default=None, help="output folder (default: RUN_DIR/diagnostics)")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder with the data files (default: the run's own data_dir, else the cache)",
    )
    parser.add_argument(
        "--n-examples", type=int, default=None, help="training examples of the objective (default 1000)"
    )
    parser.add_argument(
        "--n-noise",
        type=int,
        default=None,
        help="examples for the per-sample gradients of the noise (default 1000)",
    )
    parser.add_argument("--k", type=int, default=None, help="top Hessian eigenvalues (default 2)")
    parser.add_argument("--tol", type=float, default=None, help="Lanczos relative accuracy (default 1e-3)")
    parser.add_argument("--trace-samples", type=int, default=None, help="Hutchinson probes (default 20)")
    parser.add_argument("--slq-probes", type=int, default=None)
    parser.add_argument("--slq-steps", type=int, default=None)
    parser.add_argument("--beta", type=float, default=None, help="local entropy: inverse temperature (100)")
    parser.add_argument(
        "--gammas",
        default=None,
        metavar="G1,G2,...",
        help="local entropy: couplings gamma (default 1,10,100)",
    )
    parser.add_argument("--mc-samples", type=int, default=None)
    parser.add_argument("--no-langevin", action="store_true", help="skip the Langevin estimate")
    parser.add_argument(
        "--sigmas", default=None, metavar="S1,S2,...", help="local energy noise levels (default 0.03,0.1,0.3)"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _floats(name: str, text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise ValueError(f"--{name} takes comma-separated numbers, got {text!r}") from exc


def run(args: argparse.Namespace) -> int:
    try:
        from deeprelax.experiments.diagnose import DiagnoseSettings, diagnose_run, parse_what
        from deeprelax.nets.idx import DataFileError

        what = parse_what(args.what)
        kw = {
            k: getattr(args, k)
            for k in (
                "n_examples",
                "n_noise",
                "k",
                "tol",
                "trace_samples",
                "slq_probes",
                "slq_steps",
                "beta",
                "mc_samples",
                "seed",
            )
            if getattr(args, k) is not None
        }
        if args.gammas is not None:
            kw["gammas"] = _floats("gammas", args.gammas)
        if args.sigmas is not None:
            kw["sigmas"] = _floats("sigmas", args.sigmas)
        if args.no_langevin:
            kw["langevin"] = False
        settings = DiagnoseSettings(**kw)
        if args.threads is not None:
            if args.threads < 1:
                raise ValueError(f"--threads must be positive, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        res, md = diagnose_run(
            args.run_dir,
            what=what,
            settings=settings,
            data_dir=args.data_dir,
            out=args.out,
            progress=not args.no_progress and not args.json,
        )
    except (ValueError, DataFileError, FileNotFoundError) as exc:
        print(f"deeprelax diagnose: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        slim = {k: v for k, v in res.items() if k != "slq"}
        if slim.get("noise"):
            slim["noise"] = {k: v for k, v in slim["noise"].items() if k != "eigenvalues"}
        print(json.dumps(slim))
    else:
        print(md.read_text(), end="")
        print(f"\nwrote {md}, {md.with_name('diagnostics.json')} and the figures in {md.parent}")
    return 0
